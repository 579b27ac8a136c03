"""How the mock streams an answer: the server-sent events of a chat or legacy completion (text in
pieces, the usage chunk, `data: [DONE]`) and the typed events of a streamed Responses API answer,
with the stream faults (`no-done`, `split-emoji`) that break them."""

from __future__ import annotations

import json
from typing import Any


def response_events(answer: dict[str, Any], text: str) -> list[bytes]:
    """The typed server-sent events of a streamed response, ending with its final event."""

    def event(kind: str, **fields: Any) -> bytes:
        return f"event: {kind}\ndata: ".encode() + json.dumps({"type": kind, **fields}).encode() + b"\n\n"

    started = {**answer, "status": "in_progress", "output": [], "usage": None}
    events = [event("response.created", response=started), event("response.in_progress", response=started)]
    events += [event("response.output_text.delta", delta=piece) for piece in _pieces(text, False)]
    events.append(event("response.output_text.done", text=text))
    final = "response.completed" if answer["status"] == "completed" else "response.incomplete"
    return events + [event(final, response=answer)]


def stream_events(
    ident: str,
    body: dict[str, Any],
    text: str,
    finish: str,
    usage: dict[str, Any] | None,
    chat: bool,
    fault: str | None = None,
    tier: str = "default",
) -> list[bytes]:
    """The server-sent events of a streamed answer: the text in pieces, then the usage chunk when
    `stream_options.include_usage` asks for it, then `data: [DONE]` (which `no-done` leaves out)."""
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

    pieces = _pieces(text, fault == "split-emoji")
    events = []
    for n, piece in enumerate(pieces):
        choice: dict[str, Any] = {"index": 0, "finish_reason": finish if n == len(pieces) - 1 else None}
        if chat:
            choice["delta"] = {"content": piece} if n else {"role": "assistant", "content": piece}
        else:
            choice["text"] = piece
        events.append(event([choice]))
    if (body.get("stream_options") or {}).get("include_usage"):
        events.append(event([], usage))
    if fault != "no-done":
        events.append(b"data: [DONE]\n\n")
    return events


def _pieces(text: str, split_characters: bool) -> list[str]:
    """Pieces of 8 characters; or, to cut a character between two events, of 8 UTF-16 code units,
    each half of a surrogate pair then a lone surrogate escaped in its own JSON string."""
    if not split_characters:
        return [text[i : i + 8] for i in range(0, len(text), 8)] or [""]
    units = text.encode("utf-16-le", "surrogatepass")
    return [units[i : i + 16].decode("utf-16-le", "surrogatepass") for i in range(0, len(units), 16)] or [""]
