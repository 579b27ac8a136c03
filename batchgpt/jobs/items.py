"""The stream of a job's items, and the checks on it a schema cannot express.

Validation and request building walk the same stream (`walk`), so ids, order and locations always
agree. Items are streamed: an `items_from` file or a JSONL job is never held in memory, but for a
JSONL job under KEEP_BYTES, whose checked items `load` keeps (Job.items).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
from collections.abc import Callable, Collection, Iterator, Mapping
from collections.abc import Set as AbstractSet
from typing import Any

import orjson

from batchgpt import notext, schema, structured
from batchgpt.attachments import Attachment
from batchgpt.records import RESERVED_COLUMNS, RESULT_COLUMNS
from batchgpt.tasks import BATCH_URLS, TASKS, fill, template_fields

from .bounds import MAX_DEPTH
from .gaps import lacking
from .globbed import glob_items
from .inputs import INPUT_KEYS, checked_inputs, refused_key, wants_inputs
from .job import Item, Job, Task, defaults_for, id_fields, item_id
from .models import note as note_model
from .problems import Problems, reason
from .rows import Row, read_rows
from .span import WHOLE, Span

# A JSONL job this small keeps its checked items in memory for its walks: about 10 times the file's
# size for plain lines (20,000 short prompts: 1.6 MB, 14 MB kept), 25 times at the worst (lines of
# empty JSON objects, each a 64-byte dict), so 50 MB at most.
KEEP_BYTES = 2 << 20


def walk(job: Job, problems: Problems | None, span: Span = WHOLE) -> Iterator[Item]:
    """Every item of the job in input order (those in `span`). With `problems`,
    lines and rows from files are checked too, and the bad ones reported and left out; without,
    the job is taken as checked."""
    if job.items is not None and problems is None and span == WHOLE:
        yield from job.items
        return
    if job.fmt == "jsonl":
        yield from _jsonl_items(job, problems, span)
        return
    for task in job.tasks:
        name = _namer(task)
        for n, item in enumerate(task.items, 1):
            path = ("tasks", task.index, "items", n - 1)
            yield Item(str(job.path or "<job>"), None, path, task, item, name(item, n))
        if task.items_from is not None:
            yield from _file_items(task, len(task.items), problems, name)
        if task.items_glob is not None:
            offset = len(task.items) + span.start
            yield from glob_items(task, str(job.path or "<job>"), problems, name, offset, span.files)


def _namer(task: Task) -> Callable[[Any, int], str]:
    """How the task names its n-th item: its id, its task's id template, else its place; but a
    conversation without an id by what it says (its turns' answers make each turn's history, so a
    chain is matched whole, never by a place another conversation may take), the k-th of
    identical ones `~k`."""
    if task.type != "conversation" or task.id_template is not None:
        return lambda fields, n: item_id(fields, f"{task.label}:{n}", task.id_template)
    seen: dict[str, int] = {}

    def name(fields: Any, n: int) -> str:
        if not isinstance(fields, Mapping) or "id" in fields:
            return item_id(fields, f"{task.label}:{n}")
        said = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str)
        digest = hashlib.blake2b(said, digest_size=6).hexdigest()
        seen[digest] = k = seen.get(digest, 0) + 1
        return f"{task.label}:{digest}" + (f"~{k}" if k > 1 else "")

    return name


def _jsonl_items(job: Job, problems: Problems | None, span: Span) -> Iterator[Item]:
    assert job.path is not None
    name = str(job.path)
    tasks: dict[tuple[str, str], Task] = {}
    # Bytes, each line decoded by orjson: a line that is not UTF-8 is that line's problem, not the
    # file's, and a part of the file can start at any line.
    with job.path.open("rb") as lines:
        lines.seek(span.start)
        left = None if span.end is None else span.end - span.start
        number = span.first_line - 1
        for raw in lines:
            if left is not None:
                if left <= 0:
                    break
                left -= len(raw)
            # a lone CR ends a line too (old Mac files), as reading the file as text took it
            lone_cr = b"\r" in raw and b"\r" in raw.rstrip(b"\r\n")  # the first test is all most lines pay
            for piece in raw.splitlines() if lone_cr else (raw,):
                number += 1
                if number == 1 and piece.startswith(codecs.BOM_UTF8):
                    piece = piece[len(codecs.BOM_UTF8) :]
                item = _jsonl_item(job, name, number, piece, problems, tasks)
                if item is not None:
                    yield item


def _jsonl_item(
    job: Job, name: str, number: int, raw: bytes, problems: Problems | None, tasks: dict[tuple[str, str], Task]
) -> Item | None:
    """The item on line `number`, or None for a blank line or one with problems (reported)."""
    if not raw.strip():
        return None
    try:
        line = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if problems is not None:
            problems.add(_not_json(raw, exc), file=name, line=number)
        return None
    if not isinstance(line, dict):
        if problems is not None:
            what = type(line).__name__.replace("str", "text").replace("dict", "object")
            problems.add(f"a line must be a JSON object, not {what}", file=name, line=number)
        return None
    definition = "batch_line" if "custom_id" in line else "line"
    if problems is not None and _reported(problems, name, number, line, definition, _may_be_deep(raw)):
        return None
    key, fields = _jsonl_fields(line, definition)
    if key not in tasks:
        tasks[key] = _jsonl_task(job, key, len(tasks))
    return Item(name, number, (), tasks[key], fields, item_id(fields, f"line{number}"))


def _not_json(raw: bytes, exc: orjson.JSONDecodeError) -> str:
    found = notext.find(notext.decoded(raw))  # a bad byte or a NUL, at its column (and field)
    return found.message if found is not None else f"invalid JSON: {exc.msg} (column {exc.colno})"


def _may_be_deep(raw: bytes) -> bool:
    # orjson has refused NaN, infinity and keys that are not text: only depth is left to check,
    # and a line with fewer brackets (or even characters) than MAX_DEPTH cannot be too deep.
    return len(raw) >= MAX_DEPTH and raw.count(b"[") + raw.count(b"{") >= MAX_DEPTH


def _jsonl_fields(line: dict[str, Any], definition: str) -> tuple[tuple[str, str], dict[str, Any]]:
    """(type, task label) and the item's fields, from a Batch API line or one of our own."""
    if definition == "batch_line":
        return (BATCH_URLS[line["url"]], "batch"), {"id": line["custom_id"], "body": line["body"]}
    kind = line["type"]
    return (kind, line.get("task") or kind), {k: v for k, v in line.items() if k not in ("type", "task")}


def _jsonl_task(job: Job, key: tuple[str, str], index: int) -> Task:
    kind, label = key
    return Task(
        label=label if label != "batch" else kind,
        type=kind,
        index=index,
        options={},
        params=defaults_for(kind, job.defaults),
        provider=job.provider,
        base_dir=job.base_dir,
    )


def _file_items(task: Task, offset: int, problems: Problems | None, name: Callable[[Any, int], str]) -> Iterator[Item]:
    path = task.items_from
    assert path is not None
    templated = task.options.get("template") or (task.type == "conversation" and task.options.get("turns"))
    definition = "templated_item" if templated else f"{task.type}_item"
    try:
        for n, (line, row) in enumerate(read_rows(path, task.items_encoding, task.items_named), offset + 1):
            if problems is not None and _reported(problems, str(path), line, row, definition, keep=task.keep):
                continue
            if not isinstance(row, str):  # a str is a row that could not be read, reported above
                yield Item(str(path), line, (), task, row, name(row, n))
    except (OSError, UnicodeDecodeError, ValueError, csv.Error) as exc:
        if problems is None:
            raise
        # named where the job file names it (its line), the data file in the message
        where = ("tasks", task.index, "items_from")
        problems.add(f"cannot read items_from {path}: {reason(exc)}", line=problems.line_of(where), path=where)


def _reported(
    problems: Problems,
    file: str,
    line: int,
    row: Row,
    definition: str,
    check_json: bool = True,
    keep: tuple[str, ...] | None = None,
) -> bool:
    """Whether the row has problems, which are then reported: what reading it found (a message
    instead of the row), what JSON cannot carry (the schema validators cannot take it), or else
    the schema's."""
    if isinstance(row, str):
        found: list[tuple[schema.JsonPath, str]] = [((), row)]
    else:
        checked = _unkept(row, keep)
        found = (check_json and schema.json_problems(row, MAX_DEPTH)) or (
            [] if schema.valid(checked, definition) else list(schema.errors(checked, definition))
        )
        if keep is not None:  # the fields a task keeps are no unknown keys; with keep: all (()), none is
            found = [(p, m) for p, m in found if not schema.kept_key(p, m, keep or "all")]
    for path, message in found:
        if path and definition != "batch_line":  # a line's type is its own; a row's, its task's
            kind = row.get("type") if isinstance(row, dict) and definition == "line" else definition[: -len("_item")]
            message = refused_key(str(kind), str(path[-1]), message)
        problems.add(message, file=file, line=line, path=path)
    return bool(found)


def _unkept(row: dict[str, Any], keep: tuple[str, ...] | None) -> dict[str, Any]:
    """The row as the schema checks it: without the fields the task keeps that the schema knows
    nowhere. Each would only be an unknown key that `keep` then forgives, after a search for the
    key it may have meant: a wide CSV's thousands of columns, on every row."""
    if keep is None:
        return row
    known = schema.known_keys()
    return {k: v for k, v in row.items() if k in known or (keep and k not in keep)}


def check_items(job: Job, problems: Problems) -> tuple[int, tuple[Item, ...] | None, AbstractSet[int]]:
    """The rules a schema cannot say: a model and a target language are set, template fields exist,
    ids are unique. Returns the number of result rows (items, and each conversation's turns), the
    items, if the job is a JSONL file under KEEP_BYTES (Job.items), and the rows' ids (Job.ids)."""
    check = ItemCheck(problems)
    kept: list[Item] | None = [] if job.fmt == "jsonl" and _small(job) else None
    for item in walk(job, problems):
        check(item)
        if kept is not None:
            kept.append(item)
        if problems.full:
            break
    return check.rows, None if kept is None else tuple(kept), check.seen


def _small(job: Job) -> bool:
    try:
        return job.path is not None and job.path.stat().st_size < KEEP_BYTES
    except OSError:  # the walk says why it cannot read the file
        return False


class ItemCheck:
    """check_items one item at a time, for a walk that also builds (a dry run checks and estimates
    in one pass). Ids are kept as their 64-bit hash() so a million items cost a few tens of MB; two
    ids that share one (about one chance in 10^7 for a million) are reported as a duplicate. A
    forked process hashes as its parent does, so their hashes compare (estimate._halves)."""

    def __init__(self, problems: Problems) -> None:
        self.problems = problems
        self.seen: set[int] = set()
        self.elsewhere = 0  # rows another part of the job counted (another process's half), none of them in `seen`
        self.stopped = False  # a walk (jobs.requests) ended at an item past MAX_PROBLEMS, as every walk does
        self._templates: dict[int, list[str]] = {}
        self._fills: dict[int, bool] = {}
        self.said: set[tuple[schema.JsonPath, str]] = set()  # a task's inputs' problems, said once
        self.attached: tuple[Item | None, tuple[Attachment, ...]] = (None, ())  # the last item's, for its request

    @property
    def models(self) -> Collection[str]:
        """The models the items checked so far name (models.py warns of those without a price)."""
        return self.problems.models.keys()

    @property
    def rows(self) -> int:
        return len(self.seen) + self.elsewhere

    def __call__(self, item: Item) -> bool:
        """Whether the item is sound: its problems, if any, are added."""
        problems, fields = self.problems, item.fields
        if not isinstance(fields, dict):
            return False
        line = item.line or problems.line_of(item.path)
        before, lacked = problems.count, problems.lacked
        count = len(fields.get("turns") or item.task.options.get("turns") or ())
        # a conversation's rows are its turns, `<id>#<n>`: those are the ids that must be unique
        names = [f"{item.id}#{n}" for n in range(1, count + 1)] if item.task.type == "conversation" else [item.id]
        for name in names:
            digest = hash(name)
            if digest in self.seen and fields.get("id", "") is not None:  # None: an id already reported
                message = f"duplicate id '{name}': ids must be unique within the job"
                problems.add(message, file=item.file, line=line, path=item.path)
            self.seen.add(digest)
        if item.path and problems.bad_under(item.path):
            return False  # the schema already said what is wrong with this item
        note_model(item, problems, line)
        for message in _item_problems(item, self._templates):
            problems.add(message, file=item.file, line=line, path=item.path)
        if "body" not in fields and self._templated(item.task):
            problems.gaps.checked(item)
            for where, name in lacking(item, self._templates.get(item.task.index)):
                problems.lacks(item, where, name, line)
        if "body" not in fields and wants_inputs(item.task, fields):
            self.attached = (item, checked_inputs(item, problems, line, self.said))
        return problems.count == before and problems.lacked == lacked

    def _templated(self, task: Task) -> bool:
        """Whether the task fills its items' fields into anything: its template, turns, id or inputs."""
        if task.index not in self._fills:
            options = task.options
            inputs = any("{" in str(options.get(key, "")) for key in INPUT_KEYS)
            self._fills[task.index] = bool(
                task.id_template or options.get("template") or options.get("turns") or inputs
            )
        return self._fills[task.index]


def _item_problems(item: Item, templates: dict[int, list[str]]) -> Iterator[str]:
    fields, task, task_type = item.fields, item.task, TASKS[item.task.type]
    if "body" in fields:
        return
    # the model merge_params would pick: the item's, else the task's (with the defaults')
    if not (fields["model"] if "model" in fields else task.params.get("model")):
        where = "defaults, the task or the item (or --model)" if task_type.chat_family else "the task or the item"
        yield f"no model: set `model` in {where}"
    if task.type == "translate" and not (fields.get("target_lang") or task.options.get("target_lang")):
        yield "no target language: set `target_lang` on the task or the item"
    if task_type.file_field and not task.upload_path(fields[task_type.file_field]).is_file():
        yield f"no such file: {fields[task_type.file_field]} (paths are relative to the job file)"
    if task.id_template is not None:
        yield from _id_problems(task.id_template, fields)
    template = task.options.get("template")
    if template:
        _parse_template(task, template, templates)
    yield from _keep_problems(task, fields)
    if "schema" in fields:
        yield from _item_schema_problems(task, fields)
    if task.type == "conversation":
        yield from _turn_problems(task, fields)


def _id_problems(template: str, fields: Mapping[str, Any]) -> Iterator[str]:
    """The task's id template can name this item (its own `id` field needs none)."""
    if "id" in fields:
        return
    needs = id_fields(template) or ()  # a template of anything else left its task out (definition.py)
    if all(name in fields for name in needs) and not fill(template, fields).strip():
        yield f"id: {template!r} gives this item an empty id"


def _item_schema_problems(task: Task, fields: Mapping[str, Any]) -> Iterator[str]:
    """An item's own schema breaks strict mode, or its file cannot be read (at the item's line)."""
    given = fields["schema"]
    where = ""
    if isinstance(given, str):
        path = task.upload_path(given)
        where = f" in {given}"
        try:
            given = structured.schema_file(str(path))
        except (OSError, ValueError) as exc:
            yield f"schema: cannot read {given}: {reason(exc)}"
            return
    for pointer, message in structured.strict_problems(given):
        yield f"schema{where}: {message} (at /{'/'.join(str(p) for p in pointer)})"


def _turn_problems(task: Task, fields: Mapping[str, Any]) -> Iterator[str]:
    """A conversation has turns (its own, or the task's, whose {fields} it must have)."""
    if fields.get("turns"):
        return
    if not task.options.get("turns"):
        yield "no turns: set `turns` on the item or the task"


def _keep_problems(task: Task, fields: Mapping[str, Any]) -> Iterator[str]:
    """Each kept field is in the item; with `keep: all`, none takes a result column's name."""
    if task.keep is None:
        return
    if task.keep:
        return  # a kept field an item lacks (an empty CSV cell) is an empty cell
    taken = (set(RESULT_COLUMNS) | RESERVED_COLUMNS) - {"id"}
    if task.columns and task.output_schema is not None:  # the answer's fields are columns too
        taken |= set(task.output_schema.get("properties") or ())
    clashing = sorted(name for name in fields if name in taken)
    if clashing:
        names = ", ".join(repr(c) for c in clashing)
        yield f"keep: all would copy {names}, which results have already; list the fields to keep"


def _parse_template(task: Task, template: str, templates: dict[int, list[str]]) -> None:
    """The task's template's fields, parsed once (a template of anything but plain fields has
    left its task out already, definition._check_templates; the fields an item lacks are gaps.py's)."""
    if task.index not in templates:
        templates[task.index] = template_fields(template)
