"""The mock's function calls: a chat request that offers function tools is answered with a call
to one of them, deterministically, so that clients which drive tools (the SDK's stream helper, an
agent loop) can be tried offline.

Which call: none when `tool_choice` is "none" or the last message is a tool's result (the tool
has answered: the model speaks); else the function `tool_choice` names, or the first function
offered. Its arguments are the simplest JSON its parameters' schema accepts, its strings saying
what the user said (schema.py). Its finish_reason is `tool_calls`, or `stop` when the request
named the function, as the API answers a forced call; `length` when `max_tokens` cuts its
arguments short.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from batchgpt.tokens import Counter

from .cut import cut
from .schema import instance


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text
    finish: str

    def described(self) -> dict[str, Any]:
        """As a message's `tool_calls` item."""
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}

    def tokens(self, counter: Counter, model: str) -> int:
        """Its completion tokens: its name's and its arguments'."""
        return counter.text(model, self.name).tokens + counter.text(model, self.arguments).tokens

    def cut(self, max_tokens: int | None, counter: Counter, model: str) -> ToolCall:
        """The call as a `max_tokens` cap leaves it: its arguments cut short (no longer JSON), with
        finish_reason `length`, as the API cuts a call."""
        if max_tokens is None or self.tokens(counter, model) <= max_tokens:
            return self
        kept = max(0, max_tokens - counter.text(model, self.name).tokens)
        arguments = cut(self.arguments, kept, counter)
        while arguments and counter.text(model, arguments).tokens > kept:  # re-encoded, the cut may grow
            arguments = arguments[:-1]
        return ToolCall(self.id, self.name, arguments, "length")


def tool_call(body: dict[str, Any], said: str) -> ToolCall | None:
    """The call the mock answers a chat request with, or None (it answers in words)."""
    functions = [
        t["function"]
        for t in body.get("tools") or ()
        if t.get("type") == "function" and isinstance(t.get("function"), dict)
    ]
    choice = body.get("tool_choice")
    messages = body["messages"]
    if not functions or choice == "none" or messages[-1].get("role") in ("tool", "function"):
        return None
    named = choice.get("function") if isinstance(choice, dict) else None
    wanted = named.get("name") if isinstance(named, dict) else None
    function = next((f for f in functions if f.get("name") == wanted), functions[0])
    parameters = function.get("parameters")
    arguments = instance(parameters, said, parameters) if isinstance(parameters, dict) else {}
    text = json.dumps(arguments if isinstance(arguments, dict) else {}, ensure_ascii=False)
    ident = "call_" + hashlib.sha1(f"{function['name']}\0{text}".encode()).hexdigest()[:24]
    return ToolCall(ident, str(function["name"]), text, "stop" if wanted else "tool_calls")
