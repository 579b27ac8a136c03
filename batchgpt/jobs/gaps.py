"""Fields a task's templates name that its items lack: one problem per cause, not one per row.

A template (`{questoin}`), a conversation's turns or an id (`id: "{sku}"`, `id_column`) naming a
field the rows do not have is one mistake, made once, in the job file: it is reported there, at
the template's line, once, with how many rows lack the field, the first of them, and the name it
was probably meant to be. A field only some rows lack (a sparse JSONL file, empty CSV cells) is
one problem too, which says how many of the rows lack it.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from batchgpt.errors import Problem
from batchgpt.schema import JsonPath, pointer
from batchgpt.tasks.base import FIELD_NAME
from batchgpt.words import count

from .job import Item, Task, id_fields

SUGGEST_FROM = 20  # the rows whose fields are searched for the name meant: the first few are enough
_TURN_FIELD = re.compile(rf"\{{({FIELD_NAME})\}}")


def lacking(item: Item, template: list[str] | None) -> Iterator[tuple[JsonPath, str]]:
    """(the task option that names it, the field) for each field the item lacks: of its task's id
    template, `template` (the task's template's fields, parsed once by the caller) and turns."""
    task, fields = item.task, item.fields
    where: JsonPath = ("tasks", task.index)
    if task.id_template is not None and "id" not in fields:
        needs = id_fields(task.id_template) or ()  # a template of anything else is a problem of its own
        yield from (((*where, "id"), name) for name in dict.fromkeys(needs) if name not in fields)
    for name in dict.fromkeys(template or ()):
        if name not in fields:
            yield (*where, "template"), name
    turns = task.options.get("turns")
    if task.type == "conversation" and turns and not fields.get("turns"):
        wanted = dict.fromkeys(m for turn in turns for m in _TURN_FIELD.findall(str(turn)))
        yield from (((*where, "turns"), name) for name in wanted if name not in fields)


@dataclass
class Gap:
    """The rows of one source that lack one field a task's option names."""

    task: int
    kind: str  # where the items come from: "data" (a data file), "items" (the task's own), "glob"
    source: str  # the data file as the job names it, or the glob
    first: str  # where the first of them is: "line 2", "photos/a.jpg"
    rows: int = 0
    keys: set[str] = field(default_factory=set)  # the fields the first of them have


GapKey = tuple[JsonPath, str, str]  # the option naming the field, the field, the source's key


class Gaps:
    """The fields items lack, grouped by cause, and how many rows of each source were checked."""

    def __init__(self) -> None:
        self.found: dict[GapKey, Gap] = {}
        self.rows: Counter[tuple[int, str]] = Counter()  # (task, source) -> rows checked

    def checked(self, item: Item) -> None:
        """One more row of the item's source was checked."""
        self.rows[item.task.index, _source_key(item)] += 1

    def add(self, item: Item, where: JsonPath, name: str, line: int | None) -> bool:
        """The item lacks `name`, which `where` names; whether that is a cause not seen before."""
        key = (where, name, _source_key(item))
        gap = self.found.get(key)
        new = gap is None
        if gap is None:
            gap = self.found[key] = _gap(item, line)
        gap.rows += 1
        if gap.rows <= SUGGEST_FROM and isinstance(item.fields, Mapping):
            gap.keys.update(str(k) for k in item.fields)
        return new

    def merge(self, other: Gaps) -> int:
        """Add what a walk of a later part of the job found; returns the causes both found."""
        both = 0
        for key, theirs in other.found.items():
            ours = self.found.get(key)
            if ours is None:
                self.found[key] = theirs
                continue
            both += 1
            ours.rows += theirs.rows
            ours.keys |= theirs.keys
        self.rows.update(other.rows)
        return both

    def problems(
        self, file: str, lines: Mapping[JsonPath, int], line_of: Callable[[JsonPath], int | None]
    ) -> list[Problem]:
        """One problem per cause, at the line of the option that names the field (`lines`: where
        the job file's keys are)."""
        found = []
        for (where, name, source), gap in self.found.items():
            if where[-1] == "id" and (*where[:-1], "id_column") in lines:
                where = (*where[:-1], "id_column")  # the task's id given as `id_column: sku`
            message = _message(name, gap, self.rows[gap.task, source])
            found.append(Problem(file, line_of(where), message, pointer(where)))
        return found


def _source_key(item: Item) -> str:
    """What tells an item's source apart: its data file, its task's glob, or its task's own items."""
    if item.line is not None:
        return item.file
    return item.task.items_glob or "" if len(item.path) == 3 else ""


def _gap(item: Item, line: int | None) -> Gap:
    task = item.task
    if item.line is not None:
        return Gap(task.index, "data", _shown(item.file, task), f"line {item.line}")
    if len(item.path) == 3:  # a file a glob matched: items_from is its path
        return Gap(task.index, "glob", str(task.items_glob), str(item.fields.get("path")))
    return Gap(task.index, "items", "", f"line {line}" if line else f"item {item.id!r}")


def _shown(file: str, task: Task) -> str:
    """A data file as the job names it: relative to the job file's folder, where it is in it."""
    try:
        return str(Path(file).relative_to(task.base_dir))
    except ValueError:
        return file


def _message(name: str, gap: Gap, rows: int) -> str:
    """What is wrong, in the words of the source: a data file's rows, the task's items, a glob's files."""
    lack = f"{count(gap.rows, 'item' if gap.kind == 'items' else 'row')} {'lacks' if gap.rows == 1 else 'lack'} it"
    first = f"at {gap.first}" if gap.rows == 1 else f"the first at {gap.first}"
    if gap.kind == "glob":  # every file lacks it alike
        meant = _nearest(name, gap.keys)
        hint = f"; did you mean `{meant}`?" if meant else ""
        return f"field `{name}` not in the items of {gap.source!r} (a file's item has `path` and `name` only{hint})"
    if gap.rows >= rows:  # no item has it: a misspelt name, most likely
        meant = _nearest(name, gap.keys)
        hint = f" (did you mean `{meant}`?)" if meant else ""
        where = gap.source if gap.kind == "data" else "the task's items"
        return f"field `{name}` not in {where}{hint}: {lack}, {first}"
    csv = gap.kind == "data" and gap.source.lower().endswith(".csv")  # a CSV row lacks a field by an empty cell
    meant = None if csv else _nearest(name, gap.keys)
    hint = f" (do they have it as `{meant}`?)" if meant else ""
    of = f"{count(rows, 'row')} of {gap.source}" if gap.kind == "data" else f"the task's {count(rows, 'item')}"
    return f"field `{name}` {'empty in' if csv else 'missing from'} {gap.rows:,} of {of}, {first}{hint}"


def _nearest(name: str, keys: Iterable[str]) -> str | None:
    """The field `name` was probably meant to be. Below difflib's usual 0.6, so that a short name
    with a letter wrong (`skew` for `sku`, 0.57) still finds it; the message asks, never assumes."""
    close = difflib.get_close_matches(name, sorted(set(keys) - {name}), n=1, cutoff=0.5)
    return close[0] if close else None
