"""Drift: the places that each name a job's settings must name the same ones.

A job setting is declared once, in the JSON Schema (batchgpt/settings.py reads it); the command
line's override options, jobs.Overrides and the README's Settings table are derived from it. What
is still named elsewhere, the typed records the code reads (records.Limits and Provider), the task
types and the README's prose, is compared here: each test, when two places differ, names the field
and both places, so adding a field in one and forgetting another fails here rather than in a
user's job.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

import batchgpt
from batchgpt.cli import main
from batchgpt.jobs import PARAM_KEYS, Overrides
from batchgpt.jobs.definition import STRUCTURED
from batchgpt.jobs.inputs import INPUT_KEYS
from batchgpt.records import Limits, Provider
from batchgpt.runoptions import RunOptions
from batchgpt.schema import job_schema
from batchgpt.settings import overrides, settings, with_table
from batchgpt.tasks import TASKS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text("utf-8")
SCHEMA = job_schema()
DEFS: dict[str, Any] = SCHEMA["$defs"]
RUN = main.commands["run"]

# Task options that the jobs package reads from the task for every type rather than a type's `options`:
# `template` fills the type's text field (TaskType.text), `batch_size` sizes a pack, and structured
# outputs' `schema`, `schema_name`, `reask` and `columns` (jobs/definition.py STRUCTURED).
TASK_ONLY = {"template", "batch_size", *STRUCTURED}
# Attached inputs, on a task or an item: the jobs package reads them (jobs/inputs.py), and the
# task type only puts them in the body it built (TaskType.attach).
INPUTS = {*INPUT_KEYS, "detail"}

# Drift found when these tests were written, kept here so that anything new still fails:
# `<type>_options` in the schema holds `batch_size` and `<type>_parts` (an item) takes
# `<type>_options`, so the schema accepts `batch_size` on an item, where tasks.py never reads it
# (the jobs package takes it from the task alone) and the item's value is silently ignored. Fix the schema
# (a task-only definition for batch_size), then empty this.
KNOWN_ITEM_DRIFT: dict[str, set[str]] = {}
# README.md's Task types table leaves out `system` for `dialogue`, which tasks.py and the schema
# take on a dialogue task or item. Add it to the table, then empty this.
KNOWN_README_DRIFT: dict[str, set[str]] = {}


def same(left: Iterable[str], right: Iterable[str], left_name: str, right_name: str) -> None:
    """Assert two sets of names are equal, naming what each lacks."""
    a, b = set(left), set(right)
    assert a == b, (
        f"in {left_name} but not {right_name}: {sorted(a - b)}; in {right_name} but not {left_name}: {sorted(b - a)}"
    )


def properties(definition: Mapping[str, Any], skip: frozenset[str] = frozenset({"params"})) -> set[str]:
    """The property names a schema definition accepts, through `$ref` and `allOf` (the if/then of
    templated tasks only narrows `items`). Definitions named in `skip` are left out."""
    names = set(definition.get("properties", {}))
    for part in definition.get("allOf", []):
        names |= properties(part, skip)
    if "$ref" in definition:
        name = definition["$ref"].rsplit("/", 1)[-1]
        if name not in skip:
            names |= properties(DEFS[name], skip)
    return names


def definition(name: str) -> Mapping[str, Any]:
    assert name in DEFS, f"the schema has no $defs/{name}"
    return DEFS[name]


def task_options(kind: str) -> set[str]:
    """What a task of this type may set besides request parameters and what every task has."""
    return properties(definition(f"task_{kind}")) - {"items"}


def item_options(kind: str) -> set[str]:
    """The task options an item of this type may set too, according to the schema."""
    return properties(definition(f"{kind}_item")) & task_options(kind)


def readme_table(heading: str) -> list[list[str]]:
    """The cells of each row of the first table after the README line that starts with `heading`."""
    lines = README.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(heading)]
    assert starts, f"README.md has no line starting {heading!r}"
    rows: list[list[str]] = []
    for line in lines[starts[0] + 1 :]:
        if line.startswith("|"):
            rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))])
        elif rows:
            break
    assert len(rows) > 2, f"no table after {heading!r} in README.md"
    return rows[2:]  # past the header and its rule


def code_spans(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def flags(text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", text))


def option_flags(command: click.Command) -> set[str]:
    return {f for p in command.params if isinstance(p, click.Option) for f in [*p.opts, *p.secondary_opts]}


def readme_task_rows() -> dict[str, list[str]]:
    return {row[0].strip("`"): row for row in readme_table("**Task types**")}


# The task types


def test_the_task_types_are_the_same_everywhere() -> None:
    schema_enum = definition("task_common")["properties"]["type"]["enum"]
    dispatched = [part["if"]["properties"]["type"]["const"] for part in definition("task")["allOf"] if "if" in part]
    same(TASKS, schema_enum, "batchgpt.tasks.TASKS", "the schema's task_common type enum")
    same(TASKS, dispatched, "batchgpt.tasks.TASKS", "the schema's task if/then dispatch")
    same(TASKS, readme_task_rows(), "batchgpt.tasks.TASKS", "README.md's Task types table")


@pytest.mark.parametrize("kind", sorted(TASKS))
def test_each_option_of_a_task_type_is_in_the_schema(kind: str) -> None:
    options = set(TASKS[kind].options)
    missing_from_task = options - task_options(kind)
    missing_from_item = options - properties(definition(f"{kind}_item"))
    assert not missing_from_task, f"{kind}: tasks.py options {sorted(missing_from_task)} are not in $defs/task_{kind}"
    assert not missing_from_item, (
        f"{kind}: tasks.py lets an item override {sorted(missing_from_item)}, which $defs/{kind}_item refuses"
    )


@pytest.mark.parametrize("kind", sorted(TASKS))
def test_the_schema_has_no_task_option_its_type_ignores(kind: str) -> None:
    unread = task_options(kind) - set(TASKS[kind].options) - TASK_ONLY - INPUTS
    assert not unread, f"{kind}: $defs/task_{kind} accepts {sorted(unread)}, which no option in tasks.py reads"
    packs = TASKS[kind].pack_size > 0
    assert ("batch_size" in task_options(kind)) == packs, (
        f"{kind}: batch_size in $defs/task_{kind} should be there exactly when tasks.py packs it (pack_size > 0)"
    )
    if "template" in task_options(kind):
        assert TASKS[kind].text_field, f"{kind}: $defs/task_{kind} takes a template, but the type has no text field"


@pytest.mark.parametrize("kind", sorted(TASKS))
def test_an_item_may_set_exactly_the_options_its_type_reads(kind: str) -> None:
    # an item's own structured-output schema is read by the jobs package (build.py), not tasks.py
    ignored = item_options(kind) - set(TASKS[kind].options) - {"schema", "schema_name"} - INPUTS
    known = KNOWN_ITEM_DRIFT.get(kind, set())
    assert ignored >= known, (
        f"{kind}: {sorted(known - ignored)} is fixed: take it out of KNOWN_ITEM_DRIFT in tests/test_drift.py"
    )
    assert ignored == known, (
        f"{kind}: $defs/{kind}_item lets an item set {sorted(ignored - known)}, "
        f"which tasks.py's {type(TASKS[kind]).__name__}.options leave out, so the item's value is ignored"
    )


@pytest.mark.parametrize("kind", sorted(TASKS))
def test_the_readme_task_table_names_each_types_endpoint_and_options(kind: str) -> None:
    task = TASKS[kind]
    row = readme_task_rows()[kind]
    assert row[1] == f"`/v1{task.endpoint}`", f"{kind}: README.md says {row[1]}, tasks.py {task.endpoint}"
    named = set(code_spans(row[2]))
    fields_and_options = {task.text_field, task.file_field, *task.options, *(task_options(kind) & {"batch_size"})}
    missing = {name for name in fields_and_options if name} - named
    known = KNOWN_README_DRIFT.get(kind, set())
    assert missing >= known, (
        f"{kind}: {sorted(known - missing)} is fixed: take it out of KNOWN_README_DRIFT in tests/test_drift.py"
    )
    assert missing == known, f"{kind}: README.md's Task types table does not name {sorted(missing - known)}"
    if "template" in task_options(kind):
        assert "template fields" in row[2], f"{kind}: README.md's Task types table does not say it takes a template"


# The job's settings


def test_limits_are_the_same_in_the_schema_and_records() -> None:
    same(properties(definition("limits")), [f.name for f in fields(Limits)], "$defs/limits", "records.Limits")


def test_provider_settings_are_the_same_in_the_schema_and_records() -> None:
    same(properties(definition("provider")), [f.name for f in fields(Provider)], "$defs/provider", "records.Provider")


@pytest.mark.parametrize("record, group", [(Limits, "limits"), (Provider, "provider")])
def test_the_records_defaults_are_the_schemas(record: type, group: str) -> None:
    declared = {s.path[-1]: s.default for s in settings() if s.path[:-1] == (group,)}
    for f in fields(record):
        if declared.get(f.name) is not None:
            assert f.default == declared[f.name], (
                f"{group}.{f.name}: the schema's default is {declared[f.name]!r}, {record.__name__}'s {f.default!r}"
            )


def test_every_setting_says_what_it_means() -> None:
    unexplained = [s.name for s in settings() if not s.description]
    assert not unexplained, f"add a description to {unexplained} in schemas/job.schema.json"


def test_the_readme_settings_table_is_generated_from_the_schema() -> None:
    assert with_table(README) == README, (
        "README.md's Settings table differs from schemas/job.schema.json: run `python -m batchgpt.settings`"
    )


def test_defaults_are_the_request_parameters_jobs_reads() -> None:
    defaults = properties(SCHEMA["properties"]["defaults"], skip=frozenset())
    same(defaults, PARAM_KEYS, "the schema's defaults", "jobs.PARAM_KEYS")


def test_the_readme_job_file_shows_every_limit_and_default() -> None:
    sample = re.search(r"## A job file\n+```yaml\n(.*?)```", README, re.DOTALL)
    assert sample, "README.md's 'A job file' section has no yaml block"
    job = yaml.safe_load(sample.group(1))
    same(job["limits"], properties(definition("limits")), "README.md's sample limits", "$defs/limits")
    same(job["defaults"], PARAM_KEYS, "README.md's sample defaults", "jobs.PARAM_KEYS")
    unknown = set(job["provider"]) - properties(definition("provider"))
    assert not unknown, f"README.md's sample provider has {sorted(unknown)}, which $defs/provider lacks"


# The command line and the Python API


def test_the_run_command_takes_every_override_and_run_option() -> None:
    names = {p.name for p in RUN.params if p.name}
    same(
        names - {"job", "dry_run", "verbose"},  # -v: every command logs retries with it
        {f.name for f in fields(Overrides)} | {f.name for f in fields(RunOptions)},
        "`batchgpt run`'s parameters",
        "jobs.Overrides and runoptions.RunOptions",
    )


def test_the_python_api_takes_every_override_the_readme_lists() -> None:
    sentence = re.search(
        r"`run` takes the command-line overrides as keyword arguments \((.*?)\) plus (.*?)\.", README, re.DOTALL
    )
    assert sentence, "README.md's Python API section no longer lists run's keyword arguments"
    listed_overrides = code_spans(sentence.group(1))
    listed_extras = code_spans(sentence.group(2))
    same(listed_overrides, [f.name for f in fields(Overrides)], "README.md's Python API overrides", "jobs.Overrides")
    keyword_only = [
        p.name for p in inspect.signature(batchgpt.run).parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    same(listed_extras, keyword_only, "README.md's Python API keyword arguments", "batchgpt.run's keyword arguments")


def test_the_readme_running_table_lists_every_run_flag() -> None:
    documented: set[str] = set()
    before_run: set[str] = set()
    for row in readme_table("## Running"):
        found = {f for span in code_spans(row[0]) for f in flags(span)}
        (before_run if "before `run`" in row[0] else documented).update(found)
    from_settings = {
        f for s in overrides() if s.option for f in ([f"--{v}" for v in s.option.flags] or [s.option.flag])
    }
    same(
        documented | from_settings,
        option_flags(RUN),
        "README.md's Running table and Settings table",
        "`batchgpt run`'s options",
    )
    unknown = before_run - option_flags(main)
    assert not unknown, f"README.md's Running table has {sorted(unknown)} before `run`, which `batchgpt` lacks"


def test_mock_server_help_and_readme_name_every_fault_the_mock_offers() -> None:
    """The CLI's --fault help is written by hand (importing the mock would slow every command's
    start): it lists the mock's faults, in their order, and README's mock table names each."""
    from batchgpt.cli import main
    from batchgpt.mock.faults import FAULT_KINDS

    assert isinstance(main, click.Group)
    command = main.commands["mock-server"]
    text = next(str(p.help) for p in command.params if p.name == "faults" and isinstance(p, click.Option))
    listed = text.split("Inject a fault: ", 1)[1].split(". Repeatable", 1)[0]
    assert [k.strip() for k in listed.split(",")] == list(FAULT_KINDS)
    row = next(line for line in README.splitlines() if line.startswith("| `--fault SPEC`"))
    assert [k for k in FAULT_KINDS if f"`{k}`" not in row] == []
