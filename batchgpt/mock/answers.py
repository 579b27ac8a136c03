"""What the mock answers to the kinds beyond chat: embeddings (a vector that follows from the
text), moderations (flagged by a word per category), images (a tiny PNG or a URL), speech
(silent WAV or bytes naming the request) and transcriptions (a line naming the upload)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import struct
import wave
import zlib
from typing import Any

from batchgpt.tokens import Counter

from .bill import prompt_tokens
from .shapes import inputs as inputs_of

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


SPEECH_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
_LEVELS = [((b - 128) / 128.0) for b in range(256)]


def embeddings(body: dict[str, Any], counter: Counter) -> dict[str, Any]:
    dimensions = int(body.get("dimensions") or EMBEDDING_DIMENSIONS.get(body["model"], 1536))
    data = []
    for index, text in enumerate(inputs_of(body)):  # a token array's vector follows from its ids
        vector = vector_for(text if isinstance(text, str) else json.dumps(text), dimensions)
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
    except (wave.Error, EOFError, ValueError, ZeroDivisionError, struct.error):  # no WAV, or a broken one
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
