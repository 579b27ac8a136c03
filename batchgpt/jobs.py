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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Mapping

import orjson
import yaml

from . import schema
from .errors import NO_POINTER, JobError, Problem
from .records import DEFAULT_BASE_URL, Limits, Provider, Request
from .tasks import BATCH_URLS, TASKS, template_fields

PARAM_KEYS = frozenset({"model", "temperature", "top_p", "max_tokens", "stop", "stream", "expected_output_tokens", "params"})
RESULT_SUFFIXES = (".csv", ".parquet", ".jsonl")
REPORT_SUFFIXES = (".csv", ".parquet")
MAX_YAML_BYTES = 16 * 2**20  # bigger batches belong in JSONL or items_from, which are streamed
MAX_YAML_NODES = 2_000_000  # an alias bomb expands past this long before memory runs out
MAX_PROBLEMS = 1000
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
    bad: list[tuple] = []  # paths with schema errors
    if isinstance(source, Mapping):
        job = _from_document(dict(source), None, {}, overrides, problems, bad)
    else:
        path = Path(source)
        if path.suffix.lower() == ".jsonl":
            job = _jsonl_job(path, overrides, problems)
        else:
            document, lines = _read_yaml(path, problems)
            job = _from_document(document, path, lines, overrides, problems, bad) if not problems else None
    count = _check_items(job, problems, lines, bad) if job is not None else 0
    if problems:
        raise JobError(_capped(problems))
    assert job is not None
    return replace(job, count=count)


def _capped(problems: list[Problem]) -> list[Problem]:
    if len(problems) <= MAX_PROBLEMS:
        return problems
    more = len(problems) - MAX_PROBLEMS
    return problems[:MAX_PROBLEMS] + [Problem(problems[0].file, None, f"... and {more} more problems", NO_POINTER)]


def _read_yaml(path: Path, problems: list[Problem]) -> tuple[Any, dict[tuple, int]]:
    name = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_YAML_BYTES:
            problems.append(Problem(name, None, f"the file is {size / 2**20:.0f} MiB; YAML and JSON jobs are limited "
                                    f"to {MAX_YAML_BYTES // 2**20} MiB: put the items in a JSONL job or an items_from file", NO_POINTER))
            return None, {}
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(name, None, f"cannot read the job file: {_reason(exc)}", NO_POINTER))
        return None, {}
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            problems.append(Problem(name, None, "the job file is empty", NO_POINTER))
            return None, {}
        lines: dict[tuple, int] = {}
        _map_lines(node, (), lines, [0])
        return loader.construct_document(node), lines
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problems.append(Problem(name, line, f"YAML syntax error: {exc.problem or exc.context}", NO_POINTER))
    except yaml.YAMLError as exc:
        problems.append(Problem(name, None, f"YAML error: {exc}", NO_POINTER))
    except _TooLarge:
        problems.append(Problem(name, None, f"the YAML expands to more than {MAX_YAML_NODES:,} nodes "
                                "(aliases nested too deep?); refusing to load it", NO_POINTER))
    finally:
        loader.dispose()
    return None, {}


class _TooLarge(Exception):
    pass


def _map_lines(node: yaml.Node, path: tuple, lines: dict[tuple, int], count: list[int]) -> None:
    """Record the line of every key and value; counts nodes so that aliases cannot expand forever."""
    count[0] += 1
    if count[0] > MAX_YAML_NODES:
        raise _TooLarge
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = path + (key.value if isinstance(key, yaml.ScalarNode) else "?",)
            lines.setdefault(child, key.start_mark.line + 1)
            _map_lines(value, child, lines, count)
    elif isinstance(node, yaml.SequenceNode):
        for i, value in enumerate(node.value):
            _map_lines(value, path + (i,), lines, count)


def _line_of(lines: Mapping[tuple, int], path: tuple) -> int | None:
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


def _from_document(doc: Any, path: Path | None, lines: dict[tuple, int], overrides: Overrides,
                   problems: list[Problem], bad: list[tuple]) -> Job | None:
    """The job from a parsed document. With schema errors, the parts that are valid are still built,
    so that item checks (ids, templates, files) report their problems in the same pass."""
    name = str(path) if path else "<job>"
    for error_path, message in schema.errors(doc):
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
    provider = _provider(doc.get("provider") or {}, overrides)
    defaults = dict(doc.get("defaults") or {})
    if overrides.model:
        defaults["model"] = overrides.model
    # A task whose own keys are wrong is left out; one with only some bad items is kept, and
    # _check_items skips those items, so that duplicate ids and the like are still found.
    tasks = tuple(_task(t, i, doc["tasks"], defaults, provider, base_dir) for i, t in enumerate(doc["tasks"])
                  if all(p[:3] == ("tasks", i, "items") and len(p) > 3 for p in bad if p[:2] == ("tasks", i)))
    output = (doc.get("output") or {}) if clean(("output",)) else {}
    job = Job(
        name=job_name, path=path, fmt="yaml", provider=provider,
        limits=_limits(doc.get("limits") or {}, overrides),
        results=_output_path(overrides.out, output.get("results"), base_dir, f"{job_name}.csv"),
        report=_output_path(overrides.report, output.get("report"), base_dir, f"{job_name}-report.csv"),
        pricing=doc.get("pricing") or {}, budget_usd=overrides.budget or doc.get("budget_usd"),
        defaults=defaults, tasks=tasks,
    )
    _check_outputs(job, name, lines, problems)
    return job


def _jsonl_job(path: Path, overrides: Overrides, problems: list[Problem]) -> Job | None:
    if not path.is_file():
        problems.append(Problem(str(path), None, "no such job file", NO_POINTER))
        return None
    defaults = {"model": overrides.model} if overrides.model else {}
    provider = _provider({}, overrides)
    job = Job(
        name=path.stem, path=path, fmt="jsonl", provider=provider, limits=_limits({}, overrides),
        results=_output_path(overrides.out, None, path.parent, f"{path.stem}.csv"),
        report=_output_path(overrides.report, None, path.parent, f"{path.stem}-report.csv"),
        budget_usd=overrides.budget, defaults=defaults,
    )
    _check_outputs(job, str(path), {}, problems)
    return job


def _provider(spec: Mapping[str, Any], overrides: Overrides) -> Provider:
    base_url = overrides.base_url or spec.get("base_url") or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
    fields = {k: v for k, v in spec.items() if k in ("api_key_env", "kind", "api_version", "proxy", "organization", "project")}
    return Provider(base_url=base_url.rstrip("/"), headers=tuple(sorted((spec.get("headers") or {}).items())), **fields)


def _merge_provider(base: Provider, spec: Mapping[str, Any] | None) -> Provider:
    if not spec:
        return base
    changes = {k: v for k, v in spec.items() if k != "headers"}
    if "base_url" in changes:
        changes["base_url"] = changes["base_url"].rstrip("/")
    if "headers" in spec:
        changes["headers"] = tuple(sorted({**dict(base.headers), **spec["headers"]}.items()))
    return replace(base, **changes)


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
            problems.append(Problem(name, _line_of(lines, where), f"unsupported {key} file suffix "
                                    f"'{value.suffix}': use {', '.join(allowed)}", schema.pointer(where)))


def _task(spec: Mapping[str, Any], index: int, all_tasks: list, defaults: Mapping[str, Any],
          provider: Provider, base_dir: Path) -> Task:
    kind = spec["type"]
    same_type = [t for t in all_tasks if t.get("type") == kind and not t.get("name")]
    label = spec.get("name") or (kind if len(same_type) == 1 else f"{kind}-{same_type.index(spec) + 1}")
    params = _merge_params(_defaults_for(kind, defaults), spec)
    options = {k: v for k, v in spec.items() if k not in PARAM_KEYS and k not in ("type", "name", "items", "items_from", "provider")}
    items_from = base_dir / spec["items_from"] if spec.get("items_from") else None
    return Task(label=label, type=kind, index=index, options=options, params=params,
                provider=_merge_provider(provider, spec.get("provider")),
                items=tuple(spec.get("items") or ()), items_from=items_from, base_dir=base_dir)


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
                found = [Problem(name, number, m, schema.pointer(p)) for p, m in schema.errors(line, definition)]
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
                tasks[key] = Task(label=key[1] if key[1] != "batch" else kind, type=kind, index=len(tasks),
                                  options={}, params=_defaults_for(kind, job.defaults), provider=job.provider,
                                  base_dir=job.base_dir)
            yield _Item(name, number, (), tasks[key], fields, _id(fields, f"line{number}"))


def _file_items(task: Task, offset: int, problems: list[Problem] | None) -> Iterator[_Item]:
    path = task.items_from
    assert path is not None
    definition = "templated_item" if task.options.get("template") else f"{task.type}_item"
    try:
        for n, (line, row) in enumerate(_rows(path), offset + 1):
            if problems is not None:
                found = [Problem(str(path), line, m, schema.pointer(p)) for p, m in schema.errors(row, definition)]
                if found:
                    problems.extend(found)
                    continue
            yield _Item(str(path), line, (), task, row, _id(row, f"{task.label}:{n}"))
    except (OSError, UnicodeDecodeError, ValueError, csv.Error) as exc:
        _report(problems, Problem(str(path), None, f"cannot read items_from: {_reason(exc)}", NO_POINTER))
        if problems is None:
            raise


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line or row number, row) for each row of a CSV, JSONL or Parquet file."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            reader.fieldnames  # reads the header, so that line_num counts from the first row
            line = reader.line_num + 1
            for row in reader:
                yield line, {k: _csv_value(k, v) for k, v in row.items() if k and v not in (None, "")}
                line = reader.line_num + 1
    elif suffix == ".jsonl":
        with path.open(encoding="utf-8-sig") as handle:
            for line, raw in enumerate(handle, 1):
                if raw.strip():
                    try:
                        yield line, json.loads(raw)
                    except json.JSONDecodeError as exc:
                        raise ValueError(f"line {line}: invalid JSON: {exc.msg}") from None
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        row = 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
            for record in batch.to_pylist():
                row += 1
                yield row, {k: v for k, v in record.items() if v is not None}
    else:
        raise ValueError(f"unsupported file type '{suffix}'")


def _csv_value(key: str, value: str) -> Any:
    if key in _CSV_NUMBERS:
        try:
            return json.loads(value)
        except json.JSONDecodeError:
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
        if digest in seen:
            problems.append(Problem(item.file, line, f"duplicate id '{item.id}': ids must be unique within the job", pointer))
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
        seq=seq, id=item.id, task=task.label, type=task.type, model=str(body.get("model", "")),
        endpoint=kind.endpoint, body=body, payload=payload, hash=digest.hexdigest(), provider=task.provider,
        max_tokens=body.get("max_tokens") or body.get("max_completion_tokens"),
        expected_output_tokens=params.get("expected_output_tokens"), files=files, units=units,
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
