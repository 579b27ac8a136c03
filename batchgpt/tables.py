"""Tables in and out: results and reports written as CSV, JSONL or Parquet, and Parquet item files
read. The only module that imports pandas and pyarrow.

Rows arrive as an iterator and are written in chunks, so memory stays flat however many items a
job has. Every file goes through files.atomic_write: a reader (or a cron job downstream) never
sees half a file, a failed write leaves the old file whole, and an OSError while writing is an
OutputError naming the file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from .errors import OutputError
from .files import atomic_write
from .records import GROUP_COLUMNS
from .records import RESULT_COLUMNS as RECORD_COLUMNS
from .words import command

if TYPE_CHECKING:
    from .store import Store

RESULT_COLUMNS = ["job", *RECORD_COLUMNS]  # a results file names its job in every row
REPORT_COLUMNS = [*GROUP_COLUMNS[:-2], "total_tokens", *GROUP_COLUMNS[-2:]]  # the store's sums, and total tokens
_INTS = ("prompt_tokens", "completion_tokens", "attempts", "cached_tokens", "reasoning_tokens", "reasks", "turn")
CHUNK = 5000


def _frame(rows: list[Mapping[str, Any]], columns: list[str], ints: Sequence[str] = ()) -> pd.DataFrame:
    frame: pd.DataFrame = pd.DataFrame.from_records(rows, columns=columns)
    for column in (*_INTS, *ints):
        if column in frame:
            frame[column] = frame[column].astype("Int64")
    return frame


def _text_output(value: Any) -> Any:
    """CSV and Parquet cells hold text: structured outputs (vectors, scores) become JSON."""
    return value if value is None or isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def write_results(path: Path, rows: Iterable[Mapping[str, Any]], job: str, kept: Sequence[tuple[str, str]] = ()) -> int:
    """Write result rows; `kept` names the item fields copied into them (store.kept_columns), which
    follow the result columns, each typed in Parquet as its values allow."""
    suffix = path.suffix.lower()
    records = _flat(job, rows)
    kept_names = [name for name, kind in kept if kind == "mixed"]  # lists, objects: JSON text in CSV
    columns = RESULT_COLUMNS + [name for name, _ in kept]
    count = 0
    if suffix == ".jsonl":
        with atomic_write(path) as handle:
            for record in records:
                handle.write(json.dumps({c: _jsonable(record.get(c)) for c in columns}, ensure_ascii=False))
                handle.write("\n")
                count += 1
        return count
    if suffix == ".csv":
        with atomic_write(path) as handle:
            first = True
            for chunk in _chunks(records):
                frame = _frame(
                    [{**r, **{c: _text_output(r.get(c)) for c in ("output", "details", *kept_names)}} for r in chunk],
                    columns,
                    [name for name, kind in kept if kind == "integer"],
                )
                frame.to_csv(handle, header=first, index=False)
                first, count = False, count + len(chunk)
            if first:
                _frame([], columns).to_csv(handle, index=False)
        return count
    if suffix == ".parquet":
        return _write_parquet(path, records, kept)
    raise ValueError(f"unsupported results suffix {suffix!r}")


def _flat(job: str, rows: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
    """Rows as written: the job's name first, the kept fields as columns of their own."""
    for row in rows:
        record = {"job": job, **row}
        record.update(record.pop("kept", None) or {})
        yield record


def _write_parquet(path: Path, records: Iterator[Mapping[str, Any]], kept: Sequence[tuple[str, str]]) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    vector = pa.list_(pa.float64())
    fields: list[Any] = [
        pa.field(
            c, pa.int64() if c in _INTS else pa.float64() if c in ("cost_usd", "latency_s", "ttft_s") else pa.string()
        )
        for c in RESULT_COLUMNS
    ]
    fields.append(pa.field("vector", vector))
    types = {"integer": pa.int64(), "real": pa.float64(), "boolean": pa.bool_(), "text": pa.string()}
    fields += [pa.field(name, types.get(kind, pa.string())) for name, kind in kept]
    schema = pa.schema(fields)
    mixed = [name for name, kind in kept if kind not in types]  # values of several types: JSON text
    count = 0
    with atomic_write(path, "wb") as handle, pq.ParquetWriter(handle, schema) as writer:
        for chunk in _chunks(records):
            columns = {c: [r.get(c) for r in chunk] for c in RESULT_COLUMNS + [name for name, _ in kept]}
            for name in mixed:
                columns[name] = [None if v is None else json.dumps(v, ensure_ascii=False) for v in columns[name]]
            # A vector (an embedding) goes in its own list column; `output` keeps text for every type.
            columns["vector"] = [r["output"] if _is_vector(r.get("output")) else None for r in chunk]
            columns["output"] = [None if _is_vector(v) else _text_output(v) for v in columns["output"]]
            columns["details"] = [_text_output(v) for v in columns["details"]]
            writer.write_table(pa.Table.from_pydict(columns, schema=schema))
            count += len(chunk)
        if count == 0:
            writer.write_table(schema.empty_table())
    return count


def _is_vector(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and isinstance(value[0], (int, float))


def report_rows(groups: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The per-task-and-model rows with total_tokens, and a TOTAL row whose cost is empty when any
    group's cost is unknown."""
    rows = [{**g, "total_tokens": (g["prompt_tokens"] or 0) + (g["completion_tokens"] or 0)} for g in groups]
    total: dict[str, Any] = {"task": "TOTAL", "model": "", "mode": ""}
    for column in ("requests", "succeeded", "failed", "skipped", "prompt_tokens", "completion_tokens", "total_tokens"):
        total[column] = sum(r[column] or 0 for r in rows)
    for column in ("cost_usd", "cost_usd_this_run"):
        costs = [r.get(column) for r in rows]
        total[column] = None if any(c is None for c in costs) else sum(costs)
        for row in rows + [total]:
            row[column] = None if row.get(column) is None else round(row[column], 10)
    return rows + [total]


def write_table(path: Path, rows: Sequence[Mapping[str, Any]], columns: list[str]) -> None:
    """A small table (a report or an estimate) as CSV or Parquet."""
    frame = _frame(list(rows), columns)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with atomic_write(path) as handle:
            frame.to_csv(handle, index=False)
    elif suffix == ".parquet":
        with atomic_write(path, "wb") as handle:
            frame.to_parquet(handle, index=False)
    else:
        raise ValueError(f"unsupported report suffix {suffix!r}")


def dataframe(rows: Iterable[Mapping[str, Any]], job: str, kept: Sequence[tuple[str, str]] = ()) -> pd.DataFrame:
    names = [name for name, _ in kept]
    return _frame(list(_flat(job, rows)), RESULT_COLUMNS + names, [n for n, kind in kept if kind == "integer"])


def _chunks(records: Iterator[Mapping[str, Any]]) -> Iterator[list[Mapping[str, Any]]]:
    while chunk := list(islice(records, CHUNK)):
        yield chunk


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def parquet_rows(path: Path, batch_size: int = 4096) -> Iterator[dict[str, Any]]:
    """The rows of a Parquet file (an items_from file), streamed a batch at a time."""
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size):
        yield from batch.to_pylist()


def export(store: Store, job: str, run_id: int, results: Path, report_path: Path) -> None:
    """Write a run's results and report from the store (atomically, so never half a file)."""
    try:
        write_results(results, store.results(job, run_id), job, store.kept_columns(job, run_id))
        write_table(report_path, report_rows(store.groups(job, run_id)), REPORT_COLUMNS)
    except OutputError as exc:  # it names the file that failed, results or report
        again = command("export", run_id, state=store.directory)
        raise OutputError(
            f"{exc}. The answers are safe in the store: `{again} --out PATH` writes them elsewhere"
        ) from None
