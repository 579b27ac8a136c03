"""The mock server's structured answers: the schema a request asks for, the simplest JSON a
(strict-mode) schema accepts, and the answer faults that bend it (`schema-miss`: a miss;
`schema-deep`: a recursive schema's answer nested as deep as the request says).

A recursive schema (a `$ref` back into a schema the value is already in) is followed no further by
default: a branch of its `anyOf` that ends is taken. A deep answer is built as text, one level
at a time, so the mock itself never recurses deeper than the schema is written.
"""

from __future__ import annotations

import json
import re
from typing import Any

_NEST = "\x00nest\x00"  # where a recursive `$ref` goes on, in a level's template
_SAID_NUMBER = re.compile(r"\d+")


def structured_text(schema: dict[str, Any], said: str, fault: str | None) -> str:
    """A structured answer: JSON matching the schema (its strings say what was asked); with
    `schema-miss` an object lacking every required field; with `schema-deep` nested as many
    levels as the first number in what was said."""
    if fault == "schema-miss":
        return "{}"
    number = _SAID_NUMBER.search(said) if fault == "schema-deep" else None
    if number is None:
        return _dumps(instance(schema, said, schema))
    return _deep(schema, said, int(number.group()))


def _deep(schema: dict[str, Any], said: str, levels: int) -> str:
    """The answer with its first recursive `$ref` followed `levels` times."""
    found: list[str] = []
    outer = _dumps(instance(schema, said, schema, found))
    if not found:  # nothing recursive: the plain answer
        return outer
    target = _target(schema, found[0])
    level = _dumps(instance(target, said, schema, [], (found[0],)))
    text = _dumps(instance(target, said, schema, None, (found[0],)))
    for _ in range(levels - 1):
        text = level.replace(json.dumps(_NEST), text, 1)
    return outer.replace(json.dumps(_NEST), text, 1)


def instance(
    node: Any, said: str, root: dict[str, Any], nest: list[str] | None = None, path: tuple[str, ...] = ()
) -> Any:
    """The simplest value a (strict-mode) schema node accepts. `path`: the `$ref`s this value is
    in. With `nest` (a list), the first recursive `$ref` met is not followed but marked, and
    named in `nest`."""
    if not isinstance(node, dict):
        return None
    if "$ref" in node:
        ref = str(node["$ref"])
        if _recursive(node, path):
            if nest is None:
                return None  # a loop with no way out: no value ends it
            nest.append(ref)
            return _NEST
        return instance(_target(root, ref), said, root, nest, (*path, ref))
    if node.get("enum"):
        return node["enum"][0]
    if "anyOf" in node:
        branches = node["anyOf"]
        recursing = nest is not None and not nest  # a level's template: the recursive branch
        wanted = [b for b in branches if _recursive(b, path) == recursing]
        return instance((wanted or branches)[0], said, root, nest, path)
    kind = node.get("type")
    kind = next((k for k in kind if k != "null"), "null") if isinstance(kind, list) else kind
    if kind == "object":
        properties = node.get("properties") or {}
        return {name: instance(child, said, root, nest, path) for name, child in properties.items()}
    if kind == "array":
        return [instance(node.get("items"), said, root, nest, path)] if node.get("minItems") else []
    return {"string": said, "integer": 1, "number": 1.5, "boolean": True}.get(str(kind))


def _recursive(node: Any, path: tuple[str, ...]) -> bool:
    """A `$ref` back into a schema the value is in already (the root always is)."""
    return isinstance(node, dict) and "$ref" in node and (node["$ref"] == "#" or node["$ref"] in path)


def _target(root: dict[str, Any], ref: str) -> Any:
    target: Any = root
    for part in ref.lstrip("#/").split("/") if ref != "#" else ():
        target = target.get(part, {}) if isinstance(target, dict) else {}
    return target


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def schema_asked(body: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON Schema a request asks its answer to match (chat or Responses API), if any. Read
    before the body is validated (to pick its fault), so it takes any shape."""
    chat = body.get("response_format")
    if isinstance(chat, dict) and chat.get("type") == "json_schema":
        named = chat.get("json_schema")
        schema = named.get("schema") if isinstance(named, dict) else None
    else:
        text = body.get("text")
        answer = text.get("format") if isinstance(text, dict) else None
        wanted = isinstance(answer, dict) and answer.get("type") == "json_schema"
        schema = answer.get("schema") if isinstance(answer, dict) and wanted else None
    return schema if isinstance(schema, dict) else None
