"""The task types that pack many items into one request: embedding and moderation."""

from __future__ import annotations

import array
import base64
import binascii
from collections.abc import Mapping
from typing import Any

from batchgpt.providers.openai import token_count, usage_of
from batchgpt.records import Reply

from .base import MalformedReply, TaskType, data_list, passthrough


class Embedding(TaskType):
    name = "embedding"
    endpoint = "/embeddings"
    text_field = "text"
    options = ("dimensions",)
    chat_family = False
    default_model = "text-embedding-3-small"
    # The API takes up to 2048 inputs and 300,000 tokens a request; 256 vectors keep an answer a
    # few MB. A task's `batch_size` changes it.
    pack_size = 256

    def body(self, item: Mapping[str, Any], options: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
        # base64, as the official SDK asks: a quarter of the bytes of a JSON float list.
        body = {"model": params["model"], "input": self.text(item, options), "encoding_format": "base64"}
        return passthrough(body, options, ("dimensions",), params)

    def parse(self, data: Mapping[str, Any]) -> Reply:
        vectors = []
        entries = data_list(data)
        if not all(isinstance(e, dict) and isinstance(e.get("index", 0), int) for e in entries):
            raise MalformedReply("an embedding entry has no whole-number index")
        for entry in sorted(entries, key=lambda e: e.get("index", 0)):
            vector = entry.get("embedding")
            if isinstance(vector, str):
                try:
                    vector = array.array("f", base64.b64decode(vector)).tolist()
                except (ValueError, binascii.Error):
                    raise MalformedReply("an embedding is not valid base64") from None
            if not isinstance(vector, list):
                raise MalformedReply("an embedding is missing")
            vectors.append(vector)
        return Reply(output=vectors, prompt_tokens=token_count(usage_of(data), "prompt_tokens"), completion_tokens=0)


class Moderation(TaskType):
    name = "moderation"
    endpoint = "/moderations"
    text_field = "text"
    billing = "free"
    chat_family = False
    default_model = "omni-moderation-latest"
    pack_size = 32  # the API's documented limit is not known; 32 texts a request is conservative

    def body(self, item: Mapping[str, Any], options: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
        return passthrough({"model": params["model"], "input": self.text(item, options)}, options, (), params)

    def parse(self, data: Mapping[str, Any]) -> Reply:
        outputs, details = [], []
        for result in data_list(data, "results"):
            if not isinstance(result, dict) or not isinstance(result.get("categories"), dict):
                raise MalformedReply("a moderation result has no categories")
            flagged_as = sorted(name for name, on in result["categories"].items() if on)
            outputs.append(f"flagged: {', '.join(flagged_as)}" if result.get("flagged") else "not flagged")
            details.append(
                {
                    "flagged": bool(result.get("flagged")),
                    "categories": flagged_as,
                    "scores": result.get("category_scores") or {},
                }
            )
        return Reply(output=outputs, details=details)
