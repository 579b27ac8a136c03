"""What the mock answers to chat, legacy completions and the Responses API: an echo of what was
asked (the last user message, or the prompt, its images, files and audio described as the mock
read them: `Echo: What is this? [image 1024x1024 sha256:1f0e3dad9990]`), cut at the token limit,
counted as the API counts it, structured when a schema is asked for, a function call when tools
are offered (toolcalls.py), with logprobs when asked (logprobs.py), and broken by the answer
faults (usage-strings, no-usage, refusal, ...). `Reply` is the answer the server sends, for every
kind of request."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from batchgpt.tokens import Counter

from . import usage as usages
from .bill import prompt_tokens
from .cut import cut
from .inputs import content_media
from .logprobs import chat_logprobs, completion_logprobs
from .schema import schema_asked, structured_text
from .streaming import Said, response_events, stream_events
from .toolcalls import tool_call


@dataclass(frozen=True)
class Reply:
    """An answer for the server to send: `body` as JSON, or as the text or bytes of `content_type`;
    or, when `events` is set, a stream of server-sent events, each written as it is."""

    body: Any = None
    content_type: str = "application/json"
    events: list[bytes] | None = None
    usage: Any = None  # what a streamed answer's events report (a JSON answer's is in its body)
    tier: str | None = None  # and the service tier they name


def completion(body: dict[str, Any], raw: bytes, counter: Counter, chat: bool, fault: str | None = None) -> Reply:
    """A chat or legacy completion, streamed when asked; its id follows from the request's bytes."""
    prompt = prompt_tokens("chat" if chat else "completion", body, counter)
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or (None if chat else 16)
    text, finish = reply_text(body, chat, max_tokens, counter)
    schema = schema_asked(body)
    if schema is not None:
        text = structured_text(schema, text, fault)
    call = tool_call(body, asked(body, chat)) if chat and fault != "refusal" else None
    model = str(body["model"])
    call = call.cut(max_tokens, counter, model) if call else None
    n = body.get("n")
    each = n if isinstance(n, int) else 1  # n answers, as many billed
    spoken = call.tokens(counter, model) if call else counter.text(model, text).tokens
    usage = _usage(prompt, spoken * each, fault)
    more = usages.extra(body, counter, text) if chat else usages.Extra()
    if isinstance(usage, dict) and fault not in ("usage-strings", "usage-negative"):
        usages.apply(usage, more)
    if fault == "split-emoji":  # padded so that the emoji's two UTF-16 halves fall in two events
        text += " " * ((7 - len(text.encode("utf-16-le")) // 2) % 8) + "\U0001f600"
    ident = ("chatcmpl-" if chat else "cmpl-") + hashlib.sha1(raw).hexdigest()[:24]
    said = Said(text, call.finish if call else finish, call)
    if body.get("stream") and fault != "ignore-stream":
        events = stream_events(ident, body, said, usage, chat, fault, more.tier)
        return Reply(events=events, usage=usage, tier=more.tier)
    return Reply(
        {
            "id": ident,
            "object": "chat.completion" if chat else "text_completion",
            "created": 1700000000,
            "model": body["model"],
            "choices": [_choice(body, index, said, chat, fault, counter) for index in range(each)],
            "usage": usage,
            "system_fingerprint": "fp_mock",
            "service_tier": more.tier,
        }
    )


def _choice(body: dict[str, Any], index: int, said: Said, chat: bool, fault: str | None, counter: Counter) -> Any:
    """One of the `n` choices: a message (or a legacy text), with its logprobs when asked."""
    choice: dict[str, Any] = {"index": index, "finish_reason": said.finish, "logprobs": None}
    if not chat:
        choice["text"] = said.text
        if isinstance(body.get("logprobs"), int):
            choice["logprobs"] = completion_logprobs(said.text, body["logprobs"], counter)
        return choice
    if fault == "refusal":
        choice["message"] = {"role": "assistant", "content": None, "refusal": REFUSAL}
    elif said.call is not None:
        choice["message"] = {
            "role": "assistant",
            "content": None,
            "refusal": None,
            "tool_calls": [said.call.described()],
        }
    else:
        choice["message"] = {"role": "assistant", "content": said.text, "refusal": None}
        if body.get("logprobs"):
            choice["logprobs"] = chat_logprobs(said.text, int(body.get("top_logprobs") or 0), counter)
    return choice


def asked(body: dict[str, Any], chat: bool) -> str:
    """What the request asks: its last user message (or its prompt), media described in brackets."""
    if not chat:
        return str(body["prompt"])
    messages = body["messages"]
    last = next((m for m in reversed(messages) if m.get("role") == "user"), messages[-1])
    return said_in(last.get("content"))


def said_in(content: Any) -> str:
    """What a message says: its text, then each of its media as the mock read it (inputs.py):
    `What is this? [image 1024x1024 sha256:1f0e3dad9990]`."""
    described = " ".join(f"[{media.described()}]" for media in content_media(content))
    return " ".join(filter(None, (_text(content), described)))


def reply_text(body: dict[str, Any], chat: bool, max_tokens: int | None, counter: Counter) -> tuple[str, str]:
    """(text, finish_reason): an echo of the last user message (or the prompt), in a fenced block
    when a system prompt asks for code, cut to `max_tokens` with finish_reason `length`."""
    said = asked(body, chat)
    wants_code = chat and any(
        "code" in _text(m.get("content")) for m in body["messages"] if m.get("role") in ("system", "developer")
    )
    text = f"```python\n# {said}\nprint({said!r})\n```" if wants_code else f"Echo: {said}"
    kept = text if max_tokens is None else cut(text, max_tokens, counter)
    return (text, "stop") if kept == text else (kept, "length")


REFUSAL = "I'm sorry, I cannot help with that request."


def response(body: dict[str, Any], raw: bytes, counter: Counter, fault: str | None = None) -> Reply:
    """A Responses API answer: an echo of the input (its last user message), `incomplete` with
    reason `max_output_tokens` when cut there; streamed as its typed events when asked."""
    value = body["input"]
    users = [m for m in value if isinstance(m, dict) and m.get("role") == "user"] if isinstance(value, list) else []
    said = value if isinstance(value, str) else said_in(users[-1].get("content") if users else "")
    text, finish = reply_text({"prompt": said}, False, body.get("max_output_tokens"), counter)
    schema = schema_asked(body)
    if schema is not None:
        text = structured_text(schema, text, fault)
    prompt = prompt_tokens("responses", body, counter)
    completion = counter.text(str(body["model"]), text).tokens
    more = usages.extra(body, counter, text, "input")
    ident = "resp_" + hashlib.sha1(raw).hexdigest()[:24]
    answer = {
        "id": ident,
        "object": "response",
        "created_at": 1700000000,
        "model": body["model"],
        "status": "incomplete" if finish == "length" else "completed",
        "incomplete_details": {"reason": "max_output_tokens"} if finish == "length" else None,
        "output": [
            {
                "type": "message",
                "id": "msg_" + ident[5:],
                "status": "completed",
                "role": "assistant",
                "content": [
                    {"type": "refusal", "refusal": REFUSAL}
                    if fault == "refusal"
                    else {"type": "output_text", "text": text, "annotations": []}
                ],
            }
        ],
        "store": body.get("store", True),
        "service_tier": more.tier,
        "usage": {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": more.cached},
            "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + completion,
        },
    }
    if fault == "no-usage":
        answer["usage"] = None
    if not body.get("stream"):
        return Reply(answer)
    return Reply(events=response_events(answer), usage=answer["usage"], tier=more.tier)


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def _usage(prompt: int, completion: int, fault: str | None) -> dict[str, Any] | None:
    """CompletionUsage with its details, or the broken counts of the usage-* faults (none at all
    for `no-usage`, as some local servers and relays answer)."""
    if fault == "no-usage":
        return None
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
    if fault == "usage-strings":
        return {k: str(v) if isinstance(v, int) else v for k, v in usage.items()}
    if fault == "usage-negative":
        return {**usage, "prompt_tokens": -prompt * 1000, "total_tokens": -prompt * 1000}
    return usage
