"""What the mock server bills for a prompt (its messages, its images by their size, and the parts
that are not message text, as the real API is known to count them) and what a request charges
against a tokens-per-minute limit; kept apart from overhead.py (the estimate's count), so that
tests compare the estimate with a bill it did not make.

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
from typing import Any

from batchgpt import vision
from batchgpt.tokens import Counter, encoding_for

from . import shapes

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
        return messages + _images(model, "/chat/completions", body) + extra_prompt(kind, body, counter)
    if kind == "completion":
        return counter.text(model, str(body["prompt"])).tokens
    if kind == "responses":
        messages = counter.body("/responses", body).tokens
        return messages + _images(model, "/responses", body) + extra_prompt(kind, body, counter)
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
