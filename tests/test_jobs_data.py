"""items_from files and JSONL jobs: what JSON cannot carry, and what CSV gets wrong, is located by line."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_jobs import problems

from batchgpt.jobs import MAX_DEPTH, load, requests
from batchgpt.jobs import rows as jobs


def job_from(tmp_path: Path, rows: str, text: str | bytes) -> Path:
    data = tmp_path / rows
    if isinstance(text, bytes):
        data.write_bytes(text)
    else:
        data.write_text(text, encoding="utf-8")
    job = tmp_path / "job.yaml"
    job.write_text(f"defaults: {{model: m}}\ntasks:\n  - {{type: chat, items_from: {rows}}}\n", encoding="utf-8")
    return job


# ----------------------------------------------------------------------------- CSV


def test_a_csv_with_a_duplicated_header_is_a_located_error(tmp_path):
    job = job_from(tmp_path, "rows.csv", "id,prompt,prompt\na,one,two\n")
    assert problems(job) == [
        f"{tmp_path / 'rows.csv'}:1: the header names 'prompt' twice: each column needs its own name (at /)"
    ]


def test_csv_rows_with_extra_cells_are_located_errors(tmp_path):
    job = job_from(tmp_path, "rows.csv", 'prompt,temperature\nfine,0.5\n"two\nlines",0.1,oops\nok,1\nbad,1,2,3\n')
    rows = tmp_path / "rows.csv"
    assert problems(job) == [
        f"{rows}:3: the row has 3 cells but the header names 2 columns (at /)",
        f"{rows}:6: the row has 4 cells but the header names 2 columns (at /)",
    ]
    job = job_from(tmp_path, "one.csv", "prompt\nhello,extra\n")
    assert problems(job) == [f"{tmp_path / 'one.csv'}:2: the row has 2 cells but the header names 1 column (at /)"]


def test_csv_nan_and_infinity_numbers_are_located_errors(tmp_path):
    job = job_from(tmp_path, "rows.csv", "prompt,temperature,max_tokens\na,NaN,5\nb,0.5,Infinity\nc,1e999,7\n")
    rows = tmp_path / "rows.csv"
    found = problems(job)
    assert f"{rows}:2: 'NaN' is not of type 'number' (at /temperature)" in found
    assert f"{rows}:3: 'Infinity' is not of type 'integer' (at /max_tokens)" in found
    assert f"{rows}:4: '1e999' is not of type 'number' (at /temperature)" in found
    assert len(found) == 3


def test_csv_cells_over_128_kib_are_read(tmp_path):
    big = "x" * (300 * 1024)
    job = job_from(tmp_path, "rows.csv", f'id,prompt\na,"{big}"\nb,small\n')
    first, second = requests(load(job))
    assert first.body["messages"][-1]["content"] == big and second.id == "b"


def test_a_runaway_csv_cell_is_refused_with_its_line(tmp_path, monkeypatch):
    monkeypatch.setattr(jobs, "MAX_CSV_CELL", 1000)
    job = job_from(tmp_path, "rows.csv", 'id,prompt\na,fine\nb,"unclosed\n' + "more text\n" * 500)
    [message] = problems(job)
    assert message.startswith(f"{tmp_path / 'rows.csv'}:") and "larger than" in message
    assert int(message.split(":")[1]) >= 3


class _Name(str):
    """A header name that counts the comparisons made with it."""

    compared = 0
    __hash__ = str.__hash__

    def __eq__(self, other: object) -> bool:
        _Name.compared += 1
        return str.__eq__(self, other)


class _Reader:
    def __init__(self, rows: list[list[str]]) -> None:
        self._rows = iter(rows)
        self.line_num = 0

    def __iter__(self) -> _Reader:
        return self

    def __next__(self) -> list[str]:
        self.line_num += 1
        return next(self._rows)


def test_a_wide_header_is_checked_for_twice_named_columns_in_linear_time():
    for width in (1000, 2000):
        header = [_Name(f"c{n}") for n in range(width)] + [_Name("c7")]
        _Name.compared = 0
        [(line, message)] = list(jobs._csv_records(_Reader([header])))
        assert (line, message) == (1, "the header names 'c7' twice: each column needs its own name")
        assert _Name.compared <= 2 * len(header)  # not once for each pair of names (a million for 1,000)


def test_a_wide_csv_kept_whole_is_read_with_every_column(tmp_path, monkeypatch):
    import difflib

    from batchgpt import schema

    width = 20_000
    names = ",".join(f"col{n}" for n in range(width))
    cells = ",".join(f"v{n}" for n in range(width))
    (tmp_path / "rows.csv").write_text(f"id,prompt,{names}\na,hi,{cells}\nb,yo,{cells}\n", encoding="utf-8")
    job = tmp_path / "job.yaml"
    # a model with a price: one without is looked up among the known names (jobs/models.py)
    job.write_text("defaults: {model: gpt-4o-mini}\ntasks:\n  - {type: chat, items_from: rows.csv, keep: all}\n")
    searched: list[str] = []
    close = difflib.get_close_matches
    monkeypatch.setattr(
        difflib, "get_close_matches", lambda word, *a, **k: searched.append(word) or close(word, *a, **k)
    )
    schema._unknown_key_message.cache_clear()
    first, second = requests(load(job))
    assert dict(first.kept)["col19999"] == "v19999" and len(second.kept) == width + 1
    assert searched == []  # a kept column is no unknown key to find a name for


def test_unknown_columns_are_looked_up_once_however_many_rows_name_them(tmp_path, monkeypatch):
    import difflib

    from batchgpt import schema

    names = ",".join(f"col{n}" for n in range(300))
    cells = ",".join("v" for _ in range(300))
    job = job_from(tmp_path, "rows.csv", f"id,prompt,{names}\n" + "".join(f"r{n},hi,{cells}\n" for n in range(3)))
    searched: list[str] = []
    close = difflib.get_close_matches
    monkeypatch.setattr(
        difflib, "get_close_matches", lambda word, *a, **k: searched.append(word) or close(word, *a, **k)
    )
    schema._unknown_key_message.cache_clear()
    found = problems(job)
    assert len(found) == 900 and all("unknown key 'col" in f for f in found)
    assert len(searched) == 300


# ----------------------------------------------------------------------------- JSONL and Parquet rows


def test_jsonl_rows_with_nan_or_infinity_are_located_errors(tmp_path):
    job = job_from(
        tmp_path,
        "rows.jsonl",
        '{"prompt": "a", "temperature": NaN}\n{"prompt": "b"}\n'
        '{"prompt": "c", "params": {"x": [Infinity]}}\n{"prompt": "d", "top_p": 1e999}\n',
    )
    rows = tmp_path / "rows.jsonl"
    found = problems(job)
    assert f"{rows}:1: NaN is not a number JSON can carry (at /temperature)" in found
    assert f"{rows}:3: Infinity is not a number JSON can carry (at /params/x/0)" in found
    assert f"{rows}:4: Infinity is not a number JSON can carry (at /top_p)" in found
    assert len(found) == 3


def test_parquet_nan_is_a_located_error(tmp_path):
    pq.write_table(pa.table({"prompt": ["a", "b"], "temperature": [0.5, float("nan")]}), tmp_path / "rows.parquet")
    job = tmp_path / "job.yaml"
    job.write_text("defaults: {model: m}\ntasks:\n  - {type: chat, items_from: rows.parquet}\n", encoding="utf-8")
    assert problems(job) == [f"{tmp_path / 'rows.parquet'}:2: NaN is not a number JSON can carry (at /temperature)"]


@pytest.mark.parametrize("depth", [300, 5000])
def test_deep_jsonl_rows_are_located_errors(tmp_path, depth):
    deep = "[" * depth + "]" * depth
    job = job_from(tmp_path, "rows.jsonl", f'{{"prompt": "a"}}\n{{"prompt": "b", "params": {{"x": {deep}}}}}\n')
    [message] = problems(job)
    assert message.startswith(f"{tmp_path / 'rows.jsonl'}:2: ") and f"nested more than {MAX_DEPTH} levels" in message


def test_deep_jsonl_job_lines_are_located_errors(tmp_path):
    deep = "[" * 300 + "]" * 300
    job = tmp_path / "job.jsonl"
    job.write_text(
        json.dumps({"type": "chat", "prompt": "a", "model": "m"})
        + "\n"
        + f'{{"type": "chat", "prompt": "b", "model": "m", "params": {{"x": {deep}}}}}\n',
        encoding="utf-8",
    )
    [message] = problems(job)
    assert message.startswith(f"{job}:2: ") and f"nested more than {MAX_DEPTH} levels" in message
