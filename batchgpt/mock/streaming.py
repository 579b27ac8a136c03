"""How the mock streams an answer: the server-sent events of a chat or legacy completion (text or a
tool call's arguments in pieces, each of `n` choices in turn, the usage chunk, `data: [DONE]`) and
the typed events of a streamed Responses API answer, with the stream faults (`no-done`,
`split-emoji`) that break them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .toolcalls import ToolCall


def response_events(answer: dict[str, Any]) -> list[bytes]:
    """The typed server-sent events of a streamed response, in the API's order (the shared API
    facts, section 15), numbered from 0 and ending with its final event."""
    events: list[bytes] = []

    def event(kind: str, **fields: Any) -> None:
        data = {"type": kind, "sequence_number": len(events), **fields}
        events.append(f"event: {kind}\ndata: ".encode() + json.dumps(data, ensure_ascii=False).encode() + b"\n\n")

    started = {**answer, "status": "in_progress", "output": [], "usage": None}
    event("response.created", response=started)
    event("response.in_progress", response=started)
    for index, item in enumerate(answer["output"]):
        event("response.output_item.added", output_index=index, item={**item, "status": "in_progress", "content": []})
        at = {"item_id": item["id"], "output_index": index}
        for number, part in enumerate(item["content"]):
            _part_events(event, {**at, "content_index": number}, part)
        event("response.output_item.done", output_index=index, item=item)
    event("response.completed" if answer["status"] == "completed" else "response.incomplete", response=answer)
    return events


def _part_events(event: Any, at: dict[str, Any], part: dict[str, Any]) -> None:
    """A content part's events: added empty, its text (or refusal) in pieces, done, done whole."""
    kind = part["type"]
    key, name = ("text", "output_text") if kind == "output_text" else ("refusal", "refusal")
    extra: dict[str, Any] = {"logprobs": []} if kind == "output_text" else {}
    event("response.content_part.added", **at, part={**part, key: ""})
    for piece in _pieces(part[key], False):
        event(f"response.{name}.delta", **at, delta=piece, **extra)
    event(f"response.{name}.done", **at, **{key: part[key]}, **extra)
    event("response.content_part.done", **at, part=part)


@dataclass(frozen=True)
class Said:
    """What each choice of an answer says: its text, or a function call, and why it ended."""

    text: str
    finish: str
    call: ToolCall | None = None


def stream_events(
    ident: str,
    body: dict[str, Any],
    said: Said,
    usage: dict[str, Any] | None,
    chat: bool,
    fault: str | None = None,
    tier: str = "default",
) -> list[bytes]:
    """The server-sent events of a streamed answer: each of the `n` choices in pieces, then the
    usage chunk when `stream_options.include_usage` asks for it, then `data: [DONE]` (which
    `no-done` leaves out)."""
    kind = "chat.completion.chunk" if chat else "text_completion"

    def event(choices: list[dict[str, Any]], usage_: Any = None) -> bytes:
        chunk = {
            "id": ident,
            "object": kind,
            "created": 1700000000,
            "model": body["model"],
            "choices": choices,
            "usage": usage_,
            "service_tier": tier,
        }
        return b"data: " + json.dumps(chunk, ensure_ascii=fault == "split-emoji").encode() + b"\n\n"

    n = body.get("n")
    events = []
    for index in range(n if isinstance(n, int) else 1):
        pieces = _call_pieces(said.call) if said.call else _text_pieces(said.text, chat, fault == "split-emoji")
        for number, piece in enumerate(pieces):
            last = number == len(pieces) - 1
            events.append(event([{"index": index, **piece, "finish_reason": said.finish if last else None}]))
    if (body.get("stream_options") or {}).get("include_usage"):
        events.append(event([], usage))
    if fault != "no-done":
        events.append(b"data: [DONE]\n\n")
    return events


def _text_pieces(text: str, chat: bool, split_characters: bool) -> list[dict[str, Any]]:
    pieces = _pieces(text, split_characters)
    if not chat:
        return [{"text": piece} for piece in pieces]
    return [{"delta": {"content": p} if n else {"role": "assistant", "content": p}} for n, p in enumerate(pieces)]


def _call_pieces(call: ToolCall) -> list[dict[str, Any]]:
    """A function call as the API streams it: its id and name first, then its arguments in pieces."""
    opened = {"index": 0, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
    pieces = [{"delta": {"role": "assistant", "content": None, "tool_calls": [opened]}}]
    for piece in _pieces(call.arguments, False):
        pieces.append({"delta": {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}})
    return pieces + [{"delta": {}}]


def _pieces(text: str, split_characters: bool) -> list[str]:
    """Pieces of 8 characters; or, to cut a character between two events, of 8 UTF-16 code units,
    each half of a surrogate pair then a lone surrogate escaped in its own JSON string."""
    if not split_characters:
        return [text[i : i + 8] for i in range(0, len(text), 8)] or [""]
    units = text.encode("utf-16-le", "surrogatepass")
    return [units[i : i + 16].decode("utf-16-le", "surrogatepass") for i in range(0, len(units), 16)] or [""]
