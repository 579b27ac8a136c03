"""Validating against the job schema (schemas/job.schema.json, read by settings.py): a fast engine
says whether a job or line is valid, the pure-Python one words the errors, readably."""

from __future__ import annotations

import ast
import difflib
import functools
import json
import math
import re
from collections.abc import Iterator, Sequence
from functools import cache
from typing import Any, TypeAlias

import jsonschema_rs

from .records import shortened
from .settings import job_schema

JsonPath: TypeAlias = tuple[str | int, ...]  # keys and list indexes from the root of a document

_JSON_TYPES = (str, int, float, bool, type(None), list, tuple, dict)
_UNEXPECTED = re.compile(r"\((.*) (?:was|were) unexpected\)$", re.DOTALL)
_MAX_MESSAGE = 240


def _subschema(definition: str | None) -> dict[str, Any]:
    schema = job_schema()
    return schema if definition is None else {"$ref": f"#/$defs/{definition}", "$defs": schema["$defs"]}


@cache
def validator(definition: str | None = None) -> Any:
    """The validator for the whole job, or for one of its $defs (an item type, a JSONL line)."""
    # jsonschema (30 ms to import) only words the errors jsonschema_rs found: a valid job never needs it
    import jsonschema  # type: ignore[import-untyped]  # ships no types; types-jsonschema is not in the test extra

    return jsonschema.Draft202012Validator(_subschema(definition))


@cache
def fast_validator(definition: str | None = None) -> Any:
    """jsonschema-rs, 400 to 1,300 times faster on our schema (`bench/engines.py`: a JSONL line in
    3.3 µs against 4.4 ms, so a million-line job's check takes seconds, not hours); it only says
    whether an instance is valid, and the pure-Python validator then words the errors of the rare
    invalid one."""
    return jsonschema_rs.validator_for(_subschema(definition))


@cache
def line_validator(kind: str) -> Any:
    """The fast validator of JSONL lines of type `kind`: the `line` schema with only the `then` of
    that type's if/then left of its twelve. It accepts exactly the lines of that type the whole one
    does (on them that `if` holds and the others fail, adding nothing), at 0.6 of the cost
    (`bench/engines.py`: 3.3 µs against 5.8 µs a line, some 2.5 s of CPU a million-line job):
    unevaluatedProperties over twelve conditional branches is what costs."""
    schema = job_schema()
    line = dict(schema["$defs"]["line"])
    line["allOf"] = [b["then"] for b in line["allOf"] if b["if"]["properties"]["type"].get("const") == kind]
    return jsonschema_rs.validator_for({**line, "$defs": schema["$defs"]})


@cache
def known_keys() -> frozenset[str]:
    keys: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            keys.update(node.get("properties", {}))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(job_schema())
    return frozenset(keys)


def pointer(path: Sequence[str | int]) -> str:
    """The JSON Pointer (RFC 6901) of a path: "" for the root, "/tasks/0/items" below it."""
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in path) if path else ""


def kept_key(path: JsonPath, message: str, keep: Any) -> bool:
    """Whether an error is an item's unknown key that a task's `keep:` (a list of names, or
    "all") copies into its result row instead: not an error then."""
    if not (path and (message.startswith("unknown key") or message.endswith("is not allowed here"))):
        return False
    return keep == "all" or (isinstance(keep, (list, tuple)) and path[-1] in keep)


def valid(instance: Any, definition: str | None = None) -> bool:
    """Whether `errors` would find nothing (the fast validator alone)."""
    return bool(_fast(definition, instance).is_valid(instance))


def errors(instance: Any, definition: str | None = None) -> Iterator[tuple[JsonPath, str]]:
    """Every schema error as (path, message), with unknown keys pointed at and cascades left out.

    A subschema that fails drops its annotations, so jsonschema then also calls that object's valid
    keys "unevaluated". Such a complaint about a key the schema knows is a cascade when the same
    object has another error, and is left out; a key the schema knows nowhere is always reported.
    """
    if _fast(definition, instance).is_valid(instance):
        return
    found = list(validator(definition).iter_errors(instance))
    if not found:  # the validators disagree: Python's `$` also matches before a final line break
        yield (), "the job schema refuses a value here (often a text ending in a line break where none may be)"
        return
    others = [
        tuple(e.absolute_path) for e in found if e.validator not in ("unevaluatedProperties", "additionalProperties")
    ]
    # an unknown key in an item fails its task's subschema too, so the task's own keys cascade
    others += [tuple(e.absolute_path) + ("",) for e in found if e.validator == "unevaluatedProperties"]
    said: set[tuple[JsonPath, str]] = set()  # one failure can come back through several subschemas
    for path, message in _messages(found, others):
        if (path, message) not in said:
            said.add((path, message))
            yield path, message


def _fast(definition: str | None, instance: Any) -> Any:
    kind = instance.get("type") if definition == "line" and isinstance(instance, dict) else None
    if isinstance(kind, str) and kind in _line_types():
        return line_validator(kind)
    return fast_validator(definition)


@cache
def _line_types() -> frozenset[str]:
    return frozenset(job_schema()["$defs"]["line"]["properties"]["type"]["enum"])


def _messages(found: list[Any], others: list[JsonPath]) -> Iterator[tuple[JsonPath, str]]:
    for error in found:
        path = tuple(error.absolute_path)
        if error.validator in ("unevaluatedProperties", "additionalProperties"):
            cascade = any(o[: len(path)] == path and o != path + ("",) for o in others)
            for key in _unexpected_keys(error.message):
                if cascade and key in known_keys():
                    continue
                yield path + (key,), _unknown_key_message(key)
        elif error.validator == "anyOf" and "items_from" in json.dumps(error.schema):
            yield path, "a task needs `items` or `items_from`"
        elif error.validator == "oneOf" and _ITEMS_FROM in path[-1:]:
            yield from _items_from_messages(error, others)
        elif error.validator == "pattern" and _ITEMS_FROM in path[-2:]:
            yield (
                path,
                f"items_from: {error.instance!r} is no .csv, .jsonl or .parquet file"
                + (" or glob (photos/*.jpg)" if path[-1] == _ITEMS_FROM else ""),
            )
        elif error.validator in ("not", "minLength") and _HEADERS in error.schema_path:
            yield path, _header_message(path, error.instance)
        elif error.validator == "required":
            yield path, f"missing required key {error.message.split(' is a required')[0]}"
        else:
            yield path, shortened(error.message, _MAX_MESSAGE)


_HEADERS = "headers"
_ITEMS_FROM = "items_from"


def _items_from_messages(error: Any, others: list[JsonPath]) -> Iterator[tuple[JsonPath, str]]:
    """items_from is a file's name or a mapping (`{path: ..., encoding: ...}`): what is wrong is
    said by the branch of its kind, not as "not valid under any of the given schemas"."""
    mapping = isinstance(error.instance, dict)  # the schema's second branch; a name, its first
    branch = [e for e in error.context if e.schema_path and e.schema_path[0] == int(mapping)]
    if not isinstance(error.instance, (dict, str)) or not branch:
        yield tuple(error.absolute_path), "items_from: name a file (data.csv), or give {path: data.csv, encoding: gbk}"
        return
    yield from _messages(branch, others)


def _header_message(path: JsonPath, value: Any) -> str:
    """A provider header an HTTP request cannot carry (it would end the header early)."""
    if path and path[-1] == _HEADERS:  # the name (propertyNames)
        return f"{value!r} is not a header name (letters, digits and !#$%&'*+.^_`|~- only)"
    return "a header value may not hold a line break or another control character"


def _unexpected_keys(message: str) -> list[str]:
    match = _UNEXPECTED.search(message)
    if not match:
        return []
    try:
        return [str(k) for k in ast.literal_eval("(" + match.group(1) + ",)")]
    except (ValueError, SyntaxError):
        return []


@functools.lru_cache(maxsize=1 << 16)  # a wide CSV names the same unknown columns on every row
def _unknown_key_message(key: str) -> str:
    if key in known_keys():
        return f"key '{key}' is not allowed here"
    close = difflib.get_close_matches(key, known_keys(), n=1, cutoff=0.75)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown key '{key}'{hint}"


def number_problem(value: Any, written: str) -> str | None:
    """Why a number cannot be sent, if it cannot: JSON has no NaN or infinity (json.dumps writes
    them anyway, orjson sends null), and orjson writes no integer outside 64 bits."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{written} is not a number JSON can carry"
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return f"{written} does not fit in 64 bits, which is the most a request can carry"
    return None


class _TooDeep(Exception):
    def __init__(self, path: JsonPath) -> None:
        self.path = path


def json_problems(instance: Any, max_depth: int) -> list[tuple[JsonPath, str]]:
    """(path, message) for each part of a parsed document that JSON cannot carry. Deeper than
    max_depth ends the search at once: the structure may be a cycle, or too deep to recurse."""
    if _plain(instance, max_depth):
        return []
    found: list[tuple[JsonPath, str]] = []
    try:
        _check_json(instance, (), max_depth, found)
    except _TooDeep as exc:
        return [(exc.path[:1], f"nested more than {max_depth} levels deep: refusing to read it")]
    return found


_PLAIN = frozenset({str, bool, type(None)})


def _plain(value: Any, levels: int) -> bool:
    """The answer for nearly every row, at a third of the cost of `_check_json`: no paths are
    built, and plain loops, as this runs once for each of a million JSONL lines."""
    kind = type(value)
    if levels <= 0:
        return False
    if kind in _PLAIN:
        return True
    if kind is dict:
        for key, child in value.items():
            if type(key) is not str or not _plain(child, levels - 1):
                return False
        return True
    if kind is list:
        for child in value:
            if not _plain(child, levels - 1):
                return False
        return True
    if kind is float:
        return math.isfinite(value)
    return kind is int and -(2**63) <= value < 2**64


def _check_json(value: Any, path: JsonPath, max_depth: int, found: list[tuple[JsonPath, str]]) -> None:
    if len(path) >= max_depth:
        raise _TooDeep(path)
    if isinstance(value, dict):
        for key, child in value.items():
            if not isinstance(key, str):
                found.append((path, f"key {key!r} is not text: JSON keys are strings"))
            _check_json(child, path + (str(key),), max_depth, found)
    elif isinstance(value, (list, tuple)):
        for index, child in enumerate(value):
            _check_json(child, path + (index,), max_depth, found)
    elif not isinstance(value, _JSON_TYPES):
        found.append((path, f"{type(value).__name__} values are not JSON"))
    elif isinstance(value, (int, float)) and (message := number_problem(value, _written(value))):
        found.append((path, message))


def _written(value: float) -> str:
    """JSON's own names, as json.dumps writes them, so a NaN reads the same from any source."""
    if value != value:
        return "NaN"
    return {math.inf: "Infinity", -math.inf: "-Infinity"}.get(value, repr(value))
