"""Rows of items_from data files (CSV, JSONL, Parquet), streamed one at a time.

A row that cannot be read becomes a message in its place, so every bad row is reported at its
line and the rows after it are still read: a byte that is not UTF-8 or a NUL too (notext.py).
A CSV or JSONL file is UTF-8 (a BOM or none) unless items_from gives its `encoding`. One in
another encoding, not given, is one problem, not one a row: at its first row that is not UTF-8,
with how many more there are and the encoding it reads as (charsets.py).
"""

from __future__ import annotations

import codecs
import csv
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from batchgpt import notext
from batchgpt.words import count

from . import charsets
from .bounds import MAX_DEPTH

if TYPE_CHECKING:
    from _csv import Reader as _CsvReader

MAX_CSV_CELL = 64 * 2**20  # far past any prompt an API takes; past it, a quote was left open
_CSV_NUMBERS = ("temperature", "top_p", "max_tokens", "expected_output_tokens")

Row = dict[str, Any] | str  # a message in place of a row that cannot be read


@dataclass(frozen=True)
class _Text:
    """How a file's text is read: its codec, its name in messages, what a message advises for a
    byte it does not decode, and whether that byte starts a guess at the file's encoding."""

    codec: str
    label: str
    named: str  # the file, as the job names it
    advice: str
    guessing: bool


@dataclass(frozen=True)
class _Undecoded:
    """A row with a byte the file's encoding does not decode: the message (without its advice)
    and the row's bytes, a sample for the guess."""

    message: str
    raw: bytes


def read_rows(path: Path, encoding: str | None = None, named: str | None = None) -> Iterator[tuple[int, Row]]:
    """(line or row number, row) for each row of a CSV, JSONL or Parquet file; a message in place
    of a row that cannot be read. `encoding`: the one items_from gives (None: UTF-8); `named`: the
    file as the job names it, for the messages."""
    suffix = path.suffix.lower()
    text = _text(encoding, named or path.name)
    if suffix == ".csv":
        yield from _one_cause(path, _csv_rows(path, text), text)
    elif suffix == ".jsonl":
        yield from _one_cause(path, _jsonl_rows(path, text), text)
    elif suffix == ".parquet":
        from batchgpt.tablefiles import parquet_rows  # pyarrow's home

        for row, record in enumerate(parquet_rows(path), 1):
            yield row, {k: v for k, v in record.items() if v is not None}
    else:
        raise ValueError(f"unsupported file type '{suffix}'")


def _text(encoding: str | None, named: str) -> _Text:
    if encoding is None:
        advice = f"{notext.SAVE_AS_UTF8}, or give its encoding: `items_from: {{path: {named}, encoding: ...}}`"
        return _Text("utf-8-sig", "UTF-8", named, advice, True)
    codec = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding  # -sig: with a BOM or not
    return _Text(codec, encoding, named, f"is the file in {encoding}, as items_from says?", False)


_UTF8 = _text(None, "data.csv")  # how a CSV is read when nothing says otherwise


def _one_cause(path: Path, rows: Iterator[tuple[int, Row | _Undecoded]], text: _Text) -> Iterator[tuple[int, Row]]:
    """The rows, those not decoded said so: each at its line, but for a file that reads as another
    encoding, which is one problem, said at its first such row (after the others)."""
    guesses: list[charsets.Guess] | None = None if text.guessing else []
    first: tuple[int, _Undecoded] | None = None
    more = 0
    for line, row in rows:
        if not isinstance(row, _Undecoded):
            yield line, row
            continue
        if guesses is None:
            guesses = charsets.guess(_head(path) + b"\n" + row.raw)
        if not guesses:
            yield line, f"{row.message}; {text.advice}"
        elif first is None:
            first = line, row
        else:
            more += 1
    if first is not None and guesses:
        line, row = first
        others = f", as {'is' if more == 1 else 'are'} {count(more, 'more row')}" if more else ""
        read = "the file was read as UTF-8 (items_from gives no encoding)"
        yield line, f"{row.message}{others}; {read}, and {charsets.advice(guesses, text.named)}"


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(charsets.SAMPLE)
    except OSError:
        return b""


def _raw(text: str) -> bytes:
    """The bytes `text` was decoded from (UTF-8, with surrogateescape): the guess's sample."""
    return text.replace(notext.NUL_IN_CSV, "\0").encode("utf-8", "surrogateescape")


def _jsonl_rows(path: Path, text: _Text) -> Iterator[tuple[int, Row | _Undecoded]]:
    with path.open(encoding=text.codec, errors="surrogateescape") as handle:  # see notext.py
        for line, raw in enumerate(handle, 1):
            if raw.strip():
                yield line, _jsonl_row(raw, text)


def _jsonl_row(raw: str, text: _Text) -> Row | _Undecoded:
    if notext.escaped(raw) and notext.NOT_DECODED.search(raw):  # json takes a bad byte's stand-in for text
        found = notext.find(raw, notext.NOT_DECODED, text.label, "")
        assert found is not None
        return _Undecoded(found.message, _raw(raw) if text.guessing else b"")
    try:
        return json.loads(raw)  # type: ignore[no-any-return]
    except json.JSONDecodeError as exc:
        found = notext.find(raw)  # a NUL
        return found.message if found else f"invalid JSON: {exc.msg} (column {exc.colno})"
    except RecursionError:
        return f"nested more than {MAX_DEPTH} levels deep: refusing to read it"


def _csv_rows(path: Path, text: _Text) -> Iterator[tuple[int, Row | _Undecoded]]:
    # The cell limit is process-wide; it is raised only while this file is read.
    previous = csv.field_size_limit(MAX_CSV_CELL)
    try:
        with path.open(newline="", encoding=text.codec, errors="surrogateescape") as handle:  # see notext.py
            lines = (line.replace("\0", notext.NUL_IN_CSV) if "\0" in line else line for line in handle)
            yield from _csv_records(csv.reader(lines), text)
    finally:
        csv.field_size_limit(previous)


def _csv_records(reader: _CsvReader, text: _Text = _UTF8) -> Iterator[tuple[int, Row | _Undecoded]]:
    try:
        header = next(reader, None) or []
        bad = _undecoded(header, notext.in_header(header, text.label, ""), text)
        if bad is not None:  # every row's fields are named by it
            yield reader.line_num, bad
            return
        twice = sorted(name for name, seen in Counter(header).items() if name and seen > 1)  # in linear time
        if twice:
            yield (
                reader.line_num,
                f"the header names {', '.join(map(repr, twice))} twice: each column needs its own name",
            )
            return
        yield from _csv_body(reader, header, text)
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


def _csv_body(reader: _CsvReader, header: list[str], text: _Text) -> Iterator[tuple[int, Row | _Undecoded]]:
    line = reader.line_num + 1
    for cells in reader:
        if len(cells) > len(header):
            yield line, f"the row has {count(len(cells), 'cell')} but the header names {count(len(header), 'column')}"
        elif cells:
            # a short row leaves its last columns empty
            bad = (
                None
                if all(map(str.isascii, cells))
                else _undecoded(cells, notext.in_cells(header, cells, text.label, ""), text)
            )
            yield line, bad or {k: _csv_value(k, v) for k, v in zip(header, cells, strict=False) if k and v}
        line = reader.line_num + 1


def _undecoded(cells: list[str], message: str | None, text: _Text) -> str | _Undecoded | None:
    """A CSV row's (or header's) problem: a byte not decoded, with the row's bytes for a guess,
    or a NUL (its message said whole, with no advice to read it as another encoding)."""
    if message is None:
        return None
    if any(notext.NOT_DECODED.search(cell) for cell in cells):
        return _Undecoded(message, _raw(",".join(cells)) if text.guessing else b"")
    return message


def _csv_value(key: str, value: str) -> Any:
    if key in _CSV_NUMBERS:
        try:
            return orjson.loads(value)  # strict JSON: NaN, Infinity and 1e999 stay text, for the schema to refuse
        except orjson.JSONDecodeError:
            return value
    return value
