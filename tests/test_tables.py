"""Results and report files: formats, order, atomic replacement."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from batchgpt.tables import REPORT_COLUMNS, RESULT_COLUMNS, report_rows, write_results, write_table

ROWS = [
    {
        "task": "t",
        "type": "chat",
        "id": "1",
        "model": "m",
        "status": "ok",
        "output": "世界 🌍",
        "prompt_tokens": 3,
        "completion_tokens": 2,
        "cost_usd": 0.001,
        "attempts": 1,
        "latency_s": 0.1,
        "error": None,
    },
    {
        "task": "t",
        "type": "chat",
        "id": "2",
        "model": "m",
        "status": "error",
        "output": None,
        "prompt_tokens": None,
        "completion_tokens": None,
        "cost_usd": None,
        "attempts": 3,
        "latency_s": 2.0,
        "error": "HTTP 500: boom",
    },
    {
        "task": "e",
        "type": "embedding",
        "id": "3",
        "model": "m",
        "status": "ok",
        "output": [0.5, -1.0],
        "prompt_tokens": 1,
        "completion_tokens": 0,
        "cost_usd": 0.0,
        "attempts": 1,
        "latency_s": 0.1,
        "error": None,
    },
]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_results_round_trip(tmp_path, suffix):
    path = tmp_path / f"r{suffix}"
    assert write_results(path, iter(ROWS), "job") == 3
    if suffix == ".jsonl":
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        assert list(rows[0]) == RESULT_COLUMNS
        assert [r["output"] for r in rows] == ["世界 🌍", None, [0.5, -1.0]]
        assert rows[1]["prompt_tokens"] is None and rows[1]["error"] == "HTTP 500: boom"
        return
    frame = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    assert list(frame.columns)[: len(RESULT_COLUMNS)] == RESULT_COLUMNS
    assert frame["job"].tolist() == ["job"] * 3 and frame["id"].astype(str).tolist() == ["1", "2", "3"]
    assert frame["output"].iloc[0] == "世界 🌍"
    if suffix == ".csv":
        assert json.loads(frame["output"].iloc[2]) == [0.5, -1.0]
    else:
        assert list(frame["vector"].iloc[2]) == [0.5, -1.0] and pd.isna(frame["output"].iloc[2])


def test_an_empty_run_still_writes_a_header(tmp_path):
    write_results(tmp_path / "r.csv", iter([]), "job")
    assert (tmp_path / "r.csv").read_text().strip() == ",".join(RESULT_COLUMNS)
    write_results(tmp_path / "r.parquet", iter([]), "job")
    assert len(pd.read_parquet(tmp_path / "r.parquet")) == 0


def test_a_failed_write_leaves_the_old_file_whole(tmp_path):
    path = tmp_path / "r.csv"
    write_results(path, iter(ROWS), "job")
    before = path.read_text()

    def broken():
        yield ROWS[0]
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        write_results(path, broken(), "job")
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["r.csv"]  # no temporary left behind


def test_report_total_adds_up_the_priced_rows_and_names_the_unpriced(tmp_path):
    def group(task, model, cost, requests=1):
        return {
            "task": task,
            "model": model,
            "mode": "online",
            "requests": requests,
            "succeeded": requests,
            "failed": 0,
            "skipped": 0,
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "cost_usd": cost,
            "cost_usd_this_run": cost,
        }

    groups = [group("a", "m", 0.3, 2), group("b", "x", None, 4)]
    rows = report_rows(groups, {("b", "x", "online"): (3, 0.25)})  # 3 of b's 4 answers have no cost
    assert rows[0]["total_tokens"] == 15 and rows[0]["notes"] == ""
    assert rows[1]["cost_usd"] == 0.25 and rows[1]["notes"] == "+ 3 rows unpriced"
    total = rows[-1]
    assert total["requests"] == 6 and total["total_tokens"] == 30
    assert total["cost_usd"] == pytest.approx(0.55) and total["notes"] == "+ 3 rows unpriced: x"
    assert total["cost_usd_this_run"] == pytest.approx(0.3)  # this run's share of b is not known
    unknown = report_rows(groups)[-1]  # how many is not known: the models are still named
    assert unknown["cost_usd"] == pytest.approx(0.3) and unknown["notes"] == "+ unpriced rows: x"
    assert report_rows(groups[:1])[-1]["cost_usd"] == 0.3 and report_rows(groups[:1])[-1]["notes"] == ""
    write_table(tmp_path / "rep.parquet", rows, REPORT_COLUMNS)
    frame = pd.read_parquet(tmp_path / "rep.parquet")
    assert frame["task"].tolist() == ["a", "b", "TOTAL"] and frame["notes"].iloc[-1] == "+ 3 rows unpriced: x"


def test_a_planted_symlink_never_redirects_the_results(tmp_path, monkeypatch):
    from batchgpt import files

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / ".guessed.tmp").symlink_to(victim)
    names = iter([".guessed.tmp", ".fresh.tmp"])  # the writer's first name is the planted one
    monkeypatch.setattr(files, "temporary_name", lambda target, pid=None: next(names))
    write_results(tmp_path / "out" / "r.csv", iter(ROWS), "job")
    assert victim.read_text() == "precious"
    assert not (tmp_path / "out" / "r.csv").is_symlink() and len(pd.read_csv(tmp_path / "out" / "r.csv")) == 3


def test_an_unwritable_report_is_an_output_error_naming_it(tmp_path):
    from batchgpt.errors import OutputError

    (tmp_path / "rep.csv").mkdir()
    with pytest.raises(OutputError, match=f"^cannot write {tmp_path / 'rep.csv'}: "):
        write_table(tmp_path / "rep.csv", report_rows([]), REPORT_COLUMNS)


def test_the_file_writers_do_without_pandas_and_pyarrow():
    import ast
    from pathlib import Path

    import batchgpt

    root = Path(batchgpt.__file__).parent
    for name in ("files.py", "media.py", "tables.py", *(f"store/{p.name}" for p in (root / "store").glob("*.py"))):
        tree = ast.parse((root / name).read_text(encoding="utf-8"))
        imported = {
            alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
        }
        imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not imported & {"pandas", "pyarrow"}, name


TRICKY = [
    {"task": "t", "type": "chat", "id": "a,b", "model": "m", "status": "ok", "output": 'say "hi",\nthen go',
     "prompt_tokens": 12, "completion_tokens": 3, "cost_usd": 1.3e-05, "attempts": 1, "latency_s": 0.0123,
     "cached_tokens": 0, "reasoning_tokens": 0, "ttft_s": None, "details": {"a": [1, 2]}, "mode": "online",
     "reasks": 0, "turn": None, "n": 7, "price": 2.5, "flag": True, "note": "δ 中文 \r x"},
    {"task": "t", "type": "embedding", "id": "b", "model": "m", "status": "error", "output": [0.1, -2e-07, 3.0],
     "prompt_tokens": None, "completion_tokens": None, "cost_usd": None, "attempts": 3, "latency_s": 12.5,
     "error": "HTTP 500: boom", "cached_tokens": 0, "reasoning_tokens": 0, "ttft_s": 0.25, "details": None,
     "mode": "batch", "reasks": 2, "turn": 2, "n": None, "price": 3, "flag": False, "note": ""},
    {"task": "t", "type": "chat", "id": "c", "model": "m", "status": "skipped", "output": None, "cost_usd": 123456.0,
     "attempts": 0, "latency_s": 1e16, "cached_tokens": 5, "reasoning_tokens": 7, "mode": "online", "reasks": 0,
     "n": 12345678901, "price": None, "flag": None, "note": None},
]  # fmt: skip


def test_csv_reads_as_pandas_wrote_it(tmp_path):
    """The csv-module writer against pandas' own to_csv (what wrote these files before): the same
    bytes for every kind of value a results file holds."""
    from batchgpt.tablefiles import _frame, text_output

    kept = [("n", "integer"), ("price", "real"), ("flag", "boolean"), ("note", "text")]
    write_results(tmp_path / "r.csv", [dict(r) for r in TRICKY], "job", kept)
    columns = [*RESULT_COLUMNS, "n", "price", "flag", "note"]
    rows = [{"job": "job", **r, "output": text_output(r["output"]), "details": text_output(r.get("details"))}
            for r in TRICKY]  # fmt: skip
    expected = _frame(rows, columns, ["n"]).to_csv(index=False)
    assert (tmp_path / "r.csv").read_bytes().decode() == expected
    group = {"task": "t", "model": "m", "mode": "online", "requests": 3, "succeeded": 2, "failed": 1, "skipped": 0}
    for groups in ([], [{**group, "prompt_tokens": 10, "completion_tokens": 4, "cost_usd": 1.5e-05,
                         "cost_usd_this_run": 0.0}, {**group, "task": "u", "prompt_tokens": None,
                         "completion_tokens": None, "cost_usd": None, "cost_usd_this_run": None}]):  # fmt: skip
        write_table(tmp_path / "rep.csv", report_rows(groups), REPORT_COLUMNS)
        expected = _frame(report_rows(groups), REPORT_COLUMNS).to_csv(index=False)
        assert (tmp_path / "rep.csv").read_text() == expected


def test_a_run_that_writes_csv_never_imports_pandas(tmp_path):
    import subprocess
    import sys

    code = f"""
import sys
from pathlib import Path
from batchgpt.tables import write_results, write_table, report_rows, REPORT_COLUMNS
write_results(Path({str(tmp_path / "r.csv")!r}), iter([{{"id": "a", "status": "ok", "cost_usd": 0.5}}]), "job")
write_table(Path({str(tmp_path / "rep.csv")!r}), report_rows([]), REPORT_COLUMNS)
print("pandas" in sys.modules, "pyarrow" in sys.modules)
"""
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert shown.split() == ["False", "False"]
    assert (tmp_path / "r.csv").read_text().splitlines()[1].startswith("job,,,a,,ok,,,,0.5,")


def test_a_run_without_kept_fields_writes_the_same_csv_from_the_stores_rows(tmp_path):
    """export writes such a run's CSV from the stored rows (tables.stored_cells): byte for byte what
    write_results writes from records, for text, JSON structures, vectors, details, NaN, None."""
    import array
    import math

    from batchgpt.records import Provider, Request, Result
    from batchgpt.store import Store
    from batchgpt.tables import export

    store = Store(tmp_path / "state")
    run = store.begin_run("job", None)
    vector = array.array("f", [0.1, -2.5, 3e-7]).tolist()
    outputs = [
        ('世界 🌍, "quoted"\nnewline', None),
        ({"b": [1, 2.5, None], "a": "ü"}, {"scores": {"hate": 1e-9}, "flagged": False}),
        (vector, None),
        (["x", "y"], {"seconds": 3}),
        (None, None),
        ("plain", "a detail that is a string"),
    ]
    for n, (output, details) in enumerate(outputs):
        request = Request(
            seq=n, id=f"i{n}", task="t", type="chat", model="m", endpoint="/chat/completions",
            body={}, payload=b"{}", hash="h", provider=Provider(),
        )  # fmt: skip
        store.claim(run, "job", request)
        status = "error" if output is None else "ok"
        store.record(
            "job",
            Result(
                seq=n, id=request.id, task="t", type="chat", model="m", status=status, output=output,
                details=details, prompt_tokens=None if output is None else 7, cost_usd=math.nan if n == 3 else 0.25,
                latency_s=1.5, error="HTTP 500: boom, \"really\"" if output is None else None, reasks=n,
            ),
        )  # fmt: skip
    export(store, "job", run, tmp_path / "fast.csv", tmp_path / "rep.csv")
    write_results(tmp_path / "records.csv", store.results("job", run), "job")
    fast = (tmp_path / "fast.csv").read_bytes()
    assert fast == (tmp_path / "records.csv").read_bytes()
    assert b"0.1" in fast and "世界".encode() in fast and fast.count(b"\n") > len(outputs)
    assert list(pd.read_csv(tmp_path / "fast.csv")["id"]) == [f"i{n}" for n in range(len(outputs))]


BOM = b"\xef\xbb\xbf"


@pytest.mark.parametrize("kept", [(), (("sku", "text"),)], ids=["cells", "records"])
def test_a_csv_with_bom_is_the_same_file_after_one_mark_for_excel(tmp_path, kept):
    """Excel reads a CSV without a BOM in the system's code page: Chinese became mojibake (issue
    28, item 6). Both CSV writers (the store's cells, and records with kept fields) take `bom`."""
    from batchgpt.jobs.rows import read_rows
    from batchgpt.tablefiles import write_cells

    rows = [dict(r, kept={"sku": "货号-1"}) if kept else dict(r) for r in ROWS]
    if kept:
        write_results(tmp_path / "plain.csv", iter([dict(r) for r in rows]), "job", kept)
        write_results(tmp_path / "bom.csv", iter(rows), "job", kept, bom=True)
    else:
        cells = [["job", *(r.get(c) for c in RESULT_COLUMNS[1:])] for r in rows]
        write_cells(tmp_path / "plain.csv", cells)
        write_cells(tmp_path / "bom.csv", cells, bom=True)
    plain, marked = (tmp_path / "plain.csv").read_bytes(), (tmp_path / "bom.csv").read_bytes()
    assert marked == BOM + plain and not plain.startswith(BOM) and marked.count(BOM) == 1
    assert pd.read_csv(tmp_path / "bom.csv").equals(pd.read_csv(tmp_path / "plain.csv"))
    assert list(read_rows(tmp_path / "bom.csv")) == list(read_rows(tmp_path / "plain.csv"))  # as items_from


def test_a_report_with_bom_and_other_formats_without(tmp_path):
    write_table(tmp_path / "rep.csv", report_rows([]), REPORT_COLUMNS, bom=True)
    assert (tmp_path / "rep.csv").read_bytes().startswith(BOM + b"task,")
    write_results(tmp_path / "r.jsonl", iter([dict(r) for r in ROWS]), "job", bom=True)
    assert (tmp_path / "r.jsonl").read_bytes().startswith(b'{"job"')  # a BOM is for Excel's CSV alone
