"""The image generation task type (`image`): billed by the image, or by an image model's tokens."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from batchgpt.providers.openai import RESPONSES_USAGE, billed_of, token_count, usage_of
from batchgpt.records import Reply

from .base import MalformedReply, TaskType, data_list, passthrough


class Image(TaskType):
    name = "image"
    endpoint = "/images/generations"
    text_field = "prompt"
    options = ("size", "quality", "style", "n", "response_format")
    billing = "images"
    chat_family = False

    def body(self, item: Mapping[str, Any], options: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
        body = {"model": params["model"], "prompt": self.text(item, options)}
        return passthrough(body, options, self.options, params)

    def units(self, body: Mapping[str, Any]) -> float | None:
        return float(body.get("n") or 1)

    def parse(self, data: Mapping[str, Any]) -> Reply:
        media, urls, revised = [], [], []
        suffix = str(data.get("output_format") or "png")
        for entry in data_list(data):
            if not isinstance(entry, dict):
                raise MalformedReply("an image entry is not an object")
            if entry.get("b64_json"):
                if not isinstance(entry["b64_json"], str):
                    raise MalformedReply("an image's b64_json is not text")
                try:
                    media.append((suffix, base64.b64decode(entry["b64_json"])))
                except (ValueError, binascii.Error):
                    raise MalformedReply("an image is not valid base64") from None
            elif entry.get("url"):
                urls.append(entry["url"])
            else:
                raise MalformedReply("an image entry has neither url nor b64_json")
            if entry.get("revised_prompt"):
                revised.append(entry["revised_prompt"])
        usage = usage_of(data)
        output = (urls[0] if len(urls) == 1 else urls) if urls else None
        completion = token_count(usage, "output_tokens")
        billed = billed_of(data, usage, RESPONSES_USAGE)
        if not billed.image_out:  # an image model's output is the image, unless its details say more
            billed = replace(billed, image_out=completion or 0)
        return Reply(
            output=output,
            media=tuple(media),
            units=float(len(media) + len(urls)),
            prompt_tokens=token_count(usage, "input_tokens"),
            completion_tokens=completion,
            details={"revised_prompt": revised} if revised else None,
            billed=billed,
        )
