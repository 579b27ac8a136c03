"""What the mock server bills for a prompt (its messages, its media, and the parts that are not
message text, as the real API is known to count them) and what a request charges against a
tokens-per-minute limit; kept apart from overhead.py (the estimate's count), so that tests
compare the estimate with a bill it did not make.

- Images (inputs.py reads them): by the model's formula (vision.image_tokens, the shared API
  facts, section 14) at the size their bytes say; an image behind a URL (never fetched) as
  URL_IMAGE, 1024x1024, at its detail.
- PDFs: each page as PAGE_TEXT_TOKENS of text (500, a typical page's) and one image of a US
  Letter page at 96 dpi (PAGE_IMAGE, 816x1056) at the part's detail (chat's: high); a PDF behind
  a `file_url` or `file_id` as one page. Other documents (the Responses API's `input_file`): a
  token for every FILE_BYTES_PER_TOKEN (4) bytes.
- Audio (`input_audio`): usage.py's audio tokens, HEARD_PER_S (10) a second of its length
  (batchgpt.audio reads it), in `prompt_tokens` and `prompt_tokens_details.audio_tokens`.
- Function definitions: OpenAI's cookbook recipe (num_tokens_for_tools), which matched the API's
  usage on gpt-3.5-turbo, gpt-4, gpt-4o and gpt-4o-mini: 7 tokens a function on o200k_base
  models, 10 on the older ones.
- A JSON Schema answer format: the schema's compact JSON without its `required`,
  `additionalProperties` and `$schema` keys, and 9 (measured, openai-cookbook issue #2140).
- A forced tool choice: no published count; billed as the message opening the call (3 tokens)
  and the function's name.
"""

from __future__ import annotations

import json
import math
from typing import Any

from batchgpt import vision
from batchgpt.tokens import Counter, encoding_for

from . import shapes
from .inputs import Media, media

URL_IMAGE = (1024, 1024)
PAGE_TEXT_TOKENS = 500
PAGE_IMAGE = (816, 1056)
FILE_BYTES_PER_TOKEN = 4
HEARD_PER_S = 10

_LEFT_OUT = ("required", "additionalProperties", "$schema")


def extra_prompt(kind: str, body: dict[str, Any], counter: Counter) -> int:
    """The prompt tokens of a body's function tools, forced tool choice and answer schema."""
    model = str(body.get("model"))

    def tokens(text: str) -> int:
        return counter.text(model, text).tokens

    functions = [t.get("function", t) for t in body.get("tools") or () if t.get("type") == "function"]
    total = _functions(functions, tokens, 7 if encoding_for(model)[0] == "o200k_base" else 10)
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        total += 3 + tokens(str((choice.get("function") or choice).get("name", "")))
    answer = body.get("response_format") if kind == "chat" else (body.get("text") or {}).get("format")
    if isinstance(answer, dict) and answer.get("type") == "json_schema":
        schema = (answer.get("json_schema") or answer).get("schema") if kind == "chat" else answer.get("schema")
        total += tokens(json.dumps(_omitted(schema), ensure_ascii=False, separators=(",", ":"))) + 9
    return total


def _functions(functions: list[dict[str, Any]], tokens: Any, init: int) -> int:
    """The cookbook's num_tokens_for_tools, less the messages."""
    total = 0
    for function in functions:
        total += init + tokens(f"{function['name']}:{_undotted(function.get('description', ''))}")
        properties = (function.get("parameters") or {}).get("properties") or {}
        if properties:
            total += 3
        for key, spec in properties.items():
            total += 3
            if "enum" in spec:
                total += -3 + sum(3 + tokens(str(item)) for item in spec["enum"])
            total += tokens(f"{key}:{spec.get('type', '')}:{_undotted(spec.get('description', ''))}")
    return total + 12 if functions else total


def _omitted(value: Any) -> Any:
    """`value` without the keys _LEFT_OUT, at every depth (as the measurement's omit-deep did)."""
    if isinstance(value, dict):
        return {k: _omitted(v) for k, v in value.items() if k not in _LEFT_OUT}
    if isinstance(value, list):
        return [_omitted(v) for v in value]
    return value


def _undotted(text: str) -> str:
    return text[:-1] if text.endswith(".") else text


def prompt_tokens(kind: str, body: dict[str, Any], counter: Counter) -> int:
    """The tokens a request counts against a tokens-per-minute limit, besides its max_tokens."""
    model = str(body.get("model"))
    if kind == "chat":
        messages = counter.messages(model, body["messages"]).tokens
        return messages + media_tokens(model, media(kind, body)) + extra_prompt(kind, body, counter)
    if kind == "completion":
        return counter.text(model, str(body["prompt"])).tokens
    if kind == "responses":
        messages = counter.body("/responses", body).tokens
        return messages + media_tokens(model, media(kind, body)) + extra_prompt(kind, body, counter)
    if kind in ("embeddings", "moderations"):
        return sum(_input_tokens(model, item, counter) for item in shapes.inputs(body))
    return 0


def _input_tokens(model: str, item: Any, counter: Counter) -> int:
    """An embeddings or moderations input's tokens: a text's, a moderation part's, a token array's ids."""
    if isinstance(item, str):
        return counter.text(model, item).tokens
    if isinstance(item, dict):
        return counter.text(model, str(item.get("text") or "")).tokens
    return len(item)


def media_tokens(model: str, found: list[Media]) -> int:
    """The prompt tokens of a request's images and documents (its audio: heard_tokens)."""
    total = 0
    for item in found:
        if item.kind == "image":
            size = URL_IMAGE if item.url is not None else (item.width, item.height)
            total += vision.image_tokens(model, *size, item.detail)
        elif item.kind == "pdf":
            total += item.pages * (PAGE_TEXT_TOKENS + vision.image_tokens(model, *PAGE_IMAGE, item.detail))
        elif item.kind == "file":
            total += math.ceil(item.size / FILE_BYTES_PER_TOKEN)
    return total


def heard_tokens(found: list[Media]) -> int:
    """The audio tokens of a request's `input_audio` parts."""
    return sum(math.ceil(item.seconds * HEARD_PER_S) for item in found if item.kind == "audio")


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
