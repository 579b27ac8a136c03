"""The prompts an item sends at its worst beyond its first request: a conversation's turns, each with
the whole history, and a structured answer's re-asks, each with the conversation again.

How the runner builds them (runner._chain, structured.reasked): turn n sends the system message,
every earlier turn's question and answer (its first choice) and its own question; a re-ask sends
its request's messages, the answer that missed the schema and a follow-up quoting the validation
error (cut at structured.MAX_ERROR_CHARS), and a second re-ask both of those again. At their worst
every answer is as long as max_tokens and every error as long as it may be: a token a character,
the most ASCII text costs (an error quoting non-ASCII answer text may cost more, so these counts
are approximate).
"""

from __future__ import annotations

from .records import Request
from .structured import MAX_ERROR_CHARS, follow_up
from .tokens import REPLY_PRIMING, Count, Counter


class Sends:
    """Counts an item's later requests with a counter's encodings."""

    def __init__(self, counter: Counter) -> None:
        self.counter = counter
        self._follow: dict[str, int] = {}  # by model: what a re-ask adds besides its answer

    def turns(self, request: Request, answer: int) -> Count:
        """The messages a conversation's turns send, summed: each turn's history with every earlier
        answer at `answer` tokens (its most) and its own message overhead."""
        model = request.model
        system = [m for m in request.body.get("messages") or () if m.get("role") == "system"]
        history = self.counter.messages(model, system)  # the reply's priming included
        replied = Count(self.message(model, "assistant") + answer)
        total = Count(0)
        for said in request.turns:
            history += self.counter.messages(model, [{"role": "user", "content": said}]) + Count(-REPLY_PRIMING)
            total += history
            history += replied
        return total

    def reasks(self, request: Request, prompt: int, answer: int) -> int:
        """The prompt tokens of an item at its worst with its re-asks, `prompt` being what its
        first requests send (each turn's, summed): re-ask r of a request sends that request's
        prompt and r times an answer of `answer` tokens and a follow-up with the longest error."""
        follow = self._follow.get(request.model)
        if follow is None:
            follow = self._follow[request.model] = self.follow(request.model)
        asks, requests = request.reask, max(1, len(request.turns))
        return (1 + asks) * prompt + requests * (answer + follow) * asks * (asks + 1) // 2

    def follow(self, model: str) -> int:
        """What a re-ask adds besides the answer: the answer's message overhead and the follow-up
        message, its error at the longest."""
        asked = self.counter.text(model, follow_up("")).tokens + MAX_ERROR_CHARS
        return self.message(model, "assistant") + self.message(model, "user") + asked

    def message(self, model: str, role: str) -> int:
        """What a message of `role` costs besides its content: the overhead the cookbook counts."""
        return self.counter.messages(model, [{"role": role, "content": ""}]).tokens - REPLY_PRIMING
