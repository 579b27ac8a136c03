"""Structured outputs: a task's JSON Schema checked against strict mode's rules before anything is
sent, put into each request, and every answer validated against it locally.

The rules are the API's (see the shared API facts, structured outputs): the root is an object;
every object lists all its properties in `required` (optional ones are typed with null) and sets
`additionalProperties: false`; `allOf`, `not`, `if`/`then`/`else` and the `dependent*` keywords
are refused; at most 5,000 properties, 10 levels of nesting, 120,000 characters of property
names and enum values, and 1,000 enum values. An answer that is not JSON or does not match is
asked again (the engine's business) with the validation error, never a transport error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any

from .records import Request

JsonPath = tuple[str | int, ...]
NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
UNSUPPORTED = ("allOf", "not", "if", "then", "else", "dependentRequired", "dependentSchemas")
MAX_PROPERTIES = 5_000
MAX_NESTING = 10
MAX_CHARS = 120_000
MAX_ENUM_VALUES = 1_000
REASK_DEFAULT = 2
INVALID = "invalid"  # a result's status while its answer awaits a re-ask; never stored


def strict_problems(schema: Any) -> Iterator[tuple[JsonPath, str]]:
    """Each way the schema breaks strict mode, with where (a path inside the schema)."""
    if not isinstance(schema, dict):
        yield (), "a schema is a JSON object"
        return
    import jsonschema  # type: ignore[import-untyped]  # no types; imported here: a job without schemas never needs it

    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        yield tuple(exc.absolute_path), f"not a valid JSON Schema: {exc.message}"
        return
    if schema.get("type") != "object" or "anyOf" in schema:
        yield (), "strict mode needs an object at the root (type: object, not anyOf)"
    tally = {"properties": 0, "chars": 0, "enum": 0}
    yield from _walk(schema, (), 0, tally)
    if tally["properties"] > MAX_PROPERTIES:
        yield (), f"{tally['properties']:,} properties: strict mode takes at most {MAX_PROPERTIES:,}"
    if tally["chars"] > MAX_CHARS:
        yield (), f"{tally['chars']:,} characters of names and enum values: at most {MAX_CHARS:,}"
    if tally["enum"] > MAX_ENUM_VALUES:
        yield (), f"{tally['enum']:,} enum values: strict mode takes at most {MAX_ENUM_VALUES:,}"


def _walk(node: Any, path: JsonPath, depth: int, tally: dict[str, int]) -> Iterator[tuple[JsonPath, str]]:
    if not isinstance(node, dict):
        return
    for keyword in UNSUPPORTED:
        if keyword in node:
            yield (*path, keyword), f"strict mode does not support `{keyword}`"
    enum = node.get("enum")
    if isinstance(enum, list):
        tally["enum"] += len(enum)
        tally["chars"] += sum(len(v) for v in enum if isinstance(v, str))
    properties = node.get("properties")
    is_object = node.get("type") == "object" or (isinstance(node.get("type"), list) and "object" in node["type"])
    if is_object or isinstance(properties, dict):
        depth += 1
        if depth > MAX_NESTING:
            yield path, f"nested {depth} objects deep: strict mode takes at most {MAX_NESTING}"
        if node.get("additionalProperties") is not False:
            yield path, "strict mode needs `additionalProperties: false` on every object"
        names = list(properties) if isinstance(properties, dict) else []
        missing = [n for n in names if n not in (node.get("required") or [])]
        if missing:
            yield (
                path,
                (
                    f"strict mode needs every property in `required` (missing: {', '.join(missing)}); "
                    "make an optional one nullable, e.g. type: [string, 'null']"
                ),
            )
        tally["properties"] += len(names)
        tally["chars"] += sum(len(n) for n in names)
    for key in ("properties", "$defs", "definitions"):
        children = node.get(key)
        if isinstance(children, dict):
            for name, child in children.items():
                yield from _walk(child, (*path, key, name), depth, tally)
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            yield from _walk(node[key], (*path, key), depth, tally)
    for key in ("anyOf", "prefixItems"):
        if isinstance(node.get(key), list):
            for n, child in enumerate(node[key]):
                yield from _walk(child, (*path, key, n), depth, tally)


@lru_cache(maxsize=64)
def schema_file(path: str) -> Any:
    """A schema file's JSON (an item's own schema), read once however many items name it."""
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def request_field(endpoint: str, name: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    """The body field asking for the schema: `response_format` (chat) or `text` (Responses API)."""
    if endpoint == "/responses":
        return {"text": {"format": {"type": "json_schema", "name": name, "schema": schema, "strict": True}}}
    return {"response_format": {"type": "json_schema", "json_schema": {"name": name, "strict": True, "schema": schema}}}


def schema_of(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The schema a request body asks its answer to match, or None."""
    chat = body.get("response_format")
    if isinstance(chat, dict) and chat.get("type") == "json_schema":
        return chat.get("json_schema", {}).get("schema")  # type: ignore[no-any-return]
    text = body.get("text")
    if isinstance(text, dict) and isinstance(text.get("format"), dict) and text["format"].get("type") == "json_schema":
        return text["format"].get("schema")  # type: ignore[no-any-return]
    return None


def check(schema: Mapping[str, Any], answer: Any) -> tuple[Any, str | None]:
    """(the parsed answer, None) when it is JSON matching the schema, else (None, what is wrong)."""
    if not isinstance(answer, str):
        return None, "the answer is not text"
    try:
        parsed = json.loads(answer, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        return None, f"the answer is not JSON ({exc.msg} at character {exc.pos})"
    except (ValueError, RecursionError) as exc:  # NaN or Infinity (not JSON), or nested past all sense
        return None, f"the answer is not JSON ({type(exc).__name__})"
    import jsonschema

    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(parsed))
    if error is None:
        return parsed, None
    where = "/" + "/".join(str(p) for p in error.absolute_path)
    return None, f"at {where}: {error.message}"[:1000]


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def reasked(request: Request, answer: str, error: str) -> dict[str, Any]:
    """The request body asking again: the history, the invalid answer, and what is wrong with it
    (only the validation error: never a transport error)."""
    follow = [
        {"role": "assistant", "content": answer},
        {
            "role": "user",
            "content": (
                f"That answer does not match the JSON Schema: {error}. Reply again with only JSON that matches it."
            ),
        },
    ]
    body = dict(request.body)
    if request.endpoint == "/responses":
        value = body["input"]
        history = list(value) if isinstance(value, list) else [{"role": "user", "content": value}]
        body["input"] = history + follow
    else:
        body["messages"] = list(body["messages"]) + follow
    return body
