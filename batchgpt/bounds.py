"""What one request may cost before it is sent: its bound, as the dry run sums it and a budget holds it.

Prompt tokens are counted with tiktoken as the API counts them, function definitions by the
cookbook's recipe, attachments from their headers (inputtokens.py), and what cannot be counted exactly
high, marked approximate: image parts in a body (vision.py), schemas, files and other tools
(overhead.py). The worst case counts each turn and each re-ask an
item may send (sends.py), and completion tokens at `max_tokens` (or, when a job sets none, the
model's output limit, or the legacy completions endpoint's default of 16) times `n`; the expected
case guesses them: about the source length for a translation, else `expected_output_tokens`, else 256.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .inputtokens import NONE, total, unattached
from .overhead import ZERO, Overhead, plain
from .pricing import Pricing
from .records import Billed, Request, quick
from .sends import Sends
from .tasks import TASKS
from .tokens import Count, Counter
from .unitprices import heard_tokens, speaks
from .vision import most_in

DEFAULT_EXPECTED_OUTPUT = 256
IMAGES_AT_MOST = "image inputs counted at the most their model counts one (their size is not read)"
COMPLETIONS_DEFAULT_MAX = 16  # /v1/completions stops at 16 tokens when max_tokens is not sent


@quick
@dataclass(frozen=True)
class Bound:
    """One request's prompt tokens, its completion tokens at worst and as expected, and what it
    costs besides tokens (images, characters, minutes; None when that cannot be known)."""

    prompt: Count
    worst: int | None
    expected: int
    note: str | None = None
    billing: str = "tokens"
    fixed: float | None = 0.0
    images: int = 0  # of the prompt: its image inputs' tokens, each exact or at the most (already a bound)
    heard: int = 0  # audio input tokens, at the audio price: besides the prompt's
    marks: tuple[str, ...] = ()  # what makes the count approximate besides `prompt.approximate`


def choices(body: Mapping[str, Any]) -> int:
    """How many completions a request asks for, each billed: `n`, or the legacy `best_of`, as a
    server reads them (10, 10.0 and "10" all ask for ten)."""
    n, best_of = body.get("n"), body.get("best_of")
    if n is None and best_of is None:  # nearly every request: asked once
        return 1
    return max(1, _whole(n), _whole(best_of))


def _whole(value: Any) -> int:
    if isinstance(value, bool):
        return 1
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value if isinstance(value, int) else 1


class Estimator:
    """Bounds requests with one counter's encodings and one pricing: the dry run's, or a run's
    budget, which holds each request's worst case before it is sent."""

    def __init__(self, pricing: Pricing, counter: Counter | None = None):
        self.pricing = pricing
        self.counter = counter or Counter()
        self.overhead = Overhead(self.counter)
        self.sends = Sends(self.counter)

    def bound(self, request: Request) -> Bound:
        """One request's bound; a conversation's covers all its turns (not its re-asks: `sent`)."""
        task_type = TASKS[request.type]
        if not task_type.chat_family:
            return self._unit_bound(request, task_type.billing)
        worst, note = (request.max_tokens, None) if request.max_tokens is not None else self._limit(request)
        # `n` answers (and legacy `best_of`) are each billed up to max_tokens; the prompt once.
        each = choices(request.body)
        expected = self._expected(request, worst) * each
        body, attached = request.body, NONE
        if request.attachments:  # counted from their headers; the rest of the body as any body is
            attached = total(request.model, request.attachments)
            body = unattached(body, request.attachments)
        text_only = plain(request.endpoint, body)
        extra = ZERO if text_only else self.overhead.of(request.model, request.endpoint, body)
        heard = 0 if text_only else heard_tokens(body)
        turns = len(request.turns) or 1
        if request.turns:  # each turn sends the history, every earlier answer at its most (sends.py)
            prompt, images = self.sends.turns(request, worst or 0) + Count(extra.tokens * turns, extra.approximate), 0
            attached = attached.times(turns)  # and its attachments again
        else:
            prompt = self.counter.body(request.endpoint, body)
            prompt = prompt if extra is ZERO else prompt + extra
            images = 0 if text_only else most_in(request.model, request.endpoint, body)
        marks = (*attached.notes, IMAGES_AT_MOST) if images else attached.notes
        images += attached.seen
        if images or attached.read:
            prompt = Count(prompt.tokens + images + attached.read, prompt.approximate or attached.read > 0)
        worst_total = None if worst is None else worst * each * turns
        heard += attached.heard
        return Bound(prompt, worst_total, expected * turns, note, images=images, heard=heard, marks=marks)

    def sent(self, request: Request, bound: Bound) -> tuple[Count, int | None]:
        """The prompt and completion tokens of all an item may send at its worst: its request (or
        turns), and each re-ask of a structured answer, sending it all again and more (sends.py)."""
        if not request.reask:
            return bound.prompt, bound.worst
        prompt = self.sends.reasks(request, bound.prompt.tokens, self._limit(request)[0] or 0)
        return Count(prompt, True), None if bound.worst is None else bound.worst * (1 + request.reask)

    def _limit(self, request: Request) -> tuple[int | None, str | None]:
        """The most one answer may take (None: not known), and a note when max_tokens is not set."""
        if request.max_tokens is not None:
            return request.max_tokens, None
        if request.endpoint == "/completions":
            return COMPLETIONS_DEFAULT_MAX, "max_tokens not set: the API's default of 16"
        worst = self.pricing.output_limit(request.model)
        if worst:
            return worst, f"max_tokens not set: the model's output limit ({worst:,})"
        return worst, "max_tokens not set and the model's output limit is unknown"

    def _unit_bound(self, request: Request, billing: str) -> Bound:
        """Endpoints without completions: embeddings bill their input tokens, moderation is free,
        images, speech and transcription bill per image, character or minute."""
        if billing in ("tokens", "free"):
            prompt = self.counter.body(request.endpoint, request.body) if billing == "tokens" else Count(0)
            return Bound(prompt, 0, 0, billing=billing)
        fixed, note = self.pricing.worst_fixed(request.model, billing, request.body, request.units)
        note = "; ".join(n for n in (note, request.units_note) if n) or None
        return Bound(Count(0), 0, 0, note, billing, fixed)

    def _expected(self, request: Request, worst: int | None) -> int:
        if request.expected_output_tokens is not None:
            guess = request.expected_output_tokens
        elif request.type == "translate":
            source = request.body["messages"][-1]["content"]
            guess = self.counter.text(request.model, source).tokens
        else:
            guess = DEFAULT_EXPECTED_OUTPUT
        return min(guess, worst) if worst is not None else guess

    def worst_cost(self, request: Request, bound: Bound | None = None) -> float | None:
        """The most this request can cost; None when its price or its output limit is unknown."""
        bound = bound or self.bound(request)
        if bound.billing == "free":
            return 0.0
        if bound.billing != "tokens":
            return bound.fixed
        if bound.worst is None:
            return None
        # An approximate count may be low; half again is the margin a budget keeps for it (images
        # are counted at their most already).
        text = bound.prompt.tokens - bound.images
        prompt = (text * 3 // 2 if bound.prompt.approximate else text) + bound.images
        heard, aloud = bound.heard, speaks(request.body)  # audio: at its own price
        billed = Billed(audio_in=heard, audio_out=bound.worst if aloud else 0)
        tier = request.body.get("service_tier")
        return self.pricing.cost(request.model, prompt + heard, bound.worst, tier=tier, billed=billed)
