"""Rows of items_from data files (CSV, JSONL, Parquet), streamed one at a time.

A row that cannot be read becomes a message in its place, so every bad row is reported at its
line and the rows after it are still read: a byte that is not UTF-8 or a NUL too (notext.py).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from batchgpt import notext
from batchgpt.words import count

from .bounds import MAX_DEPTH

if TYPE_CHECKING:
    from _csv import Reader as _CsvReader

MAX_CSV_CELL = 64 * 2**20  # far past any prompt an API takes; past it, a quote was left open
_CSV_NUMBERS = ("temperature", "top_p", "max_tokens", "expected_output_tokens")

Row = dict[str, Any] | str  # a message in place of a row that cannot be read


def read_rows(path: Path) -> Iterator[tuple[int, Row]]:
    """(line or row number, row) for each row of a CSV, JSONL or Parquet file; a message in place
    of a row that cannot be read."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        yield from _csv_rows(path)
    elif suffix == ".jsonl":
        yield from _jsonl_rows(path)
    elif suffix == ".parquet":
        from batchgpt.tablefiles import parquet_rows  # pyarrow's home

        for row, record in enumerate(parquet_rows(path), 1):
            yield row, {k: v for k, v in record.items() if v is not None}
    else:
        raise ValueError(f"unsupported file type '{suffix}'")


def _jsonl_rows(path: Path) -> Iterator[tuple[int, Row]]:
    with path.open(encoding="utf-8-sig", errors="surrogateescape") as handle:  # see notext.py
        for line, raw in enumerate(handle, 1):
            if raw.strip():
                yield line, _jsonl_row(raw)


def _jsonl_row(raw: str) -> Row:
    found = notext.find(raw) if notext.escaped(raw) else None  # json takes a bad byte's stand-in for text
    if found is not None:
        return found.message
    try:
        return json.loads(raw)  # type: ignore[no-any-return]
    except json.JSONDecodeError as exc:
        found = notext.find(raw)  # a NUL
        return found.message if found else f"invalid JSON: {exc.msg} (column {exc.colno})"
    except RecursionError:
        return f"nested more than {MAX_DEPTH} levels deep: refusing to read it"


def _csv_rows(path: Path) -> Iterator[tuple[int, Row]]:
    # The cell limit is process-wide; it is raised only while this file is read.
    previous = csv.field_size_limit(MAX_CSV_CELL)
    try:
        with path.open(newline="", encoding="utf-8-sig", errors="surrogateescape") as handle:  # see notext.py
            lines = (line.replace("\0", notext.NUL_IN_CSV) if "\0" in line else line for line in handle)
            yield from _csv_records(csv.reader(lines))
    finally:
        csv.field_size_limit(previous)


def _csv_records(reader: _CsvReader) -> Iterator[tuple[int, Row]]:
    try:
        header = next(reader, None) or []
        twice = sorted(name for name, seen in Counter(header).items() if name and seen > 1)  # in linear time
        if twice:
            yield (
                reader.line_num,
                f"the header names {', '.join(map(repr, twice))} twice: each column needs its own name",
            )
            return
        yield from _csv_body(reader, header)
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


def _csv_body(reader: _CsvReader, header: list[str]) -> Iterator[tuple[int, Row]]:
    line = reader.line_num + 1
    for cells in reader:
        if len(cells) > len(header):
            yield line, f"the row has {count(len(cells), 'cell')} but the header names {count(len(header), 'column')}"
        elif cells:
            # a short row leaves its last columns empty
            bad = None if all(map(str.isascii, cells)) else notext.in_cells(header, cells)
            yield line, bad or {k: _csv_value(k, v) for k, v in zip(header, cells, strict=False) if k and v}
        line = reader.line_num + 1


def _csv_value(key: str, value: str) -> Any:
    if key in _CSV_NUMBERS:
        try:
            return orjson.loads(value)  # strict JSON: NaN, Infinity and 1e999 stay text, for the schema to refuse
        except orjson.JSONDecodeError:
            return value
    return value
