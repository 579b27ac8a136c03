"""Where a structured-output schema's `$ref`s lead, checked before anything is sent.

Each `$ref` must point at a schema inside the same document (`#` or `#/...`): any other is
resolved, or fails to be, only when an answer is checked, after it is paid for. And from any
schema, the schemas that apply to the same value (through `$ref`, `anyOf` and the like) must
reach a keyword that reads a part of it (`properties`, `items`) within MAX_IN_A_ROW: a loop never
does, and a long chain recurses past Python's stack, either way while checking a paid answer.
Recursion that reads the answer as it goes (a tree's `child: {$ref: "#"}`) is fine: each level
of the answer ends a chain.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import unquote

JsonPath = tuple[str | int, ...]
MAX_IN_A_ROW = 64

# keywords whose schemas apply to the value itself, and those whose apply to a part of it (or,
# for $defs, to nothing until a $ref names them)
_SAME = {"not": "one", "if": "one", "then": "one", "else": "one", "anyOf": "list", "oneOf": "list"}
_SAME |= {"allOf": "list", "dependentSchemas": "map"}
_PART = {"items": "one", "additionalProperties": "one", "contains": "one", "propertyNames": "one"}
_PART |= {"unevaluatedItems": "one", "unevaluatedProperties": "one", "prefixItems": "list"}
_PART |= {"properties": "map", "patternProperties": "map", "$defs": "map", "definitions": "map"}


def ref_problems(schema: Mapping[str, Any]) -> list[tuple[JsonPath, str]]:
    """(path, message) for each `$ref` that cannot be followed or loops, else for the longest
    chain of schemas on one value when it is longer than MAX_IN_A_ROW."""
    nodes = dict(_schemas(schema))
    problems: list[tuple[JsonPath, str]] = []
    edges: dict[JsonPath, list[JsonPath]] = {}
    for path, node in nodes.items():
        edges[path] = [child for child, _ in _children(node, path, _SAME)]
        ref = node.get("$ref") if isinstance(node, dict) else None
        if isinstance(ref, str):
            target, problem = _resolve(schema, ref, nodes)
            if problem is not None:
                problems.append(((*path, "$ref"), problem))
            elif target is not None:
                edges[path].append(target)
    if problems:
        return problems
    loops, reach = _walk(nodes, edges)
    if loops:
        return [((*site, "$ref"), _loop_message(nodes[site]["$ref"])) for site in loops]
    start = max(reach, key=lambda path: reach[path], default=())
    if reach.get(start, 0) > MAX_IN_A_ROW:
        where = (*start, "$ref") if isinstance(nodes[start], dict) and "$ref" in nodes[start] else start
        return [(where, _chain_message(reach[start]))]
    return []


def _schemas(schema: Any) -> Iterator[tuple[JsonPath, Any]]:
    """Every schema in the document (objects and booleans) with its path, parents first."""
    stack: list[tuple[JsonPath, Any]] = [((), schema)]
    while stack:
        path, node = stack.pop()
        yield path, node
        if isinstance(node, dict):
            children = [*_children(node, path, _SAME), *_children(node, path, _PART)]
            stack.extend((child, value) for child, value in reversed(children))


def _children(node: Any, path: JsonPath, keywords: Mapping[str, str]) -> Iterator[tuple[JsonPath, Any]]:
    if not isinstance(node, dict):
        return
    for keyword, shape in keywords.items():
        value = node.get(keyword)
        if shape == "one" and isinstance(value, (dict, bool)):
            yield (*path, keyword), value
        elif shape == "list" and isinstance(value, list):
            yield from (((*path, keyword, n), v) for n, v in enumerate(value) if isinstance(v, (dict, bool)))
        elif shape == "map" and isinstance(value, dict):
            yield from (((*path, keyword, k), v) for k, v in value.items() if isinstance(v, (dict, bool)))


def _resolve(schema: Any, ref: str, nodes: Mapping[JsonPath, Any]) -> tuple[JsonPath | None, str | None]:
    """(the path a `$ref` points at, None), or (None, why it cannot be followed)."""
    if ref != "#" and not ref.startswith("#/"):
        return None, f"only `$ref`s inside this schema (# or #/...) can be followed, not {ref!r}"
    path: list[str | int] = []
    node = schema
    for token in ref[2:].split("/") if ref != "#" else ():
        key = unquote(token).replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and key in node:
            path.append(key)
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            path.append(int(key))
            node = node[int(key)]
        else:
            return None, f"`$ref` {ref!r} points to nothing in this schema"
    if tuple(path) not in nodes:
        return None, f"`$ref` {ref!r} points to no schema (a schema is an object where a keyword expects one)"
    return tuple(path), None


def _walk(
    nodes: Mapping[JsonPath, Any], edges: Mapping[JsonPath, list[JsonPath]]
) -> tuple[list[JsonPath], dict[JsonPath, int]]:
    """Depth first over the schemas that apply to one value, without recursion: the schemas whose
    `$ref` closes a loop, and for each schema the most schemas in a row it applies to one value."""
    reach: dict[JsonPath, int] = {}
    on_path: set[JsonPath] = set()
    loops: list[JsonPath] = []
    for start in nodes:
        if start in reach:
            continue
        stack = [(start, iter(edges[start]))]
        on_path.add(start)
        while stack:
            node, targets = stack[-1]
            for target in targets:
                if target in on_path:
                    loops.append(_closing(stack, target, nodes))
                elif target not in reach:
                    stack.append((target, iter(edges[target])))
                    on_path.add(target)
                    break
            else:
                stack.pop()
                on_path.discard(node)
                reach[node] = 1 + max((reach.get(t, 0) for t in edges[node]), default=0)
    order = {path: n for n, path in enumerate(nodes)}
    return sorted(set(loops), key=order.__getitem__), reach


def _closing(stack: list[tuple[JsonPath, Any]], target: JsonPath, nodes: Mapping[JsonPath, Any]) -> JsonPath:
    """The schema whose `$ref` closes the loop back to `target`: the last one on the way."""
    way = [node for node, _ in stack]
    loop = way[way.index(target) :]
    return next(node for node in reversed(loop) if isinstance(nodes[node], dict) and "$ref" in nodes[node])


def _loop_message(ref: str) -> str:
    return (
        f"`$ref` {ref!r} loops back to a schema it came from without reading any of the answer: "
        "checking an answer would never end"
    )


def _chain_message(length: int) -> str:
    return (
        f"applies {length:,} schemas in a row to one value (through `$ref`, `anyOf` and the like) before "
        f"reading any part of it; batchgpt checks answers against at most {MAX_IN_A_ROW}"
    )
