"""What the mock server answers, endpoint by endpoint: deterministic bodies shaped like the real API's.

Pure functions of a request body (and a token counter): the server in mockserver.py adds the
transport, mockfaults.py the faults and mocklimits.py the rate limits. Every answer says which
request it answers: a chat reply echoes the last user message, a vector and a moderation verdict
follow from the text. `reply` maps each kind of request to its answer, streams included as their
server-sent events; an answer fault (usage-strings, no-done, ...) breaks the answer here.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import struct
import wave
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from batchgpt import vision
from batchgpt.tokens import Counter

from . import usage as mockusage
from .bill import extra_prompt
from .schema import structured_text

MODERATION_CATEGORIES = {  # category: a word that flags it (the real API has 13 categories)
    "harassment": "idiot",
    "harassment/threatening": "threaten",
    "hate": "hate",
    "hate/threatening": "exterminate",
    "illicit": "steal",
    "illicit/violent": "bomb",
    "self-harm": "self-harm",
    "self-harm/intent": "end it all",
    "self-harm/instructions": "how to hurt myself",
    "sexual": "explicit",
    "sexual/minors": "underage",
    "violence": "kill",
    "violence/graphic": "gore",
}
EMBEDDING_DIMENSIONS = {"text-embedding-3-large": 3072}  # others: 1536
IMAGE_SIZES = {"dall-e-2": {"256x256", "512x512", "1024x1024"}, "dall-e-3": {"1024x1024", "1792x1024", "1024x1792"}}
GPT_IMAGE_SIZES = {"1024x1024", "1536x1024", "1024x1536", "auto"}
SPEECH_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
_LEVELS = [((b - 128) / 128.0) for b in range(256)]


def error_body(message: str, type_: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _bad(message: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return error_body(message, "invalid_request_error", code, param)


def invalid(kind: str, body: dict[str, Any], counter: Counter) -> dict[str, Any] | None:
    """The 400 the real API gives for this body, or None."""
    if kind == "transcriptions":  # a form: the upload is checked first
        return _invalid_upload(body)
    if not body.get("model"):
        return _bad("you must provide a model parameter", "model")
    if kind == "chat":
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _bad("'messages' must contain at least one message", "messages")
        if "max_tokens" in body and str(body["model"]).startswith(("o1", "o3", "o4", "gpt-5")):
            return _bad(
                "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
                "'max_completion_tokens' instead.",
                "max_tokens",
                "unsupported_parameter",
            )
    elif kind == "completion" and "prompt" not in body:
        return _bad("you must provide a prompt parameter", "prompt")
    elif kind == "responses" and not isinstance(body.get("input"), (str, list)):
        return _bad("Missing required parameter: 'input'.", "input", "missing_required_parameter")
    elif kind == "embeddings":
        return _invalid_embeddings(body, counter)
    elif kind == "moderations" and not isinstance(body.get("input"), (str, list)):
        return _bad("'input' is a required property", "input")
    elif kind == "images":
        return _invalid_image(body)
    elif kind == "speech":
        if not body.get("voice"):
            return _bad("'voice' is a required property", "voice")
        if not isinstance(body.get("input"), str) or len(body["input"]) > 4096:
            return _bad("'input' must be a string of at most 4096 characters", "input")
    return None


def _invalid_upload(body: dict[str, Any]) -> dict[str, Any] | None:
    if "_file" not in body:
        return _bad("'file' is a required property", "file")
    if not body.get("model"):
        return _bad("'model' is a required property", "model")
    return None


def _invalid_embeddings(body: dict[str, Any], counter: Counter) -> dict[str, Any] | None:
    inputs = body.get("input")
    inputs = [inputs] if isinstance(inputs, str) else inputs
    if not isinstance(inputs, list) or not inputs or not all(isinstance(i, str) and i for i in inputs):
        return _bad("'input' cannot be an empty string or list", "input")
    if len(inputs) > 2048:
        return _bad("'input' must have at most 2048 items", "input")
    counts = [counter.text(body["model"], text).tokens for text in inputs]
    if max(counts) > 8192:
        return _bad("This model's maximum context length is 8192 tokens", "input", "context_length_exceeded")
    if sum(counts) > 300_000:
        return _bad("Requested 300001 tokens, max 300000 tokens per request", "input", "max_tokens_per_request")
    return None


def _invalid_image(body: dict[str, Any]) -> dict[str, Any] | None:
    model = str(body["model"])
    size = body.get("size")
    allowed = IMAGE_SIZES.get(model, GPT_IMAGE_SIZES if model.startswith("gpt-image") else None)
    if size is not None and allowed is not None and size not in allowed:
        return _bad(f"'{size}' is not one of {sorted(allowed)} - 'size'", "size")
    if model == "dall-e-3" and int(body.get("n") or 1) != 1:
        return _bad("You must provide n=1 for this model.", "n")
    return None


def prompt_tokens(kind: str, body: dict[str, Any], counter: Counter) -> int:
    """The tokens a request counts against a tokens-per-minute limit, besides its max_tokens."""
    model = str(body.get("model"))
    if kind == "chat":
        messages = counter.messages(model, body["messages"]).tokens
        return messages + _images(model, "/chat/completions", body) + extra_prompt(kind, body, counter)
    if kind == "completion":
        return counter.text(model, str(body["prompt"])).tokens
    if kind == "responses":
        messages = counter.body("/responses", body).tokens
        return messages + _images(model, "/responses", body) + extra_prompt(kind, body, counter)
    if kind in ("embeddings", "moderations"):
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        return sum(counter.text(model, text).tokens for text in inputs if isinstance(text, str))
    return 0


def _images(model: str, endpoint: str, body: dict[str, Any]) -> int:
    """Image parts as the API bills them: by their size (a PNG's header says it; else 1024x1024)."""
    return sum(
        vision.image_tokens(model, *(vision.png_size(vision.url_of(p)) or (1024, 1024)), vision.detail_of(p))
        for p in vision.image_parts(endpoint, body)
    )


def tokens_charged(kind: str, body: dict[str, Any], counter: Counter) -> int:
    """What a request costs against a tokens-per-minute limit: its prompt and its max_tokens, as
    the API estimates it (legacy completions default to 16)."""
    max_tokens = (
        body.get("max_completion_tokens")
        or body.get("max_tokens")
        or body.get("max_output_tokens")
        or (16 if kind == "completion" else 0)
    )
    return prompt_tokens(kind, body, counter) + int(max_tokens)


def embeddings(body: dict[str, Any], counter: Counter) -> dict[str, Any]:
    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
    dimensions = int(body.get("dimensions") or EMBEDDING_DIMENSIONS.get(body["model"], 1536))
    data = []
    for index, text in enumerate(inputs):
        vector = vector_for(text, dimensions)
        encoded: Any = (
            base64.b64encode(vector).decode()
            if body.get("encoding_format") == "base64"
            else list(struct.unpack(f"{dimensions}f", vector))
        )
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    tokens = prompt_tokens("embeddings", body, counter)
    return {
        "object": "list",
        "data": data,
        "model": body["model"],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def vector_for(text: str, dimensions: int) -> bytes:
    """A deterministic float32 vector for a text, as bytes."""
    digest = hashlib.sha256(text.encode()).digest()
    levels = [_LEVELS[b] for b in digest]
    values = (levels * (dimensions // len(levels) + 1))[:dimensions]
    return struct.pack(f"{dimensions}f", *values)


def moderations(body: dict[str, Any]) -> dict[str, Any]:
    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
    results = []
    for text in inputs:
        lowered = str(text).lower()
        categories = {name: word in lowered for name, word in MODERATION_CATEGORIES.items()}
        scores = {
            name: 0.97 if on else round(int(hashlib.md5((name + lowered).encode()).hexdigest()[:4], 16) / 6.5e6, 6)
            for name, on in categories.items()
        }
        results.append(
            {
                "flagged": any(categories.values()),
                "categories": categories,
                "category_scores": scores,
                "category_applied_input_types": {name: ["text"] for name in categories},
            }
        )
    return {
        "id": "modr-" + hashlib.sha1(repr(inputs).encode()).hexdigest()[:24],
        "model": body["model"],
        "results": results,
    }


def images(body: dict[str, Any], counter: Counter) -> dict[str, Any]:
    model = str(body["model"])
    n = int(body.get("n") or 1)
    gpt_image = model.startswith("gpt-image")
    as_b64 = gpt_image or body.get("response_format") == "b64_json"
    key = hashlib.sha1(f"{model}|{body['prompt']}".encode()).hexdigest()[:16]
    data = []
    for k in range(n):
        entry: dict[str, Any] = (
            {"b64_json": base64.b64encode(tiny_png(key, k)).decode()}
            if as_b64
            else {"url": f"https://images.mock.invalid/{key}-{k}.png"}
        )
        if model == "dall-e-3":
            entry["revised_prompt"] = f"A detailed rendering of: {body['prompt']}"
        data.append(entry)
    answer: dict[str, Any] = {"created": 1700000000, "data": data}
    if gpt_image:
        text_tokens = counter.text("gpt-4o", str(body["prompt"])).tokens
        output_tokens = {"low": 272, "medium": 1056}.get(str(body.get("quality")), 4160) * n
        answer["usage"] = {
            "input_tokens": text_tokens,
            "output_tokens": output_tokens,
            "total_tokens": text_tokens + output_tokens,
            "input_tokens_details": {"text_tokens": text_tokens, "image_tokens": 0},
        }
        answer["output_format"] = body.get("output_format", "png")
    return answer


def tiny_png(key: str, k: int) -> bytes:
    """A valid 1x1 PNG whose colour comes from the request, so images differ by request."""
    colour = hashlib.sha1(f"{key}{k}".encode()).digest()[:3]

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" + colour))
        + chunk(b"IEND", b"")
    )


def speech(body: dict[str, Any]) -> tuple[bytes, str]:
    """Audio as long as the text would take to say (about 15 characters a second): silent WAV
    for format wav, and for the others bytes that name the request (the mock encodes nothing)."""
    fmt = str(body.get("response_format") or "mp3")
    seconds = max(0.1, len(body["input"]) / 15 / float(body.get("speed") or 1.0))
    if fmt == "wav":
        return silent_wav(seconds), SPEECH_TYPES["wav"]
    marker = f"mock {fmt} audio: {body['voice']}: {body['input']}".encode()
    return marker, SPEECH_TYPES.get(fmt, "audio/mpeg")


def silent_wav(seconds: float, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(rate)
        audio.writeframes(b"\x00\x00" * int(seconds * rate))
    return buffer.getvalue()


def transcription(fields: dict[str, Any], filename: str, data: bytes) -> tuple[Any, str]:
    """(body, content type): JSON for json and verbose_json, plain text for text, srt and vtt."""
    try:
        with wave.open(io.BytesIO(data), "rb") as audio:
            duration = round(audio.getnframes() / audio.getframerate(), 2)
    except (wave.Error, EOFError):
        duration = round(len(data) / 16000, 2)
    text = f"Transcript of {filename} ({len(data)} bytes)"
    if fields.get("language"):
        text += f" in {fields['language']}"
    fmt = fields.get("response_format") or "json"
    if fmt == "text":
        return text, "text/plain"
    if fmt in ("srt", "vtt"):
        head = "WEBVTT\n\n" if fmt == "vtt" else "1\n"
        return f"{head}00:00:00.000 --> 00:00:{duration:06.3f}\n{text}\n", "text/plain"
    if fmt == "verbose_json":
        return {
            "task": "transcribe",
            "language": fields.get("language") or "english",
            "duration": duration,
            "text": text,
            "segments": [{"id": 0, "start": 0.0, "end": duration, "text": text}],
        }, "application/json"
    answer: dict[str, Any] = {"text": text}
    if str(fields.get("model", "")).startswith("gpt-4o"):
        audio_tokens = int(duration * 10) + 1
        answer["usage"] = {
            "type": "tokens",
            "input_tokens": audio_tokens,
            "output_tokens": len(text.split()),
            "total_tokens": audio_tokens + len(text.split()),
            "input_token_details": {"audio_tokens": audio_tokens, "text_tokens": 0},
        }
    return answer, "application/json"


# ------------------------------------------------------------------ chat and legacy completions


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
    n = body.get("n")
    each = n if isinstance(n, int) else 1  # n answers, as many billed
    usage = _usage(prompt, counter.text(body["model"], text).tokens * each, fault)
    more = mockusage.extra(body, counter, text) if chat else mockusage.Extra()
    if isinstance(usage, dict) and fault not in ("usage-strings", "usage-negative"):
        mockusage.apply(usage, more)
    if fault == "split-emoji":  # padded so that the emoji's two UTF-16 halves fall in two events
        text += " " * ((7 - len(text.encode("utf-16-le")) // 2) % 8) + "\U0001f600"
    ident = ("chatcmpl-" if chat else "cmpl-") + hashlib.sha1(raw).hexdigest()[:24]
    if body.get("stream") and fault != "ignore-stream":
        events = stream_events(ident, body, text, finish, usage, chat, fault, more.tier)
        return Reply(events=events, usage=usage, tier=more.tier)
    choices = []
    for index in range(each):
        choice: dict[str, Any] = {"index": index, "finish_reason": finish, "logprobs": None}
        if chat and fault == "refusal":
            choice["message"] = {"role": "assistant", "content": None, "refusal": REFUSAL}
        elif chat:
            choice["message"] = {"role": "assistant", "content": text, "refusal": None}
        else:
            choice["text"] = text
        choices.append(choice)
    return Reply(
        {
            "id": ident,
            "object": "chat.completion" if chat else "text_completion",
            "created": 1700000000,
            "model": body["model"],
            "choices": choices,
            "usage": usage,
            "system_fingerprint": "fp_mock",
            "service_tier": more.tier,
        }
    )


def reply_text(body: dict[str, Any], chat: bool, max_tokens: int | None, counter: Counter) -> tuple[str, str]:
    """(text, finish_reason): an echo of the last user message (or the prompt), in a fenced block
    when a system prompt asks for code, cut to `max_tokens` with finish_reason `length`."""
    if chat:
        messages = body["messages"]
        last = next((m for m in reversed(messages) if m.get("role") == "user"), messages[-1])
        said = _text(last.get("content"))
        wants_code = any(
            "code" in _text(m.get("content")) for m in messages if m.get("role") in ("system", "developer")
        )
        text = f"```python\n# {said}\nprint({said!r})\n```" if wants_code else f"Echo: {said}"
    else:
        text = f"Echo: {body['prompt']}"
    if max_tokens is not None:
        encoding = counter.encoding("o200k_base")
        if encoding is not None:
            tokens = encoding.encode_ordinary(text)
            if len(tokens) > max_tokens:
                return encoding.decode(tokens[:max_tokens]), "length"
    return text, "stop"


REFUSAL = "I'm sorry, I cannot help with that request."


def schema_asked(body: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON Schema a request asks its answer to match (chat or Responses API), if any."""
    chat = body.get("response_format")
    if isinstance(chat, dict) and chat.get("type") == "json_schema":
        return (chat.get("json_schema") or {}).get("schema")
    text = (body.get("text") or {}).get("format") if isinstance(body.get("text"), dict) else None
    if isinstance(text, dict) and text.get("type") == "json_schema":
        return text.get("schema")
    return None


def response(body: dict[str, Any], raw: bytes, counter: Counter, fault: str | None = None) -> Reply:
    """A Responses API answer: an echo of the input (its last user message), `incomplete` with
    reason `max_output_tokens` when cut there; streamed as its typed events when asked."""
    value = body["input"]
    users = [m for m in value if isinstance(m, dict) and m.get("role") == "user"] if isinstance(value, list) else []
    said = value if isinstance(value, str) else _text(users[-1].get("content") if users else "")
    text, finish = reply_text({"prompt": said}, False, body.get("max_output_tokens"), counter)
    schema = schema_asked(body)
    if schema is not None:
        text = structured_text(schema, text, fault)
    prompt = prompt_tokens("responses", body, counter)
    completion = counter.text(str(body["model"]), text).tokens
    more = mockusage.extra(body, counter, text, "input")
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
    return Reply(events=response_events(answer, text), usage=answer["usage"], tier=more.tier)


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


# ------------------------------------------------------------------ every kind


def _transcription_reply(body: dict[str, Any]) -> Reply:
    filename, data = body["_file"]
    answer, content_type = transcription({k: v for k, v in body.items() if k != "_file"}, filename, data)
    return Reply(answer, content_type)


Answer = Callable[[dict[str, Any], bytes, Counter, "str | None"], Reply]
# kind: its answer to a valid request (body, raw bytes, counter, the answer fault or None)
REPLIES: dict[str, Answer] = {
    "chat": lambda body, raw, counter, fault: completion(body, raw, counter, True, fault),
    "completion": lambda body, raw, counter, fault: completion(body, raw, counter, False, fault),
    "responses": lambda body, raw, counter, fault: response(body, raw, counter, fault),
    "embeddings": lambda body, raw, counter, fault: Reply(embeddings(body, counter)),
    "moderations": lambda body, raw, counter, fault: Reply(moderations(body)),
    "images": lambda body, raw, counter, fault: Reply(images(body, counter)),
    "speech": lambda body, raw, counter, fault: Reply(*speech(body)),
    "transcriptions": lambda body, raw, counter, fault: _transcription_reply(body),
}


def reply(kind: str, body: dict[str, Any], raw: bytes, counter: Counter, fault: str | None = None) -> Reply:
    """What the API answers a valid request of `kind`; `fault` is an answer fault, or None."""
    return REPLIES[kind](body, raw, counter, fault)
