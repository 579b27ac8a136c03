"""Structured outputs: a task's JSON Schema checked against strict mode's rules before anything is
sent, put into each request, and every answer validated against it locally.

The rules are the API's (see the shared API facts, structured outputs): the root is an object;
every object lists all its properties in `required` (optional ones are typed with null) and sets
`additionalProperties: false`; `allOf`, `not`, `if`/`then`/`else` and the `dependent*` keywords
are refused; at most 5,000 properties, 10 levels of nesting, 120,000 characters of property
names and enum values, and 1,000 enum values. Every `$ref` must lead somewhere that reads the
answer (schemarefs.py). An answer that is not JSON or does not match is asked again (the engine's
business) with the validation error, never a transport error. An answer nested deeper than
MAX_ANSWER_DEPTH is not checked at all (`Unchecked`): it was paid for, so it is kept as an error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from functools import lru_cache
from itertools import accumulate
from typing import Any

import jsonschema_rs

from . import notext
from .records import Request
from .schema import json_problems, pointer
from .schemarefs import ref_problems

JsonPath = tuple[str | int, ...]
NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
UNSUPPORTED = ("allOf", "not", "if", "then", "else", "dependentRequired", "dependentSchemas")
MAX_PROPERTIES = 5_000
MAX_NESTING = 10
MAX_CHARS = 120_000
MAX_ENUM_VALUES = 1_000
REASK_DEFAULT = 2
INVALID = "invalid"  # a result's status while its answer awaits a re-ask; never stored
MAX_SCHEMA_DEPTH = 100  # levels of nesting in a schema, as in a job file
# Levels of nesting in an answer that are checked. Python's validator recurses several frames a
# level and runs out (RecursionError) a few dozen levels down; jsonschema_rs then checks: it
# collapses $ref chains and takes thousands of levels on an 8 MB stack, but overflows it (a
# crash, not an exception) past some 10,000. json.loads stops near Python's recursion limit.
MAX_ANSWER_DEPTH = 500
MAX_ERROR_CHARS = 1000  # a validation error as a re-ask quotes it (the estimate's worst case counts it whole)


class Unchecked(Exception):
    """An answer that cannot be checked against its schema (nested too deep). It was paid for:
    an error row that keeps it and what it cost, and that a plain rerun does not buy again."""


def strict_problems(schema: Any) -> Iterator[tuple[JsonPath, str]]:
    """Each way the schema breaks strict mode, with where (a path inside the schema)."""
    if not isinstance(schema, dict):
        yield (), "a schema is a JSON object"
        return
    deep = json_problems(schema, MAX_SCHEMA_DEPTH)  # JSON from a file: too deep is all it can be
    if deep:
        yield from deep
        return
    import jsonschema  # type: ignore[import-untyped]  # no types; imported here: a job without schemas never needs it

    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        yield tuple(exc.absolute_path), f"not a valid JSON Schema: {exc.message}"
        return
    yield from ref_problems(schema)
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
    with open(path, "rb") as handle:
        text = notext.decoded(handle.read())
    found = notext.find(text)
    if found is not None:
        raise ValueError(f"line {found.line}: {found.message}")
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError(f"nested more than {MAX_SCHEMA_DEPTH} levels deep: refusing to read it") from None


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
    """(the parsed answer, None) when it is JSON matching the schema, else (None, what is wrong).
    Raises Unchecked for an answer nested past MAX_ANSWER_DEPTH."""
    if not isinstance(answer, str):
        return None, "the answer is not text"
    levels = _too_deep(answer)
    if levels is not None:
        raise Unchecked(
            f"the answer is nested {levels:,} levels deep: too deep to check against its schema "
            f"(batchgpt checks up to {MAX_ANSWER_DEPTH}); kept as it came"
        )
    try:
        parsed = json.loads(answer, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        return None, f"the answer is not JSON ({exc.msg} at character {exc.pos})"
    except (ValueError, RecursionError) as exc:  # NaN or Infinity (not JSON), or nested past all sense
        return None, f"the answer is not JSON ({type(exc).__name__})"
    problem = _mismatch(schema, parsed)
    return (parsed, None) if problem is None else (None, problem)


_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def _too_deep(text: str) -> int | None:
    """How deep a JSON text nests, when deeper than MAX_ANSWER_DEPTH (else None), without parsing
    it: what a string holds nests nothing."""
    if text.count("[") + text.count("{") <= MAX_ANSWER_DEPTH:
        return None  # nearly every answer: too few brackets to nest that deep
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    levels = list(accumulate(1 if c in "[{" else -1 for c in brackets))
    if not levels or levels[-1] != 0 or min(levels) < 0:
        return None  # its brackets do not close: not JSON, as json.loads will say
    deepest = max(levels)
    return deepest if deepest > MAX_ANSWER_DEPTH else None


def _mismatch(schema: Mapping[str, Any], parsed: Any) -> str | None:
    """What is wrong with a parsed answer, in jsonschema's words, or None."""
    import jsonschema

    try:
        error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(parsed))
    except RecursionError:  # a few dozen levels deep: past what Python's validator recurses through
        return _deep_mismatch(json.dumps(schema, sort_keys=True), parsed)
    if error is None:
        return None
    return f"at {pointer(tuple(error.absolute_path)) or '/'}: {error.message}"[:MAX_ERROR_CHARS]


def _deep_mismatch(schema: str, parsed: Any) -> str | None:
    try:
        validator = _deep_validator(schema)
    except ValueError as exc:  # a pattern in Python's dialect, not ECMA's (`\Z`): not for Rust's regex
        raise Unchecked(
            "the answer is nested too deep for Python's validator, and jsonschema-rs cannot read its schema "
            f"({str(exc).splitlines()[0]}): not checked, kept as it came"
        ) from None
    if validator.is_valid(parsed):
        return None
    try:
        error = next(validator.iter_errors(parsed))
    except ValueError:  # the error's copy of the part that fails is too deep to make
        return "the answer does not match the schema (the part that fails nests too deep to show)"
    return f"at {pointer(error.instance_path) or '/'}: {error.message}"[:MAX_ERROR_CHARS]


@lru_cache(maxsize=16)
def _deep_validator(schema: str) -> Any:
    return jsonschema_rs.Draft202012Validator(json.loads(schema))


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def follow_up(error: str) -> str:
    """The message asking again, after the answer that missed its schema."""
    return f"That answer does not match the JSON Schema: {error}. Reply again with only JSON that matches it."


def reasked(request: Request, answer: str, error: str) -> dict[str, Any]:
    """The request body asking again: the history, the invalid answer, and what is wrong with it
    (only the validation error: never a transport error)."""
    follow = [{"role": "assistant", "content": answer}, {"role": "user", "content": follow_up(error)}]
    body = dict(request.body)
    if request.endpoint == "/responses":
        value = body["input"]
        history = list(value) if isinstance(value, list) else [{"role": "user", "content": value}]
        body["input"] = history + follow
    else:
        body["messages"] = list(body["messages"]) + follow
    return body
