"""Tables in and out: results and reports written as CSV, JSONL or Parquet, and Parquet item files
read. The only module that imports pandas and pyarrow, and only for Parquet and DataFrames: CSV is
written with the csv module, so a run that writes CSV never pays pandas' 0.3 s import.

Rows arrive as an iterator and are written in chunks, so memory stays flat however many items a
job has. Every file goes through files.atomic_write: a reader (or a cron job downstream) never
sees half a file, a failed write leaves the old file whole, and an OSError while writing is an
OutputError naming the file. This module knows nothing of the store: tables.py asks the store for
the rows and hands them here.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import islice
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from .files import atomic_write
from .records import RESULT_COLUMNS as RECORD_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

RESULT_COLUMNS = ["job", *RECORD_COLUMNS]  # a results file names its job in every row
_INTS = ("prompt_tokens", "completion_tokens", "attempts", "cached_tokens", "reasoning_tokens", "reasks", "turn")
_REALS = ("cost_usd", "latency_s", "ttft_s", "cost_usd_this_run")
CHUNK = 5000


def _frame(rows: list[Mapping[str, Any]], columns: list[str], ints: Sequence[str] = ()) -> pd.DataFrame:
    import pandas as pd

    frame: pd.DataFrame = pd.DataFrame.from_records(rows, columns=columns)
    for column in (*_INTS, *ints):
        if column in frame:
            frame[column] = frame[column].astype("Int64")
    return frame


def text_output(value: Any) -> Any:
    """CSV and Parquet cells hold text: structured outputs (vectors, scores) become JSON."""
    return value if value is None or isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def write_results(
    path: Path, rows: Iterable[Mapping[str, Any]], job: str, kept: Sequence[tuple[str, str]] = (), bom: bool = False
) -> int:
    """Write result rows; `kept` names the item fields copied into them (store.kept_columns), which
    follow the result columns, each typed in Parquet as its values allow. `bom`: a CSV begins with
    a byte-order mark (see _write_rows)."""
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
        texts = ("output", "details", *kept_names)
        kinds = {**dict.fromkeys(_INTS, "int"), **dict.fromkeys(_REALS, "real")}
        kinds.update((name, _CSV_KINDS.get(kind, "")) for name, kind in kept)
        with atomic_write(path) as handle:
            return _write_csv(handle, (_as_text(r, texts) for r in records), columns, kinds, bom)
    if suffix == ".parquet":
        return _write_parquet(path, records, kept)
    raise ValueError(f"unsupported results suffix {suffix!r}")


# How a CSV cell shows a value, by column: as pandas writes a nullable integer, a float64 and an
# object column, so CSV files read the same as when pandas wrote them. An integer in a column of
# reals is written as a real ("5.0"), whatever else its chunk holds.
_CSV_KINDS = {"integer": "int", "real": "real"}


def _typed(value: Any, kind: type) -> Any:
    """A value for a typed column: an int as an integer, a real as a float, NaN as missing."""
    if kind is float:
        value = float(value)
        return None if math.isnan(value) else value
    return value if isinstance(value, bool) else int(value)


def _write_csv(
    handle: IO[str], records: Iterable[Mapping[str, Any]], columns: list[str], kinds: Mapping[str, str], bom: bool
) -> int:
    """Records as CSV, each value as pandas wrote it; `kinds`: the columns written as integers
    ("int") or reals ("real"), the others as they come (the csv module writes None empty and a
    float as its repr, as pandas does)."""
    typed = [(i, float if kinds[c] == "real" else int) for i, c in enumerate(columns) if kinds.get(c)]

    def cells(record: Mapping[str, Any]) -> list[Any]:
        row = [record.get(c) for c in columns]
        for i, kind in typed:
            value = row[i]
            if value is not None and (type(value) is not kind or value != value):  # value != value: NaN
                row[i] = _typed(value, kind)
        return row

    return _write_rows(handle, columns, map(cells, records), bom)


def write_cells(path: Path, rows: Iterable[Sequence[Any]], bom: bool = False) -> int:
    """Result rows already shaped as the CSV's cells, in RESULT_COLUMNS' order (tables.stored_cells
    makes them from the store's rows): what write_results writes for a run without kept fields,
    byte for byte, at a third of its cost."""
    with atomic_write(path) as handle:
        return _write_rows(handle, RESULT_COLUMNS, rows, bom)


def _write_rows(handle: IO[str], columns: Sequence[str], rows: Iterable[Sequence[Any]], bom: bool = False) -> int:
    """A header and rows as CSV with pandas' dialect (minimal quoting, "\n" line ends, empty for a
    missing value): every CSV file batchgpt writes goes through here. With `bom`, the file begins
    with a byte-order mark, as Excel needs to read it as UTF-8 (utf-8-sig). A file is always
    written whole (files.atomic_write), never appended to: a rerun's has the one mark, at its start."""
    if bom:
        handle.write("\ufeff")
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(columns)
    count = 0
    for row in rows:
        writer.writerow(row)
        count += 1
    return count


def _flat(job: str, rows: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
    """Rows as written (copies): the job's name first, the kept fields as columns of their own."""
    for row in rows:
        record = {"job": job, **row}
        kept = record.pop("kept", None)
        if kept:
            record.update(kept)
        yield record


def _as_text(record: dict[str, Any], columns: Sequence[str]) -> dict[str, Any]:
    """The record (a copy _flat made) with `columns` as text, in place."""
    for column in columns:
        value = record.get(column)
        if value is not None and not isinstance(value, str):
            record[column] = text_output(value)
    return record


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
            columns["output"] = [None if _is_vector(v) else text_output(v) for v in columns["output"]]
            columns["details"] = [text_output(v) for v in columns["details"]]
            writer.write_table(pa.Table.from_pydict(columns, schema=schema))
            count += len(chunk)
        if count == 0:
            writer.write_table(schema.empty_table())
    return count


def _is_vector(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and isinstance(value[0], (int, float))


def write_table(path: Path, rows: Sequence[Mapping[str, Any]], columns: list[str], bom: bool = False) -> None:
    """A small table (a report or an estimate) as CSV or Parquet."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with atomic_write(path) as handle:
            _write_csv(handle, rows, columns, {}, bom)
    elif suffix == ".parquet":
        with atomic_write(path, "wb") as handle:
            _frame(list(rows), columns).to_parquet(handle, index=False)
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
