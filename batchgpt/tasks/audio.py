"""The audio task types: speech (text to an audio file, billed by the character or by its
seconds) and transcription (an uploaded file to text, billed by the minute or by tokens).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batchgpt.audio import seconds_of
from batchgpt.providers.openai import details_of, token_count, usage_of
from batchgpt.records import PLAIN, Billed, Reply

from .base import MalformedReply, TaskType, passthrough


class Speech(TaskType):
    name = "speech"
    endpoint = "/audio/speech"
    text_field = "text"
    options = ("voice", "format", "speed")
    billing = "characters"
    chat_family = False
    default_model = "tts-1"

    def body(self, item: Mapping[str, Any], options: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
        body = {"model": params["model"], "input": self.text(item, options), "voice": options.get("voice") or "alloy"}
        return passthrough(body, options, ("format", "speed"), params, rename={"format": "response_format"})

    def units(self, body: Mapping[str, Any]) -> float | None:
        return float(len(body["input"]))

    def parse(self, data: Mapping[str, Any]) -> Reply:
        audio_bytes = data.get("_binary")
        if not isinstance(audio_bytes, bytes) or not audio_bytes:
            raise MalformedReply("the answer holds no audio")
        content_type = str(data.get("_content_type", "")).split(";")[0].strip()
        suffix = _AUDIO_SUFFIXES.get(content_type, "mp3")
        seconds = seconds_of(audio_bytes)  # what models billed by audio tokens bill
        billed = PLAIN if seconds is None else Billed(audio_seconds=seconds)
        return Reply(output=None, media=((suffix, audio_bytes),), billed=billed)


_AUDIO_SUFFIXES = {
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/opus": "opus",
    "audio/ogg": "opus",
    "audio/aac": "aac",
    "audio/flac": "flac",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/pcm": "pcm",
    "audio/l16": "pcm",
}


class Transcription(TaskType):
    name = "transcription"
    endpoint = "/audio/transcriptions"
    options = ("language", "prompt", "response_format")
    billing = "minutes"
    chat_family = False
    default_model = "whisper-1"
    file_field = "file"

    def body(self, item: Mapping[str, Any], options: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
        return passthrough({"model": params["model"]}, options, self.options, params)

    def parse(self, data: Mapping[str, Any]) -> Reply:
        text = data.get("text")
        if not isinstance(text, str):
            raise MalformedReply("the transcription has no text")
        usage = usage_of(data)
        duration = data.get("duration")
        if duration is None and usage.get("type") == "duration":  # whisper's usage: the seconds billed
            duration = usage.get("seconds")
        if duration is not None and (
            isinstance(duration, bool) or not isinstance(duration, (int, float)) or not 0 <= duration < float("inf")
        ):
            raise MalformedReply(f"duration is {duration!r}, not a length in seconds")
        details = {k: data[k] for k in ("language", "duration") if k in data} or None
        prompt = token_count(usage, "input_tokens")
        # gpt-4o-transcribe's usage names its details `input_token_details`; what they do not tell
        # apart is audio, the dearer kind
        told = details_of(usage, "input_token_details") or details_of(usage, "input_tokens_details")
        heard = token_count(told, "audio_tokens", "usage.input_token_details")
        return Reply(
            output=text,
            units=None if duration is None else float(duration) / 60,
            prompt_tokens=prompt,
            completion_tokens=token_count(usage, "output_tokens"),
            details=details,
            billed=Billed(audio_in=(prompt or 0) if heard is None else heard) if prompt else PLAIN,
        )
