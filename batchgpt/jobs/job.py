"""The records a job is made of (Overrides, Job, Task, Item), and how request parameters layer.

Every other module of the package passes these between its steps; none of them does I/O here.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, make_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchgpt import settings
from batchgpt.records import Limits, Provider, quick
from batchgpt.schema import JsonPath
from batchgpt.tasks import TASKS, fill, template_fields

PARAM_KEYS = frozenset(
    {"model", "temperature", "top_p", "max_tokens", "stop", "stream", "expected_output_tokens", "params"}
)


def _overrides_class() -> type:
    """`Overrides`: a frozen dataclass with a field, None by default, for each setting the job
    schema gives an `x-option` (batchgpt.settings), named as the option is: out, report, base_url,
    model, concurrency, rpm, tpm, max_retries, timeout, budget, shared_limits, mode. A new
    override is its declaration in the schema, and nothing here."""
    names = [s.option.name for s in settings.overrides() if s.option]
    made = make_dataclass("Overrides", [(name, Any, None) for name in names], frozen=True)
    made.__module__ = __name__
    made.__doc__ = "Command-line settings; each one set wins over the job file (see _overrides_class)."
    return made


if TYPE_CHECKING:  # what mypy sees of it: any setting's option name, as a keyword and an attribute

    @dataclass(frozen=True)
    class Overrides:
        """Command-line settings; each one set wins over the job file (see _overrides_class)."""

        def __init__(self, **values: Any) -> None: ...
        def __getattr__(self, name: str) -> Any: ...

else:
    Overrides = _overrides_class()


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
    items_encoding: str | None = None  # items_from's `encoding:`; None: UTF-8, with a BOM or not
    items_glob: str | None = None  # items_from as a glob (photos/*.jpg): a file an item, attached
    base_dir: Path = Path(".")  # where paths in items (audio files) are relative to: the job file's folder
    keep: tuple[str, ...] | None = None  # item fields copied into result rows; None: none; (): all
    output_schema: Mapping[str, Any] | None = None  # structured outputs: the JSON Schema answers match
    schema_name: str = "output"
    reask: int = 2  # times an answer that does not match is asked again
    columns: bool = False  # each top-level field of a structured answer as a result column
    id_template: str | None = None  # `id:` (or `id_column: c`, as "{c}"): each item's id from its fields

    @property
    def items_named(self) -> str:
        """The items_from file as the job names it (relative to the job file's folder), for messages."""
        path = self.items_from or Path()
        return str(path.relative_to(self.base_dir) if path.is_relative_to(self.base_dir) else path)

    def upload_path(self, name: str) -> Path:
        """A file named in an item, relative to the job file."""
        path = Path(name)
        return path if path.is_absolute() else self.base_dir / path


@dataclass(frozen=True)
class KeyVariable:
    """A key variable a job file names (`provider.api_key_env`), and where: a run needs it set."""

    name: str
    file: str
    line: int | None
    path: JsonPath


@dataclass(frozen=True)
class Job:
    name: str
    path: Path | None  # None for a job given as a dict
    fmt: str  # yaml | jsonl
    provider: Provider
    limits: Limits
    results: Path
    report: Path
    bom: bool = False  # CSV files written as utf-8-sig, which Excel reads as UTF-8 (output.bom)
    pricing: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    budget_usd: float | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)
    tasks: tuple[Task, ...] = ()
    count: int = 0  # items, known once the job is validated
    mode: str = "online"  # online | batch: sent now, or through the Batch API
    # The items `load` checked, when a JSONL job is small enough to keep them (items.KEEP_BYTES):
    # its walks then take them as checked, instead of reading and parsing the file again.
    items: tuple[Item, ...] | None = field(default=None, repr=False, compare=False)
    # Every result row's id, as its hash() (a million cost tens of MB, not hundreds), once `load`
    # has checked them: a run's store leaves a row under one of them to its own item.
    ids: AbstractSet[int] | None = field(default=None, repr=False, compare=False)
    key_variables: tuple[KeyVariable, ...] = ()  # those the job file names, which a run needs set
    # The models it names that have no known price, warned of where it names them as it was
    # checked (models.py): its pricing counts them as unknown without saying so again.
    unpriced: tuple[str, ...] = ()

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path else Path.cwd()


@quick
@dataclass(frozen=True)
class Item:
    """One item on its way from a source to a request, with where it came from."""

    file: str
    line: int | None
    path: JsonPath  # inside the job file; () for rows of a data file or JSONL lines
    task: Task
    fields: Mapping[str, Any]  # unchecked until load has accepted the job: may be any JSON value
    id: str


def item_id(fields: Mapping[str, Any], default: str, template: str | None = None) -> str:
    """The item's own id, else its task's id template filled from its fields, else its place
    (`task:n`, `lineN`). An item without an id is matched to its stored answer by its request, so a
    place that moves costs nothing (store.Store.enrol)."""
    # an item that is no mapping (`items: [5]`) is the schema's to report; it still needs a name here
    if type(fields) is not dict and not isinstance(fields, Mapping):  # the ABC's check costs more
        return default
    if "id" in fields:
        return str(fields["id"])
    needs = None if template is None else id_fields(template)
    if needs is not None and all(name in fields for name in needs):
        return fill(template or "", fields)
    return default  # a field the template needs is missing: the item checks say so


@functools.lru_cache(maxsize=16)
def id_fields(template: str) -> tuple[str, ...] | None:
    """The fields an id template needs; None for a template that is not plain {field}s."""
    try:
        return tuple(template_fields(template))
    except ValueError:
        return None


def defaults_for(kind: str, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """`defaults` are chat request parameters; the other endpoints take none of them, and a model
    of their own (the type's default unless the task or the item names one)."""
    task_type = TASKS.get(kind)
    if task_type is None or task_type.chat_family:
        return dict(defaults)
    return {"model": task_type.default_model} if task_type.default_model else {}


def merge_params(base: Mapping[str, Any], layer: Mapping[str, Any]) -> dict[str, Any]:
    """`layer`'s request parameters over `base`'s; `params` (extra body keys) merge key by key."""
    merged = dict(base)
    for key in PARAM_KEYS & layer.keys():
        merged[key] = {**merged.get("params", {}), **layer[key]} if key == "params" else layer[key]
    return merged
