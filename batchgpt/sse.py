"""Streamed answers: server-sent events assembled into the shape of a non-streamed answer, for
Chat Completions and legacy completions chunks (`data: {...}` up to `data: [DONE]`) and for the
Responses API's events (up to `response.completed`, `.incomplete` or `.failed`).

A stream that ends early, or an event that is not a JSON object, is a malformed answer; an error
event in mid-stream is a failure, as the official SDK raises it. Secrets are replaced in every
event, and once more in the joined text, where one may have been split between two events.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterable, Mapping
from typing import Any

from .answers import Answer, label
from .records import Failure, shortened
from .redact import Redactor


async def read_stream(
    lines: AsyncIterable[bytes], status: int, headers: Mapping[str, str], started: float, redact: Redactor
) -> Answer | Failure:
    """Assemble a server-sent-events answer into the shape of a non-streamed one. A stream that
    ends without `[DONE]` is malformed (it may have been cut short), and so is an event that is not
    a JSON object."""
    parts: list[str] = []
    refusal: list[str] = []  # a refusal streams in deltas of its own
    finish = None
    usage = tier = None  # the usage chunk, and the service tier the chunks say (what prices them)
    ttft = None
    chat = True
    async for raw_line in lines:
        line = raw_line.strip()
        if not line.startswith(b"data:"):
            continue
        payload = line[5:].strip()
        if payload.startswith(b"[DONE]"):
            break
        try:  # the standard library's json, which keeps a lone surrogate for the join below
            chunk = json.loads(redact.raw(payload))
        except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested past all sense
            return Failure("malformed", "a stream event is not JSON", status, headers=headers)
        if not isinstance(chunk, dict) or not isinstance(chunk.get("choices") or [], list):
            return Failure("malformed", "a stream event is not a chunk object", status, headers=headers)
        kind = chunk.get("type")
        if isinstance(kind, str) and kind.startswith(("response.", "error")):  # the Responses API's events
            ttft = ttft if ttft is not None or kind != "response.output_text.delta" else time.monotonic() - started
            ended = response_event(chunk, kind, status, headers, ttft, redact)
            if ended is not None:
                return ended
            continue
        if "error" in chunk:  # an error in the middle of a stream, as the SDK raises it
            error = chunk["error"] if isinstance(chunk["error"], dict) else {"message": str(chunk["error"])}
            return Failure(
                "http",
                shortened(redact.text(str(error.get("message")))),
                500,
                code=label(error.get("code"), redact),
                headers=headers,
            )
        usage, tier = chunk.get("usage") or usage, chunk.get("service_tier") or tier
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict):
                return Failure("malformed", "a stream choice is not an object", status, headers=headers)
            delta = choice.get("delta")
            text = delta.get("content") if isinstance(delta, dict) else choice.get("text")
            chat = isinstance(delta, dict)
            finish = choice.get("finish_reason") or finish
            if isinstance(delta, dict) and isinstance(delta.get("refusal"), str):
                refusal.append(delta["refusal"])
            if text:
                if not isinstance(text, str):
                    return Failure("malformed", "a stream delta is not text", status, headers=headers)
                ttft = ttft if ttft is not None else time.monotonic() - started
                parts.append(text)
    else:
        return Failure("malformed", "the stream ended before [DONE]", status, headers=headers)
    try:  # a character may come in two events, each half a lone UTF-16 surrogate: join the halves
        text = "".join(parts).encode("utf-16", "surrogatepass").decode("utf-16")
    except UnicodeDecodeError:
        return Failure("malformed", "the stream holds half a character", status, headers=headers)
    text = redact.text(text)  # a secret may also have been split between two events
    message = {"role": "assistant", "content": None if refusal and not text else text}
    if refusal:
        message["refusal"] = redact.text("".join(refusal))
    answer: dict[str, Any] = {"message": message} if chat else {"text": text}
    answer["finish_reason"] = finish
    assembled = {"choices": [answer], "usage": redact.tree(usage), "service_tier": redact.tree(tier)}
    return Answer(status, headers, assembled, ttft)


def response_event(
    event: dict[str, Any], kind: str, status: int, headers: Mapping[str, str], ttft: float | None, redact: Redactor
) -> Answer | Failure | None:
    """What a Responses API stream event ends in: the final response object (whose `output` holds
    the whole text, so deltas only time the first token), an error, or None to read on."""
    if kind in ("response.completed", "response.incomplete", "response.failed"):
        final = event.get("response")
        if not isinstance(final, dict):
            return Failure("malformed", f"a {kind} event holds no response object", status, headers=headers)
        return Answer(status, headers, redact.tree(final), ttft)
    if kind == "error":
        message = shortened(redact.text(str(event.get("message"))))
        return Failure("http", message, 500, code=label(event.get("code"), redact), headers=headers)
    return None
