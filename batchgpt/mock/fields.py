"""The type and bounds of each top-level field the mock's endpoints take (FIELDS), and the 400 the
API gives a value that breaks them, in the API's own words and codes: `invalid_type`,
`integer_above_max_value`, `decimal_below_min_value`, `string_above_max_length`,
`array_above_max_length`, `empty_array`, `invalid_value`, `missing_required_parameter`, with
`param` naming the field (`messages[0].role` for a nested one).

Bounds are the OpenAPI spec's (the facts' SPEC) where the facts do not give them. Fields no rule
names are let through, as relays and local servers let them through; the shapes inside messages,
inputs and tools are shapes.py's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import error_body
from .reading import kind_name

Problem = dict[str, Any]
# The most output tokens a request may ask for. The API checks each model's own cap ("max_tokens
# is too large: N. This model supports at most 16384 completion tokens"); the mock knows no
# model's, so it takes the largest of today's models (gpt-5: 128,000) for all.
MAX_OUTPUT_TOKENS = 128_000


@dataclass(frozen=True)
class Rule:
    """What a field's value may be: one of `kinds` (JSON kinds: integer, number, string, boolean,
    object, array), within `low`..`high` (numbers) or `shortest`..`longest` (strings, arrays), one
    of `values` (strings) and, for arrays, made of `items`."""

    kinds: tuple[str, ...]
    low: float | None = None
    high: float | None = None
    shortest: int | None = None
    longest: int | None = None
    values: tuple[str, ...] = ()
    items: str | None = None
    required: bool = False


def bad(message: str, param: str | None, code: str | None = None) -> Problem:
    return error_body(message, "invalid_request_error", code, param)


def integer(low: float | None = None, high: float | None = None) -> Rule:
    return Rule(("integer",), low, high)


def number(low: float | None = None, high: float | None = None) -> Rule:
    return Rule(("number",), low, high)


def text(longest: int | None = None, *values: str, required: bool = False) -> Rule:
    return Rule(("string",), longest=longest, values=values, required=required)


BOOLEAN = Rule(("boolean",))
OBJECT = Rule(("object",))
SAMPLING = {"temperature": number(0, 2), "top_p": number(0, 1), "top_logprobs": integer(0, 20)}
PENALTIES = {"presence_penalty": number(-2, 2), "frequency_penalty": number(-2, 2)}
COMMON = {"stream": BOOLEAN, "user": text(), "seed": integer(), "service_tier": text(), "store": BOOLEAN}

FIELDS: dict[str, dict[str, Rule]] = {
    "chat": {
        "messages": Rule(("array",), shortest=1, required=True),
        "n": integer(1, 128),
        "max_tokens": integer(1, MAX_OUTPUT_TOKENS),
        "max_completion_tokens": integer(1, MAX_OUTPUT_TOKENS),
        **SAMPLING,
        **PENALTIES,
        **COMMON,
        "logprobs": BOOLEAN,
        "stream_options": OBJECT,
        "stop": Rule(("string", "array"), items="string", longest=4),
        "tools": Rule(("array",), items="object", longest=128),
        "tool_choice": Rule(("string", "object")),
        "parallel_tool_calls": BOOLEAN,
        "response_format": OBJECT,
        "logit_bias": OBJECT,
        "modalities": Rule(("array",), items="string"),
        "prompt_cache_key": text(),
        "reasoning_effort": text(),
    },
    "completion": {
        "prompt": Rule(("string", "array"), required=True),
        "n": integer(1, 128),
        "best_of": integer(0, 20),
        "max_tokens": integer(0, MAX_OUTPUT_TOKENS),
        "logprobs": integer(0, 5),
        "echo": BOOLEAN,
        "suffix": text(),
        "stop": Rule(("string", "array"), items="string", longest=4),
        "stream_options": OBJECT,
        "logit_bias": OBJECT,
        **{k: v for k, v in SAMPLING.items() if k != "top_logprobs"},
        **PENALTIES,
        **COMMON,
    },
    "responses": {
        "input": Rule(("string", "array"), required=True),
        "instructions": text(),
        # The spec's minimum is 16; the mock takes any positive cap, so that tests cut an answer short cheaply.
        "max_output_tokens": integer(1, MAX_OUTPUT_TOKENS),
        **SAMPLING,
        **COMMON,
        "background": BOOLEAN,
        "text": OBJECT,
        "reasoning": OBJECT,
        "tools": Rule(("array",), items="object", longest=128),
        "tool_choice": Rule(("string", "object")),
        "parallel_tool_calls": BOOLEAN,
        "max_tool_calls": integer(1),
        "previous_response_id": text(),
        "truncation": text(None, "auto", "disabled"),
        "prompt_cache_key": text(),
    },
    "embeddings": {
        "input": Rule(("string", "array"), required=True),
        "dimensions": integer(1),
        "encoding_format": text(None, "float", "base64"),
        "user": text(),
    },
    "moderations": {"input": Rule(("string", "array"), required=True)},
    "images": {
        "prompt": text(required=True),
        "n": integer(1, 10),
        "size": text(),
        "quality": text(),
        "style": text(None, "vivid", "natural"),
        "response_format": text(None, "url", "b64_json"),
        "output_format": text(None, "png", "jpeg", "webp"),
        "output_compression": integer(0, 100),
        "background": text(),
        "moderation": text(),
        "user": text(),
    },
    "speech": {
        "input": text(4096, required=True),
        "voice": Rule(("string", "object"), required=True),
        "speed": number(0.25, 4.0),
        "response_format": text(None, "mp3", "opus", "aac", "flac", "wav", "pcm"),
        "instructions": text(4096),
        "stream_format": text(None, "sse", "audio"),
    },
}
_KINDS = {"integer": "an integer", "number": "a number", "string": "a string", "boolean": "a boolean"}


def check_fields(kind: str, body: dict[str, Any]) -> Problem | None:
    """The 400 for the first of the body's fields that breaks its rule, or None."""
    for name, rule in FIELDS.get(kind, {}).items():
        if name not in body:
            if rule.required:
                return bad(f"Missing required parameter: '{name}'.", name, "missing_required_parameter")
            continue
        problem = check(rule, name, body[name])
        if problem:
            return problem
    return None


def check(rule: Rule, param: str, value: Any) -> Problem | None:
    """The 400 for a value that breaks `rule` (null is taken where a field is optional)."""
    if value is None:
        return _wrong_type(rule, param, value) if rule.required else None
    if not any(is_kind(value, k) for k in rule.kinds):
        return _wrong_type(rule, param, value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _bounded(rule, param, value)
    if isinstance(value, str):
        return _text(rule, param, value)
    if isinstance(value, list):
        return _array(rule, param, value)
    return None


def is_kind(value: Any, kind: str) -> bool:
    """Whether a parsed JSON value is of a JSON kind (an integer is a number; true is neither)."""
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    types = {"string": str, "boolean": bool, "object": dict, "array": list}
    return isinstance(value, types[kind])


def _wrong_type(rule: Rule, param: str, value: Any) -> Problem:
    named = [_KINDS.get(k, "an " + k) for k in rule.kinds]
    expected = named[0] if len(named) == 1 else "one of " + " or ".join(named)
    return bad(
        f"Invalid type for '{param}': expected {expected}, but got {kind_name(value)} instead.", param, "invalid_type"
    )


def _bounded(rule: Rule, param: str, value: float) -> Problem | None:
    sort = "integer" if rule.kinds == ("integer",) else "decimal"
    if rule.low is not None and value < rule.low:
        side, code, bound = "below minimum", "below_min", f">= {rule.low:g}"
    elif rule.high is not None and value > rule.high:
        side, code, bound = "above maximum", "above_max", f"<= {rule.high:g}"
    else:
        return None
    message = f"Invalid '{param}': {sort} {side} value. Expected a value {bound}, but got {value} instead."
    return bad(message, param, f"{sort}_{code}_value")


def _text(rule: Rule, param: str, value: str) -> Problem | None:
    # `longest` of a field that may be a string or an array (`stop`) bounds the array
    if rule.longest is not None and "array" not in rule.kinds and len(value) > rule.longest:
        return bad(
            f"Invalid '{param}': string too long. Expected a string with maximum length {rule.longest}, "
            f"but got a string with length {len(value)} instead.",
            param,
            "string_above_max_length",
        )
    if rule.values and value not in rule.values:
        return invalid_value(param, value, rule.values)
    return None


def invalid_value(param: str, value: Any, allowed: tuple[str, ...]) -> Problem:
    listed = ", ".join(f"'{v}'" for v in allowed[:-1]) + f" and '{allowed[-1]}'" if len(allowed) > 1 else allowed[0]
    return bad(f"Invalid value: '{str(value)[:100]}'. Supported values are: {listed}.", param, "invalid_value")


def _array(rule: Rule, param: str, value: list[Any]) -> Problem | None:
    if rule.shortest and not value:
        return bad(
            f"Invalid '{param}': empty array. Expected an array with minimum length {rule.shortest}, "
            "but got an empty array instead.",
            param,
            "empty_array",
        )
    if rule.longest is not None and len(value) > rule.longest:
        return bad(
            f"Invalid '{param}': array too long. Expected an array with maximum length {rule.longest}, "
            f"but got an array with length {len(value)} instead.",
            param,
            "array_above_max_length",
        )
    if rule.items is not None:
        for index, item in enumerate(value):
            if not is_kind(item, rule.items):
                return _wrong_type(Rule((rule.items,)), f"{param}[{index}]", item)
    return None
