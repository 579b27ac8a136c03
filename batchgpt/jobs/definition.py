"""From what a job file says to a `Job`: the schema's verdict, the settings, the tasks, the output paths.

With schema errors the parts that are valid are still built, so that the item checks that follow
report their problems in the same pass; a setting with errors falls back to its default.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from batchgpt import schema, settings, structured
from batchgpt.providers import merged, provider_from
from batchgpt.records import RESERVED_COLUMNS, RESULT_COLUMNS, Limits, Provider
from batchgpt.structured import REASK_DEFAULT
from batchgpt.tasks import template_fields

from . import endpoints
from .bounds import MAX_DEPTH
from .charsets import encoding_problem
from .globbed import glob_problem, is_glob
from .inputs import refused_key
from .job import PARAM_KEYS, Job, Overrides, Task, defaults_for, id_fields, merge_params
from .problems import Problems
from .source import read_document

RESULT_SUFFIXES = (".csv", ".parquet", ".jsonl")
REPORT_SUFFIXES = (".csv", ".parquet")
STRUCTURED = ("schema", "schema_name", "reask", "columns")  # task options of structured outputs
_NOT_OPTIONS = (
    PARAM_KEYS | {"type", "name", "items", "items_from", "provider", "keep", "id", "id_column"} | set(STRUCTURED)
)


def from_mapping(doc: dict[str, Any], overrides: Overrides, problems: Problems) -> Job | None:
    """A job given as a dict (the Python API) is held to what a job file can say."""
    found = schema.json_problems(doc, MAX_DEPTH)
    for where, message in found:
        problems.at(where, message)
    return None if found else from_document(doc, None, overrides, problems)


def from_document(doc: Any, path: Path | None, overrides: Overrides, problems: Problems) -> Job | None:
    """The job from a parsed document; None when its tasks or defaults are too broken to build."""
    _check_schema(doc, problems)

    def clean(prefix: schema.JsonPath) -> bool:
        return not problems.bad_under(prefix)

    if not (isinstance(doc, dict) and isinstance(doc.get("tasks"), list)):
        return None
    if problems.bad:  # settings with errors fall back to their defaults so the items can still be checked
        doc = {k: v for k, v in doc.items() if k in ("tasks", "defaults") or clean((k,))}
        defaults = doc.get("defaults")
        doc["defaults"] = (
            {k: v for k, v in defaults.items() if clean(("defaults", k))} if isinstance(defaults, dict) else {}
        )
    base_dir = path.parent if path else Path.cwd()
    job_name = doc.get("name") or (path.stem if path else "job")
    output = (doc.get("output") or {}) if clean(("output",)) else {}
    given, doc = doc, overridden(doc, overrides)
    doc = endpoints.checked(given, doc, overrides, base_dir, problems)
    provider = provider_from(doc.get("provider") or {})
    defaults = dict(doc.get("defaults") or {})
    job = Job(
        name=job_name,
        path=path,
        fmt="yaml",
        provider=provider,
        limits=Limits(**(doc.get("limits") or {})),
        results=_output_path(overrides.out, output.get("results"), base_dir, f"{job_name}.csv"),
        report=_output_path(overrides.report, output.get("report"), base_dir, f"{job_name}-report.csv"),
        bom=bool(overrides.bom or output.get("bom")),
        pricing=doc.get("pricing") or {},
        budget_usd=doc.get("budget_usd"),
        mode=doc.get("mode") or "online",
        defaults=defaults,
        tasks=_tasks(doc["tasks"], defaults, provider, base_dir, problems),
        key_variables=endpoints.key_variables(given, problems),
    )
    _check_outputs(job, problems)
    return job


def _check_schema(doc: Any, problems: Problems) -> None:
    found = list(schema.errors(doc))
    kept = [path for path, message in found if _kept_field(doc, path, message)]
    if kept:  # kept item fields are no errors: check the job without them, so nothing cascades from them
        found = list(schema.errors(_without(doc, kept)))
    for error_path, message in found:
        if not problems.blanked(error_path):  # a blank's None: that value is already reported
            problems.refused(
                error_path, _input_message(doc, error_path, endpoints.schema_message(doc, error_path, message))
            )


def _input_message(doc: Any, path: schema.JsonPath, message: str) -> str:
    """An attached input on a task, or its item, whose type takes none, said so."""
    if len(path) < 3 or path[0] != "tasks" or not isinstance(path[1], int) or not isinstance(path[-1], str):
        return message
    task = doc["tasks"][path[1]]  # the schema found an error under it: it is there
    return refused_key(str(task.get("type")), path[-1], message) if isinstance(task, dict) else message


def _without(doc: dict[str, Any], paths: list[schema.JsonPath]) -> dict[str, Any]:
    """The document without the item fields at `paths` (tasks/N/items/M/FIELD), copying only what
    changes."""
    tasks = list(doc["tasks"])
    for _, task_index, _, item_index, name in paths:
        assert isinstance(task_index, int) and isinstance(item_index, int)
        task = tasks[task_index] = dict(tasks[task_index])
        items = task["items"] = list(task["items"])
        items[item_index] = {k: v for k, v in items[item_index].items() if k != name}
    return {**doc, "tasks": tasks}


def _kept_field(doc: Any, path: schema.JsonPath, message: str) -> bool:
    """An item's field that its task keeps (tasks/N/items/M/FIELD) is no unknown key."""
    if len(path) != 5 or path[0] != "tasks" or path[2] != "items":
        return False
    task = doc["tasks"][path[1]]
    return isinstance(task, dict) and schema.kept_key(path, message, task.get("keep"))


def jsonl_job(path: Path, overrides: Overrides, problems: Problems) -> Job | None:
    """A JSONL job: one item a line, its settings all from the command line."""
    if not path.is_file():
        problems.add("no such job file")
        return None
    given = endpoints.checked({}, overridden({}, overrides), overrides, path.parent, problems)
    job = Job(
        name=path.stem,
        path=path,
        fmt="jsonl",
        provider=provider_from(given.get("provider") or {}),
        limits=Limits(**(given.get("limits") or {})),
        results=_output_path(overrides.out, None, path.parent, f"{path.stem}.csv"),
        report=_output_path(overrides.report, None, path.parent, f"{path.stem}-report.csv"),
        bom=bool(overrides.bom),
        budget_usd=given.get("budget_usd"),
        mode=given.get("mode") or "online",
        defaults=given.get("defaults") or {},
    )
    _check_outputs(job, problems)
    return job


def overridden(doc: Mapping[str, Any], overrides: Overrides) -> dict[str, Any]:
    """The job's settings with each override that is set in its setting's place (the schema's
    x-option says which setting an override sets), copying only what changes. The output paths
    are left to `_output_path`: given on the command line, they are relative to the current
    folder, not to the job file."""
    merged = dict(doc)
    for setting in settings.overrides():
        value = getattr(overrides, setting.option.name) if setting.option else None
        if value in (None, "") or setting.path[0] == "output":  # "": unset, as an empty option is
            continue
        *groups, key = setting.path
        place = merged
        for group in groups:
            place[group] = dict(place.get(group) or {})
            place = place[group]
        place[key] = value
    return merged


def _output_path(option: str | None, in_job: str | None, base_dir: Path, default: str) -> Path:
    if option:
        return Path(option)
    return base_dir / (in_job or Path("out") / default)


def _check_outputs(job: Job, problems: Problems) -> None:
    for key, value, allowed in (("results", job.results, RESULT_SUFFIXES), ("report", job.report, REPORT_SUFFIXES)):
        if value.suffix.lower() not in allowed:
            problems.at(("output", key), f"unsupported {key} file suffix '{value.suffix}': use {', '.join(allowed)}")


def _tasks(
    specs: list[Any], defaults: Mapping[str, Any], provider: Provider, base_dir: Path, problems: Problems
) -> tuple[Task, ...]:
    # A task whose own keys are wrong is left out; one with only some bad items is kept, and the
    # item checks skip those items, so that duplicate ids and the like are still found.
    _check_keep(specs, problems)
    _check_globs(specs, problems)
    _check_encodings(specs, problems)
    _check_templates(specs, problems)
    schemas = _schemas(specs, base_dir, problems)
    return tuple(
        _task(spec, i, specs, defaults, provider, base_dir, schemas)
        for i, spec in enumerate(specs)
        if all(p[2:3] == ("items",) and len(p) > 3 for p in problems.bad_under(("tasks", i)))
    )


def _check_globs(specs: list[Any], problems: Problems) -> None:
    """A glob's task must take files and make a prompt of their names: else it is left out."""
    for index, spec in enumerate(specs):
        given, _ = _items_from(spec)
        found = glob_problem(spec) if given and is_glob(given) else None
        if found and not problems.bad_under(("tasks", index, "items_from")):
            problems.refused(("tasks", index, "items_from"), found)


def _items_from(spec: Any) -> tuple[str | None, str | None]:
    """items_from's file (or glob) and encoding: `items_from: data.csv`, or a mapping
    `{path: data.csv, encoding: gbk}`; None for one that is not text (the schema says so)."""
    given: Any = spec.get("items_from") if isinstance(spec, dict) else None
    encoding: Any = None
    if isinstance(given, dict):
        given, encoding = given.get("path"), given.get("encoding")
    return (given if isinstance(given, str) else None), (encoding if isinstance(encoding, str) else None)


def _check_templates(specs: list[Any], problems: Problems) -> None:
    """A task's template and id name plain fields: a placeholder of anything else is one mistake
    in the job file, said at its line, not at each row it would fill."""
    for index, spec in enumerate(specs):
        if not isinstance(spec, dict):
            continue
        template, given = spec.get("template"), spec.get("id")
        if isinstance(template, str):
            try:
                template_fields(template)
            except ValueError as exc:
                problems.refused(("tasks", index, "template"), f"bad template: {exc}")
        if isinstance(given, str) and id_fields(given) is None:
            problems.refused(("tasks", index, "id"), f"id: {given!r} must be made of plain field names like {{sku}}")


def _check_encodings(specs: list[Any], problems: Problems) -> None:
    """items_from's `encoding` is a text codec Python has, for a CSV or JSONL file: Parquet's text
    is UTF-8 by its format, and a glob's files are attached as they are."""
    for index, spec in enumerate(specs):
        path, encoding = _items_from(spec)
        where = ("tasks", index, "items_from", "encoding")
        if encoding is None or path is None or problems.bad_under(where[:-1]):
            continue
        found = encoding_problem(encoding)
        if found is None and is_glob(path):
            found = "a glob's files are attached as they are: `encoding` is for one CSV or JSONL file"
        elif found is None and path.lower().endswith(".parquet"):
            found = "a Parquet file's text is UTF-8 by its format: leave `encoding` out"
        if found is not None:
            problems.refused(where, f"items_from: {found}")


def _keep(spec: Any) -> tuple[str, ...] | None:
    """`keep:` as a Task holds it: the names, () for "all", None for none."""
    if spec == "all":
        return ()
    return tuple(spec) if isinstance(spec, list) else None


def _check_keep(specs: list[Any], problems: Problems) -> None:
    """A kept field may not take a result column's name; a task names its ids one way."""
    taken = set(RESULT_COLUMNS) | RESERVED_COLUMNS
    for index, spec in enumerate(specs):
        if isinstance(spec, dict) and "id" in spec and "id_column" in spec:
            problems.at(("tasks", index, "id_column"), "set `id` (a template) or `id_column`, not both")
        keep = spec.get("keep") if isinstance(spec, dict) else None
        for n, name in enumerate(keep if isinstance(keep, list) else ()):
            if name in taken:
                problems.at(("tasks", index, "keep", n), f"keep: {name!r} is a result column already; rename the field")


def _schemas(specs: list[Any], base_dir: Path, problems: Problems) -> dict[int, Mapping[str, Any]]:
    """Each task's structured-output schema (inline, or read from its .json file), checked against
    strict mode; a break is reported at its line in the job file or in the schema's file."""
    found: dict[int, Mapping[str, Any]] = {}
    for index, spec in enumerate(specs):
        given = spec.get("schema") if isinstance(spec, dict) else None
        if given is None:
            continue
        if isinstance(given, str):
            schema, report = _schema_file(base_dir / given, problems)
        else:
            schema, report = given, _inline_reporter(problems, ("tasks", index, "schema"))

        if schema is None:
            continue
        broken = False
        for path, message in structured.strict_problems(schema):
            report(path, f"schema: {message}")
            broken = True
        if not isinstance(schema, dict):
            continue  # strict_problems said so
        if spec.get("columns") and isinstance(schema.get("properties"), dict):
            keep = spec.get("keep")
            taken = set(RESULT_COLUMNS) | RESERVED_COLUMNS | (set(keep) if isinstance(keep, list) else set())
            for name in schema["properties"]:
                if name in taken:
                    report(("properties", name), f"columns: true would write {name!r}, a column results have already")
        if not broken:
            found[index] = schema
    return found


def _inline_reporter(problems: Problems, where: tuple[str | int, ...]) -> Any:
    def report(path: tuple[str | int, ...], message: str) -> None:
        problems.at((*where, *path), message)

    return report


def _schema_file(path: Path, problems: Problems) -> tuple[Any, Any]:
    """A schema's .json file, and how to report a problem at a path inside it (with its line)."""
    if not path.is_file():
        problems.add(f"schema: no such file {path} (paths are relative to the job file)")
        return None, None
    own = Problems(str(path))
    parsed = read_document(path, own)
    for problem in own.listed():
        problems.add(problem.message, file=problem.file, line=problem.line)
    if parsed is None:
        return None, None

    def report(where: tuple[str | int, ...], message: str) -> None:
        problems.add(message, file=str(path), line=parsed.lines.get(where), path=where)

    return parsed.document, report


def _task(
    spec: Mapping[str, Any],
    index: int,
    all_tasks: list[Any],
    defaults: Mapping[str, Any],
    provider: Provider,
    base_dir: Path,
    schemas: Mapping[int, Mapping[str, Any]],
) -> Task:
    kind = spec["type"]
    items_from, encoding = _items_from(spec)
    same_type = [t for t in all_tasks if t.get("type") == kind and not t.get("name")]
    label = spec.get("name") or (kind if len(same_type) == 1 else f"{kind}-{same_type.index(spec) + 1}")
    return Task(
        label=label,
        type=kind,
        index=index,
        options={k: v for k, v in spec.items() if k not in _NOT_OPTIONS},
        params=merge_params(defaults_for(kind, defaults), spec),
        provider=merged(provider, spec.get("provider")),
        items=tuple(spec.get("items") or ()),
        items_from=base_dir / items_from if items_from and not is_glob(items_from) else None,
        items_encoding=encoding,
        items_glob=items_from if items_from and is_glob(items_from) else None,
        base_dir=base_dir,
        keep=_keep(spec.get("keep")),
        output_schema=schemas.get(index),
        schema_name=spec.get("schema_name") or re.sub(r"[^A-Za-z0-9_-]", "_", label)[:64],
        reask=spec.get("reask", REASK_DEFAULT),
        columns=bool(spec.get("columns")),
        id_template=spec.get("id") or (f"{{{spec['id_column']}}}" if spec.get("id_column") else None),
    )
