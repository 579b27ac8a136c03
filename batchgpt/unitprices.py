"""Prices genai-prices lacks, and how answers billed by tokens are bounded before they arrive.

Per image, per character and per minute: the endpoints not billed per token (genai-prices lists
dall-e-3 not at all, and tts-1 and whisper-1 at $0). Audio rates genai-prices leaves out of
some models, filled in beside its own. And the rules that turn a duration or a text into the
tokens the audio models bill (gpt-4o-mini-tts, gpt-4o-transcribe), for the dry run and the budget
before an answer says what it used. Each figure names its source and the date it was read.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping
from typing import Any

AUTO = "auto"
# USD per image by (model, quality, size): dall-e from openai.com/pricing as kept in
# kevinhermawan/Canvas model-info.json (2023-12-25) and one-api relay/billing/ratio/image.go;
# gpt-image-1 from developers.openai.com/ja-JP/api/docs/models/gpt-image-1 (read 2026-11);
# gpt-image-1-mini from OpenAI's pricing page as quoted by aifreeapi.com (2026-03-27). The GPT
# image models bill tokens, and these are OpenAI's approximations: an answer's usage is priced
# instead, where it has one.
IMAGE_PRICES: dict[tuple[str, str, str], float] = {
    ("dall-e-3", "standard", "1024x1024"): 0.040,
    ("dall-e-3", "standard", "1792x1024"): 0.080,
    ("dall-e-3", "standard", "1024x1792"): 0.080,
    ("dall-e-3", "hd", "1024x1024"): 0.080,
    ("dall-e-3", "hd", "1792x1024"): 0.120,
    ("dall-e-3", "hd", "1024x1792"): 0.120,
    ("dall-e-2", "standard", "1024x1024"): 0.020,
    ("dall-e-2", "standard", "512x512"): 0.018,
    ("dall-e-2", "standard", "256x256"): 0.016,
    ("gpt-image-1", "low", "1024x1024"): 0.011,
    ("gpt-image-1", "low", "1024x1536"): 0.016,
    ("gpt-image-1", "low", "1536x1024"): 0.016,
    ("gpt-image-1", "medium", "1024x1024"): 0.042,
    ("gpt-image-1", "medium", "1024x1536"): 0.063,
    ("gpt-image-1", "medium", "1536x1024"): 0.063,
    ("gpt-image-1", "high", "1024x1024"): 0.167,
    ("gpt-image-1", "high", "1024x1536"): 0.25,
    ("gpt-image-1", "high", "1536x1024"): 0.25,
    ("gpt-image-1-mini", "low", "1024x1024"): 0.005,
    ("gpt-image-1-mini", "low", "1024x1536"): 0.006,
    ("gpt-image-1-mini", "low", "1536x1024"): 0.006,
    ("gpt-image-1-mini", "medium", "1024x1024"): 0.011,
    ("gpt-image-1-mini", "medium", "1024x1536"): 0.015,
    ("gpt-image-1-mini", "medium", "1536x1024"): 0.015,
    ("gpt-image-1-mini", "high", "1024x1024"): 0.036,
    ("gpt-image-1-mini", "high", "1024x1536"): 0.052,
    ("gpt-image-1-mini", "high", "1536x1024"): 0.052,
}
# The API's defaults where they are no choice of its own; GPT image models default to `auto`.
_IMAGE_DEFAULTS = {"dall-e-3": ("standard", "1024x1024"), "dall-e-2": ("standard", "1024x1024")}
IMAGE_AUTO = "size or quality auto: priced as the most expensive choice the API may make"
# USD per 1M characters: developers.openai.com/api/docs/models/tts-1 (read 2026-11); one-api agrees.
CHARACTER_PRICES = {"tts-1": 15.0, "tts-1-hd": 30.0}
# USD per minute of audio: developers.openai.com/ja-JP/api/docs/models/whisper-1 (read 2026-11).
MINUTE_PRICES = {"whisper-1": 0.006}
# USD per 1M audio tokens where genai-prices (0.2.5) has none, longest name first. Sources:
# OpenAI's pricing page as OpenRouter and aitoolrank.net list it (gpt-4o-audio-preview: $40 in,
# $80 out; its 2024-10-01 snapshot $100 and $200; gpt-4o-mini-audio-preview $10 and $20), and
# developers.openai.com/api/docs/models/gpt-4o-mini-tts ($12 per 1M audio output tokens), read 2026-11.
AUDIO_RATES: tuple[tuple[str, Mapping[str, float]], ...] = (
    ("gpt-4o-audio-preview-2024-10-01", {"input_audio": 100.0, "output_audio": 200.0}),
    ("gpt-4o-mini-audio-preview", {"input_audio": 10.0, "output_audio": 20.0}),
    ("gpt-4o-audio-preview", {"input_audio": 40.0, "output_audio": 80.0}),
    ("gpt-4o-mini-tts", {"output_audio": 12.0}),
)
# developers.openai.com/api/docs/guides/realtime-costs: "Audio tokens in user messages are 1
# token per 100 ms of audio, while audio tokens in assistant messages are 1 token per 50ms".
HEARD_TOKENS_PER_S = 10
SPOKEN_TOKENS_PER_S = 20
# Bounds before an answer: speech at 10 characters a second at speed 1 (slow: OpenAI's voices
# speak about 15), a transcript at 5 tokens a second of audio (fast speech, 200 words a minute,
# is about 4.4) and at most 2,000 (gpt-4o-transcribe's output limit, on its model page), and
# audio token counts half again as large (their special tokens are not documented).
SPEECH_CHARS_PER_S = 10.0
TRANSCRIPT_TOKENS_PER_S = 5
TRANSCRIPT_MAX_TOKENS = 2000
AUDIO_MARGIN = 1.5
SPEECH_BOUND = (
    f"billed by tokens: bounded as speech at {SPEECH_CHARS_PER_S:g} characters a second, "
    f"{SPOKEN_TOKENS_PER_S} audio tokens a second, plus half"
)
TRANSCRIPT_BOUND = (
    f"billed by tokens: bounded as {HEARD_TOKENS_PER_S} audio tokens a second plus half, and a "
    f"transcript of {TRANSCRIPT_TOKENS_PER_S} tokens a second (at most {TRANSCRIPT_MAX_TOKENS:,})"
)


# Every model these tables price: names a misspelt one may have been meant to be (pricing.nearest).
NAMES = tuple(
    dict.fromkeys([*(m for m, _, _ in IMAGE_PRICES), *CHARACTER_PRICES, *MINUTE_PRICES, *(m for m, _ in AUDIO_RATES)])
)


def image_price(model: str, size: Any = None, quality: Any = None) -> tuple[float | None, bool]:
    """USD per image, and whether `auto` (or an unset choice the API makes itself) made it the
    most expensive the API may choose; (None, False) for a model or choice the table lacks."""
    choices = {(q, s): price for (m, q, s), price in IMAGE_PRICES.items() if m == model}
    default_quality, default_size = _IMAGE_DEFAULTS.get(model, (AUTO, AUTO))
    quality = default_quality if quality is None else str(quality)
    size = default_size if size is None else str(size)
    fits = [price for (q, s), price in choices.items() if quality in (AUTO, q) and size in (AUTO, s)]
    at_most = AUTO in (quality, size) and len(fits) > 1
    return (max(fits) if fits else None), at_most


def audio_rates(model: str) -> Mapping[str, float]:
    """The audio rates batchgpt knows for a model genai-prices gives none."""
    name = model.rsplit("/", 1)[-1]
    return next((rates for prefix, rates in AUDIO_RATES if name.startswith(prefix)), {})


def text_bound(text: str) -> int:
    """At most as many tokens as UTF-8 bytes: no tokenizer makes a token of less than a byte."""
    return len(text.encode("utf-8", "surrogatepass"))


def speech_tokens(body: Mapping[str, Any], audio_seconds: float | None = None) -> tuple[int, int]:
    """(text tokens at most, audio tokens) of a speech request: its audio's length where it was
    read, else the most its text may take to say."""
    said = str(body.get("input") or "")
    text = text_bound(said + str(body.get("instructions") or ""))
    if audio_seconds is not None:
        return text, math.ceil(audio_seconds * SPOKEN_TOKENS_PER_S)
    speed = _number(body.get("speed"), 1.0, 0.25, 4.0)
    seconds = len(said) / SPEECH_CHARS_PER_S / speed
    return text, math.ceil(seconds * SPOKEN_TOKENS_PER_S * AUDIO_MARGIN)


def transcription_tokens(minutes: float, body: Mapping[str, Any]) -> tuple[int, int, int]:
    """(audio tokens, prompt text tokens, transcript tokens), each at most, of `minutes` of audio."""
    seconds = minutes * 60
    audio = math.ceil(seconds * HEARD_TOKENS_PER_S * AUDIO_MARGIN)
    transcript = min(math.ceil(seconds * TRANSCRIPT_TOKENS_PER_S), TRANSCRIPT_MAX_TOKENS)
    return audio, text_bound(str(body.get("prompt") or "")), transcript


def heard_tokens(body: Mapping[str, Any]) -> int:
    """The audio tokens a chat or Responses request's `input_audio` parts count at most: their
    length as read from their headers (else their size at 6 kbit/s), 10 a second, plus half."""
    messages = body.get("messages") if "messages" in body else body.get("input")
    if type(messages) is not list:
        return 0
    for message in messages:  # nearly every request's messages are text: said at once
        if type(message) is dict and type(message.get("content")) is list:
            break
    else:
        return 0
    seconds = 0.0
    for message in messages:
        content = message.get("content") if isinstance(message, Mapping) else None
        for part in content if isinstance(content, list) else ():
            if isinstance(part, Mapping) and part.get("type") == "input_audio":
                seconds += _part_seconds(part.get("input_audio"))
    return math.ceil(seconds * HEARD_TOKENS_PER_S * AUDIO_MARGIN)


def speaks(body: Mapping[str, Any]) -> bool:
    """Whether a chat request asks to be answered aloud (its output tokens then audio ones)."""
    modalities = body.get("modalities")
    return isinstance(modalities, list) and "audio" in modalities


def _part_seconds(audio: Any) -> float:
    from . import audio as recordings  # only requests with audio parts need it

    data = audio.get("data") if isinstance(audio, Mapping) else None
    try:
        raw = base64.b64decode(str(data or ""))
    except (ValueError, binascii.Error):
        return 0.0
    seconds = recordings.seconds_of(raw)
    return len(raw) / recordings.LOWEST_BYTES_PER_S if seconds is None else seconds


def _number(value: Any, default: float, low: float, high: float) -> float:
    """A number the API accepts within [low, high]; `default` for anything else."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return default
    try:
        number = float(value)
    except ValueError:
        return default
    return number if low <= number <= high else default
