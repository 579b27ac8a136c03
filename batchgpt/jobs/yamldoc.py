"""The YAML loader behind source.read_document: PyYAML's safe loader (on libyaml's parser where
PyYAML has it), made to give only what JSON can carry and to stop early. Only YAML and JSON jobs
import it (PyYAML costs a JSONL run 10 ms to import)."""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, cast

import yaml

from batchgpt import schema
from batchgpt.schema import JsonPath

from .bounds import MAX_DEPTH, MAX_YAML_EXPANDED, MAX_YAML_NODES, STREAMED, Parsed
from .problems import Problems

try:
    from yaml._yaml import CParser

    _LIBYAML = True
except ImportError:  # PyYAML built without libyaml
    _LIBYAML = False


class _Refused(Exception):
    """A YAML too big or too deep to load; nothing more of it is read."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line, self.message = line, message


def _too_deep(line: int | None) -> _Refused:
    return _Refused(line, f"nested more than {MAX_DEPTH} levels deep: refusing to read it")


def parse(text: str, json_rules: bool, problems: Problems) -> Parsed | None:
    """The document in `text`, with the line of every key and value (None, and the problems
    added, when it cannot be read)."""
    loader = _LOADER(text, json_rules=json_rules)
    try:
        node = loader.get_single_node()
        if node is None:
            problems.add("the job file is empty")
            return None
        walk = _Walk(loader)
        walk.node(node, (), 1)
        for where, line, message in walk.found:
            problems.add(message, line=line, path=where)
        return Parsed(loader.construct_document(node), walk.lines, walk.blanks)
    except _Refused as exc:
        problems.add(exc.message, line=exc.line)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problems.add(f"YAML syntax error: {exc.problem or exc.context}", line=mark.line + 1 if mark else None)
    except yaml.YAMLError as exc:
        problems.add(f"YAML error: {exc}")
    finally:
        loader.dispose()
    return None


_TAG = "tag:yaml.org,2002:"
_BARE_WORD = "tag:batchgpt,2024:bare-word"  # an unquoted word in a JSON job
_NOT_JSON = {
    _TAG + "binary": "write the text itself",
    _TAG + "set": "write a list",
    _TAG + "omap": "write a mapping",
    _TAG + "pairs": "write a mapping",
}
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_JSON_WORDS = {"true": _TAG + "bool", "false": _TAG + "bool", "null": _TAG + "null"}

if TYPE_CHECKING:

    class _Loader(yaml.composer.Composer, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
        """What `_JobRules` relies on in both of its loaders: a parser's events (Python's or
        libyaml's), Python's composer, the safe constructor."""

        def __init__(self, stream: str) -> None: ...
        def peek_event(self) -> yaml.events.Event: ...
        def dispose(self) -> None: ...

else:
    _Loader = object  # at run time the loader it is mixed into provides all of it


class _JobRules(_Loader):
    """Mixed into a safe loader, makes it give only what JSON can carry, and stop early.

    Timestamps stay the text that was written (an Azure `api_version: 2024-10-21`, a date as an
    id); mapping keys are text, as in JSON (`logit_bias: {50256: -100}`); binaries, sets, NaN and
    the like become None, and `_Walk` reports them at their line. Node count and depth are bounded
    while composing, so a huge or deep file is refused before its tree exists."""

    def __init__(self, text: str, json_rules: bool) -> None:
        super().__init__(text)
        self.json_rules, self.nodes, self.depth = json_rules, 0, 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self.nodes += 1
        self.depth += 1
        try:
            if self.nodes > MAX_YAML_NODES:
                raise _Refused(
                    self._line(),
                    f"the job has more than {MAX_YAML_NODES:,} keys and values; YAML and JSON jobs "
                    f"are read whole into memory: {STREAMED}",
                )
            if self.depth > MAX_DEPTH:
                raise _too_deep(self._line())
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def _line(self) -> int | None:
        mark = self.peek_event().start_mark
        return mark.line + 1 if mark else None

    def resolve(self, kind: type[yaml.Node], value: str, implicit: tuple[bool, bool]) -> str:
        # A JSON job's unquoted scalars follow JSON: 1e5 is a number (YAML 1.1 says text), yes is no boolean.
        if self.json_rules and kind is yaml.ScalarNode and implicit[0]:
            return _json_tag(value)
        tag: str = super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]  # untyped in the stubs
        return tag

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Hashable, Any]:
        if not isinstance(node, yaml.MappingNode):  # `!!map [a]`: the base class words the error
            return super().construct_mapping(node, deep)  # type: ignore[arg-type]  # it refuses what is no mapping
        self.flatten_mapping(node)  # `<<` merges first, so keys written here win
        return {
            key.value: self.construct_object(value, deep=deep)
            for key, value in node.value
            if isinstance(key, yaml.ScalarNode)
        }

    def finite_float(self, node: yaml.ScalarNode) -> float | None:
        number = self.construct_yaml_float(node)
        return None if schema.number_problem(number, node.value) else number

    def whole_number(self, node: yaml.ScalarNode) -> int | None:
        number = self.construct_yaml_int(node)
        return None if schema.number_problem(number, node.value) else number


class _PyLoader(_JobRules, yaml.SafeLoader):
    pass


_LOADER: type[_JobRules] = _PyLoader
if _LIBYAML:

    class _CSafeLoader(yaml.composer.Composer, CParser, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
        """SafeLoader on libyaml's parser: a third of the time. Composing stays in Python, where
        `_JobRules` bounds it (libyaml's own composer cannot be bounded)."""

        def __init__(self, text: str) -> None:
            CParser.__init__(self, text)
            yaml.composer.Composer.__init__(self)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)

    class _CLoader(_JobRules, _CSafeLoader):
        pass

    _LOADER = _CLoader


def _json_tag(value: str) -> str:
    match = _JSON_NUMBER.fullmatch(value)
    if match:
        return _TAG + ("float" if match.group(1) or match.group(2) else "int")
    return _JSON_WORDS.get(value, _BARE_WORD)


def _blank(loader: _JobRules, node: yaml.Node) -> None:
    return None


_CONSTRUCTORS: dict[str, Callable[..., Any]] = {
    _TAG + "timestamp": yaml.SafeLoader.construct_scalar,
    _TAG + "float": _JobRules.finite_float,
    _TAG + "int": _JobRules.whole_number,
    **{tag: _blank for tag in (*_NOT_JSON, _BARE_WORD)},
}
# Each loader class keeps its own table; _PyLoader serves without libyaml, and in the tests.
_LOADERS: set[type[_JobRules]] = {_PyLoader, _LOADER}
for _loader in _LOADERS:
    for _tag, _construct in _CONSTRUCTORS.items():
        _loader.add_constructor(_tag, _construct)


class _Walk:
    """One pass over the composed tree, aliases followed: the line of every key and value, and a
    problem for each value the loader leaves out and each duplicate key. It counts and limits the
    depth of what aliases expand to, which composing cannot see."""

    def __init__(self, loader: _JobRules) -> None:
        self.loader = loader
        self.lines: dict[JsonPath, int] = {}
        self.found: list[tuple[JsonPath, int, str]] = []
        self.blanks: list[JsonPath] = []
        self.count = 0

    def node(self, node: yaml.Node, path: JsonPath, depth: int) -> None:
        line = node.start_mark.line + 1
        self.count += 1
        if self.count > MAX_YAML_EXPANDED:
            raise _Refused(
                None,
                f"the YAML expands to more than {MAX_YAML_EXPANDED:,} nodes "
                "(aliases nested too deep?); refusing to load it",
            )
        if depth > MAX_DEPTH:
            raise _too_deep(line)
        self.lines.setdefault(path, line)
        message = self._not_json(node)
        if message:
            self.found.append((path, line, message))
            self.blanks.append(path)
        elif isinstance(node, yaml.MappingNode):
            self.mapping(node, path, depth)
        elif isinstance(node, yaml.SequenceNode):
            for i, value in enumerate(node.value):
                self.node(value, path + (i,), depth + 1)

    def mapping(self, node: yaml.MappingNode, path: JsonPath, depth: int) -> None:
        seen: set[str] = set()
        for key, value in node.value:
            line = key.start_mark.line + 1
            if key.tag == _TAG + "merge":
                for merged in value.value if isinstance(value, yaml.SequenceNode) else [value]:
                    self.node(merged, path, depth)
            elif not isinstance(key, yaml.ScalarNode):
                self.found.append((path, line, "a key must be text, not a list or a mapping"))
            else:
                child = path + (key.value,)
                if key.value in seen:
                    self.found.append((child, line, f"duplicate key '{key.value}': the first one would be ignored"))
                seen.add(key.value)
                self.lines.setdefault(child, line)
                self.node(value, child, depth + 1)

    def _not_json(self, node: yaml.Node) -> str | None:
        if node.tag in _NOT_JSON:
            return f"!!{node.tag.rsplit(':', 1)[1]} values are not JSON: {_NOT_JSON[node.tag]}"
        if node.tag == _BARE_WORD:
            known = node.value in ("NaN", "Infinity", "-Infinity")
            return (
                f"{node.value} is not a number JSON can carry"
                if known
                else f"unquoted {node.value!r} is not JSON: quote it"
            )
        scalar = cast(yaml.ScalarNode, node)  # as tagged; the constructor refuses `!!float [1]` in words
        if node.tag == _TAG + "float":
            return schema.number_problem(self.loader.construct_yaml_float(scalar), node.value)
        if node.tag == _TAG + "int" and len(node.value) > 18:
            return schema.number_problem(self.loader.construct_yaml_int(scalar), node.value)
        return None
