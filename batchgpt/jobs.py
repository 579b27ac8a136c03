"""Job files: read YAML, JSON and JSONL jobs, validate every item before anything is sent, yield requests.

Validation and request building walk the same item stream (`_walk`), so ids, order and locations
always agree. Items are streamed: a JSONL job or an `items_from` file is never held in memory.
Paths inside a job file are relative to the job file, so a job runs the same from cron as by hand.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson
import yaml

try:
    from yaml.cyaml import CParser
except ImportError:  # PyYAML built without libyaml
    CParser = None

from . import schema
from .errors import NO_POINTER, JobError, Problem
from .provider import merged, provider_from
from .records import Limits, Provider, Request
from .tasks import BATCH_URLS, TASKS, template_fields

PARAM_KEYS = frozenset(
    {"model", "temperature", "top_p", "max_tokens", "stop", "stream", "expected_output_tokens", "params"}
)
RESULT_SUFFIXES = (".csv", ".parquet", ".jsonl")
REPORT_SUFFIXES = (".csv", ".parquet")
# A YAML or JSON job is read whole, at some 650 bytes of memory a node from text to validated
# job: the node bound keeps the worst accepted one near 130 MB and 2 s, and refuses a bigger one
# while composing, before its tree exists; the byte bound refuses a huge file before reading it.
# Bigger batches belong in JSONL or items_from, which are streamed.
MAX_YAML_BYTES = 16 * 2**20
MAX_YAML_NODES = 200_000
MAX_YAML_EXPANDED = 2_000_000  # nodes counted once per alias that reaches them: an alias bomb stops here
MAX_DEPTH = 100  # levels of nesting; orjson writes at most 254, and deeper structures recurse in Python
MAX_CSV_CELL = 64 * 2**20  # far past any prompt an API takes; past it, a quote was left open
MAX_PROBLEMS = 1000
_STREAMED = "put the items in a JSONL job or an items_from file (both are streamed)"
_CSV_NUMBERS = ("temperature", "top_p", "max_tokens", "expected_output_tokens")


@dataclass(frozen=True)
class Overrides:
    """Command-line settings; each one set wins over the job file."""

    out: str | None = None
    report: str | None = None
    base_url: str | None = None
    concurrency: int | None = None
    rpm: float | None = None
    tpm: float | None = None
    max_retries: int | None = None
    timeout: float | None = None
    model: str | None = None
    budget: float | None = None
    shared_limits: str | None = None


@dataclass(frozen=True)
class Task:
    label: str
    type: str
    index: int
    options: Mapping[str, Any]
    params: Mapping[str, Any]
    provider: Provider
    items: tuple[Any, ...] = ()
    items_from: Path | None = None
    base_dir: Path = Path(".")  # where paths in items (audio files) are relative to: the job file's folder


@dataclass(frozen=True)
class Job:
    name: str
    path: Path | None  # None for a job given as a dict
    fmt: str  # yaml | jsonl
    provider: Provider
    limits: Limits
    results: Path
    report: Path
    pricing: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    budget_usd: float | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)
    tasks: tuple[Task, ...] = ()
    count: int = 0  # items, known once the job is validated

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path else Path.cwd()


@dataclass(frozen=True)
class _Item:
    """One item on its way from a source to a request, with where it came from."""

    file: str
    line: int | None
    path: tuple  # JSON path inside the job file; () for rows of a data file or JSONL lines
    task: Task
    fields: Mapping[str, Any]
    id: str


# ----------------------------------------------------------------------------- loading


def load(source: str | os.PathLike | Mapping[str, Any], overrides: Overrides = Overrides()) -> Job:
    """Read and fully validate a job; raises JobError listing every problem found."""
    problems: list[Problem] = []
    lines: dict[tuple, int] = {}
    bad: list[tuple] = []  # paths with schema errors, or values left out as not JSON
    if isinstance(source, Mapping):
        job = _from_mapping(dict(source), overrides, problems, bad)
    elif Path(source).suffix.lower() == ".jsonl":
        job = _jsonl_job(Path(source), overrides, problems)
    else:
        parsed = _read_yaml(Path(source), problems)
        if parsed is not None:
            lines, bad = parsed.lines, parsed.blanks
        job = _from_document(parsed.document, Path(source), lines, overrides, problems, bad) if parsed else None
    count = _check_items(job, problems, lines, bad) if job is not None else 0
    if problems:
        raise JobError(_capped(problems))
    assert job is not None
    return replace(job, count=count)


def _from_mapping(doc: dict[str, Any], overrides: Overrides, problems: list[Problem], bad: list[tuple]) -> Job | None:
    """A job given as a dict (the Python API) is held to what a job file can say."""
    found = schema.json_problems(doc, MAX_DEPTH)
    problems.extend(Problem("<job>", None, message, schema.pointer(where)) for where, message in found)
    return None if found else _from_document(doc, None, {}, overrides, problems, bad)


def _capped(problems: list[Problem]) -> list[Problem]:
    if len(problems) <= MAX_PROBLEMS:
        return problems
    more = len(problems) - MAX_PROBLEMS
    return problems[:MAX_PROBLEMS] + [Problem(problems[0].file, None, f"... and {more} more problems", NO_POINTER)]


def _read_yaml(path: Path, problems: list[Problem]) -> _Parsed | None:
    """The document, with the line of every key and value; None when it cannot be read at all.
    Values JSON cannot carry are reported here and left as None for the checks that follow."""
    name = str(path)
    text = _yaml_text(path, problems)
    if text is None:
        return None
    loader = _LOADER(text, json_rules=path.suffix.lower() == ".json")
    try:
        node = loader.get_single_node()
        if node is None:
            problems.append(Problem(name, None, "the job file is empty", NO_POINTER))
            return None
        walk = _Walk(loader)
        walk.node(node, (), 1)
        problems.extend(Problem(name, line, message, schema.pointer(where)) for where, line, message in walk.found)
        return _Parsed(loader.construct_document(node), walk.lines, walk.blanks)
    except _Refused as exc:
        problems.append(Problem(name, exc.line, exc.message, NO_POINTER))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problems.append(Problem(name, line, f"YAML syntax error: {exc.problem or exc.context}", NO_POINTER))
    except yaml.YAMLError as exc:
        problems.append(Problem(name, None, f"YAML error: {exc}", NO_POINTER))
    finally:
        loader.dispose()
    return None


def _yaml_text(path: Path, problems: list[Problem]) -> str | None:
    name = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_YAML_BYTES:
            problems.append(
                Problem(
                    name,
                    None,
                    f"the file is {size / 2**20:.1f} MiB; YAML and JSON jobs are read whole "
                    f"into memory and limited to {MAX_YAML_BYTES / 2**20:g} MiB: {_STREAMED}",
                    NO_POINTER,
                )
            )
            return None
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(name, None, f"cannot read the job file: {_reason(exc)}", NO_POINTER))
        return None


@dataclass(frozen=True)
class _Parsed:
    document: Any
    lines: dict[tuple, int]
    blanks: list[tuple]  # where a value JSON cannot carry was left out (as None)


class _Refused(Exception):
    """A YAML too big or too deep to load; nothing more of it is read."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line, self.message = line, message


def _too_deep(line: int | None) -> _Refused:
    return _Refused(line, f"nested more than {MAX_DEPTH} levels deep: refusing to read it")


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


class _JobRules:
    """Mixed into a safe loader, makes it give only what JSON can carry, and stop early.

    Timestamps stay the text that was written (an Azure `api_version: 2024-10-21`, a date as an
    id); mapping keys are text, as in JSON (`logit_bias: {50256: -100}`); binaries, sets, NaN and
    the like become None, and `_Walk` reports them at their line. Node count and depth are bounded
    while composing, so a huge or deep file is refused before its tree exists."""

    def __init__(self, text: str, json_rules: bool) -> None:
        super().__init__(text)  # type: ignore[call-arg]
        self.json_rules, self.nodes, self.depth = json_rules, 0, 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        self.nodes += 1
        self.depth += 1
        try:
            if self.nodes > MAX_YAML_NODES:
                raise _Refused(
                    self._line(),
                    f"the job has more than {MAX_YAML_NODES:,} keys and values; YAML and JSON jobs "
                    f"are read whole into memory: {_STREAMED}",
                )
            if self.depth > MAX_DEPTH:
                raise _too_deep(self._line())
            return super().compose_node(parent, index)  # type: ignore[misc]
        finally:
            self.depth -= 1

    def _line(self) -> int:
        return self.peek_event().start_mark.line + 1  # type: ignore[attr-defined]

    def resolve(self, kind: type, value: str, implicit: tuple[bool, bool]) -> str:
        # A JSON job's unquoted scalars follow JSON: 1e5 is a number (YAML 1.1 says text), yes is no boolean.
        if self.json_rules and kind is yaml.ScalarNode and implicit[0]:
            return _json_tag(value)
        return super().resolve(kind, value, implicit)  # type: ignore[misc]

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[str, Any]:
        if not isinstance(node, yaml.MappingNode):  # `!!map [a]`: the base class words the error
            return super().construct_mapping(node, deep)  # type: ignore[misc]
        self.flatten_mapping(node)  # type: ignore[attr-defined]  # `<<` merges first, so keys written here win
        return {
            key.value: self.construct_object(value, deep=deep)  # type: ignore[attr-defined]
            for key, value in node.value
            if isinstance(key, yaml.ScalarNode)
        }

    def finite_float(self, node: yaml.ScalarNode) -> float | None:
        number = self.construct_yaml_float(node)  # type: ignore[attr-defined]
        return None if schema.number_problem(number, node.value) else number

    def whole_number(self, node: yaml.ScalarNode) -> int | None:
        number = self.construct_yaml_int(node)  # type: ignore[attr-defined]
        return None if schema.number_problem(number, node.value) else number


class _PyLoader(_JobRules, yaml.SafeLoader):
    pass


_LOADER: type = _PyLoader
if CParser is not None:

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


def _blank(loader: Any, node: yaml.Node) -> None:
    return None


for _loader in {_PyLoader, _LOADER}:
    _loader.add_constructor(_TAG + "timestamp", yaml.SafeLoader.construct_scalar)
    _loader.add_constructor(_TAG + "float", _JobRules.finite_float)
    _loader.add_constructor(_TAG + "int", _JobRules.whole_number)
    for _tag in (*_NOT_JSON, _BARE_WORD):
        _loader.add_constructor(_tag, _blank)


class _Walk:
    """One pass over the composed tree, aliases followed: the line of every key and value, and a
    problem for each value the loader leaves out and each duplicate key. It counts and limits the
    depth of what aliases expand to, which composing cannot see."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self.lines: dict[tuple, int] = {}
        self.found: list[tuple[tuple, int, str]] = []
        self.blanks: list[tuple] = []
        self.count = 0

    def node(self, node: yaml.Node, path: tuple, depth: int) -> None:
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

    def mapping(self, node: yaml.MappingNode, path: tuple, depth: int) -> None:
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
        if node.tag == _TAG + "float":
            return schema.number_problem(self.loader.construct_yaml_float(node), node.value)
        if node.tag == _TAG + "int" and len(node.value) > 18:
            return schema.number_problem(self.loader.construct_yaml_int(node), node.value)
        return None


def _line_of(lines: Mapping[tuple, int], path: tuple) -> int | None:
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


def _from_document(
    doc: Any,
    path: Path | None,
    lines: dict[tuple, int],
    overrides: Overrides,
    problems: list[Problem],
    bad: list[tuple],
) -> Job | None:
    """The job from a parsed document. With schema errors, the parts that are valid are still built,
    so that item checks (ids, templates, files) report their problems in the same pass."""
    name = str(path) if path else "<job>"
    blanks = list(bad)
    for error_path, message in schema.errors(doc):
        if any(error_path[: len(b)] == b for b in blanks):
            continue  # the None left for a value that is not JSON; that value is already reported
        bad.append(error_path)
        problems.append(Problem(name, _line_of(lines, error_path), message, schema.pointer(error_path)))

    def clean(prefix: tuple) -> bool:
        return not any(p[: len(prefix)] == prefix for p in bad)

    if not (isinstance(doc, dict) and isinstance(doc.get("tasks"), list) and clean(("defaults",))):
        return None
    if bad:  # settings with errors fall back to their defaults so the items can still be checked
        doc = {k: v for k, v in doc.items() if k in ("tasks", "defaults") or clean((k,))}
    base_dir = path.parent if path else Path.cwd()
    job_name = doc.get("name") or (path.stem if path else "job")
    provider = provider_from(doc.get("provider") or {}, overrides.base_url)
    defaults = dict(doc.get("defaults") or {})
    if overrides.model:
        defaults["model"] = overrides.model
    # A task whose own keys are wrong is left out; one with only some bad items is kept, and
    # _check_items skips those items, so that duplicate ids and the like are still found.
    tasks = tuple(
        _task(t, i, doc["tasks"], defaults, provider, base_dir)
        for i, t in enumerate(doc["tasks"])
        if all(p[:3] == ("tasks", i, "items") and len(p) > 3 for p in bad if p[:2] == ("tasks", i))
    )
    output = (doc.get("output") or {}) if clean(("output",)) else {}
    job = Job(
        name=job_name,
        path=path,
        fmt="yaml",
        provider=provider,
        limits=_limits(doc.get("limits") or {}, overrides),
        results=_output_path(overrides.out, output.get("results"), base_dir, f"{job_name}.csv"),
        report=_output_path(overrides.report, output.get("report"), base_dir, f"{job_name}-report.csv"),
        pricing=doc.get("pricing") or {},
        budget_usd=overrides.budget or doc.get("budget_usd"),
        defaults=defaults,
        tasks=tasks,
    )
    _check_outputs(job, name, lines, problems)
    return job


def _jsonl_job(path: Path, overrides: Overrides, problems: list[Problem]) -> Job | None:
    if not path.is_file():
        problems.append(Problem(str(path), None, "no such job file", NO_POINTER))
        return None
    defaults = {"model": overrides.model} if overrides.model else {}
    provider = provider_from({}, overrides.base_url)
    job = Job(
        name=path.stem,
        path=path,
        fmt="jsonl",
        provider=provider,
        limits=_limits({}, overrides),
        results=_output_path(overrides.out, None, path.parent, f"{path.stem}.csv"),
        report=_output_path(overrides.report, None, path.parent, f"{path.stem}-report.csv"),
        budget_usd=overrides.budget,
        defaults=defaults,
    )
    _check_outputs(job, str(path), {}, problems)
    return job


def _limits(spec: Mapping[str, Any], overrides: Overrides) -> Limits:
    values = {k: v for k, v in spec.items()}
    for key in ("concurrency", "rpm", "tpm", "max_retries", "timeout"):
        if getattr(overrides, key) is not None:
            values[key] = getattr(overrides, key)
    if overrides.shared_limits is not None:
        values["shared"] = overrides.shared_limits
    return Limits(**values)


def _output_path(option: str | None, in_job: str | None, base_dir: Path, default: str) -> Path:
    if option:
        return Path(option)
    return base_dir / (in_job or Path("out") / default)


def _check_outputs(job: Job, name: str, lines: Mapping[tuple, int], problems: list[Problem]) -> None:
    for key, value, allowed in (("results", job.results, RESULT_SUFFIXES), ("report", job.report, REPORT_SUFFIXES)):
        if value.suffix.lower() not in allowed:
            where = ("output", key)
            problems.append(
                Problem(
                    name,
                    _line_of(lines, where),
                    f"unsupported {key} file suffix '{value.suffix}': use {', '.join(allowed)}",
                    schema.pointer(where),
                )
            )


def _task(
    spec: Mapping[str, Any],
    index: int,
    all_tasks: list,
    defaults: Mapping[str, Any],
    provider: Provider,
    base_dir: Path,
) -> Task:
    kind = spec["type"]
    same_type = [t for t in all_tasks if t.get("type") == kind and not t.get("name")]
    label = spec.get("name") or (kind if len(same_type) == 1 else f"{kind}-{same_type.index(spec) + 1}")
    params = _merge_params(_defaults_for(kind, defaults), spec)
    options = {
        k: v
        for k, v in spec.items()
        if k not in PARAM_KEYS and k not in ("type", "name", "items", "items_from", "provider")
    }
    items_from = base_dir / spec["items_from"] if spec.get("items_from") else None
    return Task(
        label=label,
        type=kind,
        index=index,
        options=options,
        params=params,
        provider=merged(provider, spec.get("provider")),
        items=tuple(spec.get("items") or ()),
        items_from=items_from,
        base_dir=base_dir,
    )


def _defaults_for(kind: str, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """`defaults` are chat request parameters; the other endpoints take none of them, and a model
    of their own (the type's default unless the task or the item names one)."""
    task_kind = TASKS.get(kind)
    if task_kind is None or task_kind.chat_family:
        return dict(defaults)
    return {"model": task_kind.default_model} if task_kind.default_model else {}


def _merge_params(base: Mapping[str, Any], layer: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key in PARAM_KEYS & layer.keys():
        merged[key] = {**merged.get("params", {}), **layer[key]} if key == "params" else layer[key]
    return merged


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


# ----------------------------------------------------------------------------- items


def _walk(job: Job, problems: list[Problem] | None) -> Iterator[_Item]:
    """Every item of the job in input order. With `problems`, rows from files are schema-checked too."""
    if job.fmt == "jsonl":
        yield from _jsonl_items(job, problems)
        return
    for task in job.tasks:
        for n, item in enumerate(task.items, 1):
            path = ("tasks", task.index, "items", n - 1)
            yield _Item(str(job.path or "<job>"), None, path, task, item, _id(item, f"{task.label}:{n}"))
        if task.items_from is not None:
            yield from _file_items(task, len(task.items), problems)


def _jsonl_items(job: Job, problems: list[Problem] | None) -> Iterator[_Item]:
    assert job.path is not None
    name = str(job.path)
    tasks: dict[tuple, Task] = {}
    with job.path.open(encoding="utf-8-sig") as lines:
        for number, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            try:
                line = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                _report(problems, Problem(name, number, f"invalid JSON: {exc.msg} (column {exc.colno})", NO_POINTER))
                continue
            definition = "batch_line" if isinstance(line, dict) and "custom_id" in line else "line"
            if problems is not None:
                # orjson has refused NaN, infinity and keys that are not text: only depth is left to
                # check, and a line with fewer brackets than MAX_DEPTH cannot be too deep.
                deep = raw.count("[") + raw.count("{") >= MAX_DEPTH
                found = [Problem(name, number, m, schema.pointer(p)) for p, m in _row_problems(line, definition, deep)]
                if found:
                    problems.extend(found)
                    continue
            if definition == "batch_line":
                kind = BATCH_URLS[line["url"]]
                fields = {"id": line["custom_id"], "body": line["body"]}
                key = (kind, "batch")
            else:
                kind = line["type"]
                fields = {k: v for k, v in line.items() if k not in ("type", "task")}
                key = (kind, line.get("task") or kind)
            if key not in tasks:
                tasks[key] = Task(
                    label=key[1] if key[1] != "batch" else kind,
                    type=kind,
                    index=len(tasks),
                    options={},
                    params=_defaults_for(kind, job.defaults),
                    provider=job.provider,
                    base_dir=job.base_dir,
                )
            yield _Item(name, number, (), tasks[key], fields, _id(fields, f"line{number}"))


def _file_items(task: Task, offset: int, problems: list[Problem] | None) -> Iterator[_Item]:
    path = task.items_from
    assert path is not None
    definition = "templated_item" if task.options.get("template") else f"{task.type}_item"
    try:
        for n, (line, row) in enumerate(_rows(path), offset + 1):
            if problems is not None:
                found = [Problem(str(path), line, m, schema.pointer(p)) for p, m in _row_problems(row, definition)]
                if found:
                    problems.extend(found)
                    continue
            if not isinstance(row, str):  # a str is a row that could not be read, reported above
                yield _Item(str(path), line, (), task, row, _id(row, f"{task.label}:{n}"))
    except (OSError, UnicodeDecodeError, ValueError, csv.Error) as exc:
        _report(problems, Problem(str(path), None, f"cannot read items_from: {_reason(exc)}", NO_POINTER))
        if problems is None:
            raise


def _row_problems(row: Any, definition: str, check_json: bool = True) -> list[tuple[tuple, str]]:
    """A row's problems: what reading it found (a message instead of the row), what JSON cannot
    carry (the schema validators cannot take it), then the schema's."""
    if isinstance(row, str):
        return [((), row)]
    return (check_json and schema.json_problems(row, MAX_DEPTH)) or list(schema.errors(row, definition))


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line or row number, row) for each row of a CSV, JSONL or Parquet file; a message in place
    of a row that cannot be read."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        yield from _csv_rows(path)
    elif suffix == ".jsonl":
        yield from _jsonl_rows(path)
    elif suffix == ".parquet":
        from .report import parquet_rows  # pyarrow's home

        for row, record in enumerate(parquet_rows(path), 1):
            yield row, {k: v for k, v in record.items() if v is not None}
    else:
        raise ValueError(f"unsupported file type '{suffix}'")


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    with path.open(encoding="utf-8-sig") as handle:
        for line, raw in enumerate(handle, 1):
            if raw.strip():
                try:
                    yield line, json.loads(raw)
                except json.JSONDecodeError as exc:
                    yield line, f"invalid JSON: {exc.msg} (column {exc.colno})"
                except RecursionError:
                    yield line, f"nested more than {MAX_DEPTH} levels deep: refusing to read it"


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    # The cell limit is process-wide; it is raised only while this file is read.
    previous = csv.field_size_limit(MAX_CSV_CELL)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            yield from _csv_records(csv.reader(handle))
    finally:
        csv.field_size_limit(previous)


def _csv_records(reader: Any) -> Iterator[tuple[int, dict[str, Any] | str]]:
    try:
        header = next(reader, None)
        twice = sorted({name for name in header or () if name and header.count(name) > 1})
        if twice:
            yield (
                reader.line_num,
                f"the header names {', '.join(map(repr, twice))} twice: each column needs its own name",
            )
            return
        line = reader.line_num + 1
        for cells in reader:
            if len(cells) > len(header):
                yield line, f"the row has {len(cells)} cells but the header names {len(header)} columns"
            elif cells:
                # a short row leaves its last columns empty
                yield line, {k: _csv_value(k, v) for k, v in zip(header, cells, strict=False) if k and v}
            line = reader.line_num + 1
    except csv.Error as exc:
        too_big = "field limit" in str(exc)
        yield (
            reader.line_num,
            (
                f"a cell is larger than {MAX_CSV_CELL:,} bytes (is a quote left open?)"
                if too_big
                else f"cannot read the CSV: {exc}"
            ),
        )


def _csv_value(key: str, value: str) -> Any:
    if key in _CSV_NUMBERS:
        try:
            return orjson.loads(value)  # strict JSON: NaN, Infinity and 1e999 stay text, for the schema to refuse
        except orjson.JSONDecodeError:
            return value
    return value


def _report(problems: list[Problem] | None, problem: Problem) -> None:
    if problems is not None:
        problems.append(problem)


# ----------------------------------------------------------------------------- checks and requests


def _check_items(job: Job, problems: list[Problem], lines: Mapping[tuple, int], bad: list[tuple]) -> int:
    """The rules a schema cannot say: a model and a target language are set, template fields exist,
    ids are unique. Ids are kept as 8-byte digests so a million items cost a few tens of MB."""
    seen: set[bytes] = set()
    templates: dict[int, list[str]] = {}
    for item in _walk(job, problems):
        if not isinstance(item.fields, dict):
            continue
        line, pointer = item.line or _line_of(lines, item.path), schema.pointer(item.path)
        digest = hashlib.blake2b(item.id.encode(), digest_size=8).digest()
        if digest in seen and item.fields.get("id", "") is not None:  # None: an id already reported
            problems.append(
                Problem(item.file, line, f"duplicate id '{item.id}': ids must be unique within the job", pointer)
            )
        seen.add(digest)
        if bad and item.path and any(p[: len(item.path)] == item.path for p in bad):
            continue  # the schema already said what is wrong with this item
        for message in _item_problems(item, templates):
            problems.append(Problem(item.file, line, message, pointer))
        if len(problems) > MAX_PROBLEMS:
            break
    return len(seen)


def _item_problems(item: _Item, templates: dict[int, list[str]]) -> Iterator[str]:
    fields, task, kind = item.fields, item.task, TASKS[item.task.type]
    if "body" in fields:
        return
    params = _merge_params(task.params, fields)
    if not params.get("model"):
        where = "defaults, the task or the item (or --model)" if kind.chat_family else "the task or the item"
        yield f"no model: set `model` in {where}"
    if task.type == "translate" and not (fields.get("target_lang") or task.options.get("target_lang")):
        yield "no target language: set `target_lang` on the task or the item"
    if kind.file_field and not _upload_path(task, fields[kind.file_field]).is_file():
        yield f"no such file: {fields[kind.file_field]} (paths are relative to the job file)"
    template = task.options.get("template")
    if template:
        if task.index not in templates:
            try:
                templates[task.index] = template_fields(template)
            except ValueError as exc:
                templates[task.index] = []
                yield f"bad template: {exc}"
        missing = [f for f in templates[task.index] if f not in fields]
        if missing:
            yield f"the template needs {', '.join(repr(m) for m in missing)}, which this item lacks"


def _id(fields: Mapping[str, Any], default: str) -> str:
    return str(fields["id"]) if "id" in fields else default


def requests(job: Job) -> Iterator[Request]:
    """The job's requests in input order. Call only on a job `load` accepted."""
    for seq, item in enumerate(_walk(job, None)):
        yield build_request(item, seq)


def dump(body: Mapping[str, Any]) -> bytes:
    """A request body as compact UTF-8 JSON. orjson: a tenth of the time of json.dumps, which
    shows at thousands of requests a second; YAML may give integer keys (logit_bias)."""
    return orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)


def _upload_path(task: Task, name: str) -> Path:
    """A file named in an item, relative to the job file."""
    path = Path(name)
    return path if path.is_absolute() else task.base_dir / path


def build_request(item: _Item, seq: int) -> Request:
    task, fields = item.task, item.fields
    kind = TASKS[task.type]
    if "body" in fields:  # a Batch API line: its body is sent exactly as written
        body = dict(fields["body"])
        params: Mapping[str, Any] = {**task.params, **body}
        options: Mapping[str, Any] = {}
    else:
        params = _merge_params(task.params, fields)
        options = {**task.options, **{k: fields[k] for k in kind.options if k in fields}}
        body = kind.body(fields, options, params)
    payload = dump(body)
    digest = hashlib.blake2b(kind.endpoint.encode() + b"\0" + payload, digest_size=16)
    files: tuple[tuple[str, Path], ...] = ()
    units = kind.units(body)
    if kind.file_field:
        path = _upload_path(task, fields[kind.file_field])
        files = ((kind.file_field, path),)
        digest.update(_file_digest(path))  # a changed recording is sent again
        units = _audio_minutes(path)
    return Request(
        seq=seq,
        id=item.id,
        task=task.label,
        type=task.type,
        model=str(body.get("model", "")),
        endpoint=kind.endpoint,
        body=body,
        payload=payload,
        hash=digest.hexdigest(),
        provider=task.provider,
        max_tokens=body.get("max_tokens") or body.get("max_completion_tokens"),
        expected_output_tokens=params.get("expected_output_tokens"),
        files=files,
        units=units,
        pack_size=int(options.get("batch_size") or kind.pack_size) if isinstance(body.get("input"), str) else 0,
    )


def _file_digest(path: Path) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.digest()


def _audio_minutes(path: Path) -> float | None:
    """A WAV file's length; other formats need a decoder batchgpt does not carry (None)."""
    import wave

    try:
        with wave.open(str(path), "rb") as audio:
            return audio.getnframes() / audio.getframerate() / 60
    except (wave.Error, EOFError, OSError, ZeroDivisionError):
        return None
