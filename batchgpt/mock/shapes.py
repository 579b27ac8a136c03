"""The shapes inside a request that fields.py's flat rules cannot say: each chat message and its
content parts, the Responses API's input items, a legacy prompt, the inputs of embeddings and
moderations, tools and tool_choice, the answer formats, metadata and a speech voice. Each check
answers the API's 400 with `param` at the place (`messages[2].content[0].text`), or None.

Everything the mock reads from a body later (its counts, its answers, its faults) relies on these
shapes, so that no body reaches it in a form it would trip over.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .fields import Problem, Rule, bad, check, integer, is_kind, text
from .reading import kind_name

CHAT_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
RESPONSE_ROLES = ("user", "assistant", "system", "developer")
CHAT_PARTS = ("text", "image_url", "input_audio", "file", "refusal")
# the Responses API's message content: what a user gives, and what an assistant said before
RESPONSE_PARTS = ("input_text", "input_image", "input_file", "output_text", "refusal")
FORMATS = ("text", "json_object", "json_schema")
TOOL_CHOICES = ("none", "auto", "required")
MAX_INPUTS = 2048  # embeddings (facts, section 5); moderations too (the spec gives none: the mock's bound)
FUNCTION_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
OBJECT = Rule(("object",))
ARRAY = Rule(("array",))
CONTENT = Rule(("string", "array"))


def missing(param: str) -> Problem:
    return bad(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")


def first(*problems: Callable[[], Problem | None]) -> Problem | None:
    """The first problem the checks find, each run only if those before it found none."""
    for found in problems:
        problem = found()
        if problem:
            return problem
    return None


def messages(body: dict[str, Any]) -> Problem | None:
    for index, message in enumerate(body["messages"]):
        problem = _message(message, f"messages[{index}]")
        if problem:
            return problem
    return None


def _message(message: Any, at: str) -> Problem | None:
    role = message.get("role") if isinstance(message, dict) else None
    return first(
        lambda: check(OBJECT, at, message),
        lambda: _role(message, at, CHAT_ROLES),
        lambda: _content(message, at, CHAT_PARTS, required=role not in ("assistant", "function")),
        lambda: check(text(), f"{at}.name", message.get("name")),
        lambda: check(text(), f"{at}.tool_call_id", message.get("tool_call_id")),
        lambda: check(Rule(("array",), items="object"), f"{at}.tool_calls", message.get("tool_calls")),
    )


def _role(item: dict[str, Any], at: str, roles: tuple[str, ...]) -> Problem | None:
    if "role" not in item:
        return missing(f"{at}.role")
    role = item["role"]
    return check(text(None, *roles, required=True), f"{at}.role", role)


def _content(item: dict[str, Any], at: str, types: tuple[str, ...] | None, required: bool) -> Problem | None:
    """A message's content: a string, or parts (objects of a known `type`, their text a string)."""
    if item.get("content") is None:
        return missing(f"{at}.content") if required else None
    content = item["content"]
    problem = check(CONTENT, f"{at}.content", content)
    if problem or isinstance(content, str):
        return problem
    for index, part in enumerate(content):
        problem = _part(part, f"{at}.content[{index}]", types)
        if problem:
            return problem
    return None


def _part(part: Any, at: str, types: tuple[str, ...] | None) -> Problem | None:
    if not isinstance(part, dict):
        return check(OBJECT, at, part)
    if "type" not in part:
        return missing(f"{at}.type")
    kind = part["type"]
    problem = check(text(None, *(types or ()), required=True), f"{at}.type", kind)
    if problem:
        return problem
    if kind in ("text", "input_text", "output_text") and "text" not in part:
        return missing(f"{at}.text")
    if kind == "image_url" and not isinstance(part.get("image_url"), dict):
        inner = part.get("image_url")
        return missing(f"{at}.image_url") if inner is None else check(OBJECT, f"{at}.image_url", inner)
    return first(
        lambda: check(text(), f"{at}.text", part.get("text")),
        lambda: check(text(), f"{at}.image_url.url", _inner(part, "image_url", "url")),
        lambda: check(text(), f"{at}.image_url.detail", _inner(part, "image_url", "detail")),
        lambda: check(text(), f"{at}.input_audio.data", _inner(part, "input_audio", "data")),
    )


def _inner(part: dict[str, Any], key: str, field: str) -> Any:
    inner = part.get(key)
    return inner.get(field) if isinstance(inner, dict) else None


def response_input(body: dict[str, Any]) -> Problem | None:
    """The Responses API's input: a string, or items (messages with a role, or typed items)."""
    if isinstance(body["input"], str):
        return None
    for index, item in enumerate(body["input"]):
        problem = _response_item(item, f"input[{index}]")
        if problem:
            return problem
    return None


def _response_item(item: Any, at: str) -> Problem | None:
    if not isinstance(item, dict):
        return check(OBJECT, at, item)
    return first(
        lambda: _role(item, at, RESPONSE_ROLES) if "role" in item or "type" not in item else None,
        lambda: check(text(), f"{at}.type", item.get("type")),
        lambda: _content(item, at, RESPONSE_PARTS if "role" in item else None, required="role" in item),
    )


def prompt(body: dict[str, Any]) -> Problem | None:
    """A legacy prompt: a string, or an array of strings, of token ids, or of arrays of token ids."""
    value = body["prompt"]
    if isinstance(value, str):
        return None
    if not value:
        return check(Rule(("array",), shortest=1), "prompt", value)
    if all(isinstance(v, str) for v in value) or _tokens(value):
        return None
    return check(Rule(("array",), items="string"), "prompt", value)


def _tokens(value: list[Any]) -> bool:
    """An array of token ids, or of arrays of them."""
    if all(is_kind(v, "integer") for v in value):
        return True
    return all(isinstance(v, list) and v and all(is_kind(t, "integer") for t in v) for v in value)


def inputs(body: dict[str, Any]) -> list[Any]:
    """An embeddings or moderations input as a list of inputs (a lone string or token array is one)."""
    value = body["input"]
    if isinstance(value, str) or (isinstance(value, list) and value and all(is_kind(v, "integer") for v in value)):
        return [value]
    return list(value)


def embedding_input(body: dict[str, Any]) -> Problem | None:
    """Strings (none empty) or token arrays, at most MAX_INPUTS of them (their tokens: validate.py)."""
    value = body["input"]
    if value == "" or value == []:
        return bad("'input' cannot be an empty string or list.", "input")
    if isinstance(value, list) and len(value) > MAX_INPUTS:
        return check(Rule(("array",), longest=MAX_INPUTS), "input", value)
    for index, item in enumerate(inputs(body)):
        if item == "" or item == []:
            return bad(f"'input[{index}]' cannot be an empty string or list.", f"input[{index}]")
        if not (isinstance(item, str) or (isinstance(item, list) and _tokens(item))):
            return bad(
                f"Invalid type for 'input[{index}]': expected one of a string or an array of integers, "
                f"but got {kind_name(item)} instead.",
                f"input[{index}]",
                "invalid_type",
            )
    return None


def moderation_input(body: dict[str, Any]) -> Problem | None:
    """A string, strings, or parts (text and image_url), at most MAX_INPUTS of them."""
    value = body["input"]
    if isinstance(value, str):
        return None
    problem = check(Rule(("array",), longest=MAX_INPUTS), "input", value)
    if problem:
        return problem
    strings = all(isinstance(v, str) for v in value)
    for index, item in enumerate(value if not strings else ()):
        problem = _part(item, f"input[{index}]", ("text", "image_url"))
        if problem:
            return problem
    return None


def tools(body: dict[str, Any]) -> Problem | None:
    for index, tool in enumerate(body.get("tools") or ()):
        at = f"tools[{index}]"
        problem = (
            check(text(required=True), f"{at}.type", tool.get("type")) if "type" in tool else missing(f"{at}.type")
        )
        if problem or tool["type"] != "function":
            if problem:
                return problem
            continue
        chat = "function" in tool or "name" not in tool  # chat nests the function; Responses does not
        problem = _function(tool.get("function") if chat else tool, f"{at}.function" if chat else at)
        if problem:
            return problem
    return None


def _function(function: Any, at: str) -> Problem | None:
    if function is None:
        return missing(at)
    if not isinstance(function, dict):
        return check(OBJECT, at, function)
    if "name" not in function:
        return missing(f"{at}.name")
    name = function["name"]
    if isinstance(name, str) and not FUNCTION_NAME.fullmatch(name):
        return bad(f"Invalid '{at}.name': string does not match pattern '^[a-zA-Z0-9_-]{{1,64}}$'.", f"{at}.name")
    parameters = function.get("parameters")
    properties = parameters.get("properties") if isinstance(parameters, dict) else None
    return first(
        lambda: check(text(required=True), f"{at}.name", name),
        lambda: check(text(), f"{at}.description", function.get("description")),
        lambda: check(OBJECT, f"{at}.parameters", parameters),
        lambda: check(OBJECT, f"{at}.parameters.properties", properties),
        lambda: _properties(properties or {}, f"{at}.parameters.properties"),
    )


def _properties(properties: dict[str, Any], at: str) -> Problem | None:
    for key, spec in properties.items():
        problem = _property(spec, f"{at}.{key}")
        if problem:
            return problem
    return None


def _property(spec: Any, at: str) -> Problem | None:
    if not isinstance(spec, dict):
        return check(OBJECT, at, spec)
    return first(
        lambda: check(text(), f"{at}.description", spec.get("description")),
        lambda: check(ARRAY, f"{at}.enum", spec.get("enum")),
    )


def tool_choice(body: dict[str, Any]) -> Problem | None:
    choice = body.get("tool_choice")
    if isinstance(choice, str):
        return check(text(None, *TOOL_CHOICES), "tool_choice", choice)
    if not isinstance(choice, dict):
        return None
    function = choice.get("function")
    named = function if isinstance(function, dict) else choice
    return first(
        lambda: check(OBJECT, "tool_choice.function", function),
        lambda: check(text(), "tool_choice.type", choice.get("type")),
        lambda: check(text(), "tool_choice.function.name" if function else "tool_choice.name", named.get("name")),
    )


def response_format(body: dict[str, Any]) -> Problem | None:
    answer = body.get("response_format")
    if answer is None:
        return None
    return _format(answer, "response_format", nested=True)


def text_format(body: dict[str, Any]) -> Problem | None:
    value = body.get("text")
    answer = value.get("format") if isinstance(value, dict) else None
    return None if answer is None else _format(answer, "text.format", nested=False)


def _format(answer: Any, at: str, nested: bool) -> Problem | None:
    """An answer format; a json_schema one names its schema (nested under `json_schema` in chat)."""
    if not isinstance(answer, dict):
        return check(OBJECT, at, answer)
    if "type" not in answer:
        return missing(f"{at}.type")
    problem = check(text(None, *FORMATS, required=True), f"{at}.type", answer["type"])
    if problem or answer["type"] != "json_schema":
        return problem
    schema = answer.get("json_schema") if nested else answer
    where = f"{at}.json_schema" if nested else at
    if not isinstance(schema, dict):
        return missing(where) if schema is None else check(OBJECT, where, schema)
    if "name" not in schema:
        return missing(f"{where}.name")
    return first(
        lambda: check(text(64, required=True), f"{where}.name", schema["name"]),
        lambda: check(OBJECT, f"{where}.schema", schema.get("schema")),
        lambda: check(Rule(("boolean",)), f"{where}.strict", schema.get("strict")),
    )


def stream_options(body: dict[str, Any]) -> Problem | None:
    options = body.get("stream_options") or {}
    return check(Rule(("boolean",)), "stream_options.include_usage", options.get("include_usage"))


def logit_bias(body: dict[str, Any]) -> Problem | None:
    for token, bias in (body.get("logit_bias") or {}).items():
        problem = check(integer(-100, 100), f"logit_bias.{token}", bias)
        if problem:
            return problem
    return None


def metadata(body: dict[str, Any]) -> Problem | None:
    """At most 16 pairs; keys of at most 64 characters, values strings of at most 512 (facts, section 10)."""
    pairs = body.get("metadata")
    problem = check(OBJECT, "metadata", pairs)
    if problem or pairs is None:
        return problem
    if len(pairs) > 16:
        return bad(f"Invalid 'metadata': too many properties. Expected at most 16, but got {len(pairs)}.", "metadata")
    for key, value in pairs.items():
        if len(key) > 64:
            return bad(f"Invalid 'metadata': key '{key[:64]}...' is longer than 64 characters.", "metadata")
        problem = check(text(512, required=True), f"metadata.{key}", value)
        if problem:
            return problem
    return None


def voice(body: dict[str, Any]) -> Problem | None:
    """A built-in voice's name, or a custom voice's {"id"}."""
    chosen = body["voice"]
    if isinstance(chosen, str):
        return None if chosen else bad("Invalid 'voice': empty string.", "voice", "empty_string")
    return check(text(required=True), "voice.id", chosen.get("id")) if "id" in chosen else missing("voice.id")


SHAPES: dict[str, tuple[Callable[[dict[str, Any]], Problem | None], ...]] = {
    "chat": (messages, tools, tool_choice, response_format, stream_options, logit_bias, metadata),
    "completion": (prompt, stream_options, logit_bias),
    "responses": (response_input, tools, tool_choice, text_format, metadata),
    "embeddings": (embedding_input,),
    "moderations": (moderation_input,),
    "speech": (voice,),
}


def check_shapes(kind: str, body: dict[str, Any]) -> Problem | None:
    """The 400 for the first shape the body breaks (its fields' types already checked), or None."""
    for shape in SHAPES.get(kind, ()):
        problem = shape(body)
        if problem:
            return problem
    return None
