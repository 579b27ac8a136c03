"""Each job numbers its own runs, 1, 2, 3, however many other jobs share its store: in `runs`, the
log, `--run N`, the HTML page; a store from before is numbered so when it opens (issue 28, item 10)."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from conftest import chat_job

from batchgpt.store import MIGRATIONS, Store
from batchgpt.store.schema import RUN_NUMBERS


def _runs_table(output: str) -> list[tuple[int, str]]:
    """(run, job) of each row `batchgpt runs` prints, newest first."""
    return [(int(m[1]), m[2]) for m in re.finditer(r"^\s*(\d+)\s+(\w+)\s", output, re.MULTILINE)]


def test_two_jobs_sharing_a_store_each_number_their_own_runs(cli, write_job, tmp_path):
    state = str(tmp_path / "shared")
    first = write_job(chat_job(["a"], name="first"), "first.yaml")
    second = write_job(chat_job(["b"], name="second"), "second.yaml")
    said = [cli("run", str(job), "--state", state) for job in (first, second, first, first, second)]
    assert all(r.exit_code == 0 for r in said)
    starts = [re.search(r"run (\d+) of (\w+)", r.stderr)[0] for r in said]  # type: ignore[index]
    assert starts == ["run 1 of first", "run 1 of second", "run 2 of first", "run 3 of first", "run 2 of second"]
    listing = cli("runs", "--state", state)
    assert _runs_table(listing.stdout) == [(2, "second"), (3, "first"), (2, "first"), (1, "second"), (1, "first")]
    assert _runs_table(cli("runs", str(first), "--state", state).stdout) == [(3, "first"), (2, "first"), (1, "first")]

    page = tmp_path / "p.html"
    by_number = cli("report", "first", "--run", "2", "--state", state, "--html", str(page))
    assert by_number.exit_code == 0 and f"run 2 of first: page {page}" in by_number.stderr
    assert "<title>batchgpt first: run 2</title>" in page.read_text(encoding="utf-8")
    again = cli("export", str(second), "--run", "1", "--state", state, "--out", str(tmp_path / "b.csv"))
    assert again.exit_code == 0 and "run 1 of second" in again.stderr and (tmp_path / "b.csv").is_file()
    only = cli("report", "3", "--state", state, "--html", str(page))  # only `first` has a run 3
    assert only.exit_code == 0 and "run 3 of first" in only.stderr
    both = cli("report", "2", "--state", state)  # both have a run 2: which, the message asks
    assert both.exit_code == 2 and "jobs 'first', 'second' each have a run 2" in both.stderr
    assert "--run 2" in both.stderr
    none = cli("export", "first", "--run", "9", "--state", state)
    assert none.exit_code == 2 and "job 'first' has no run 9" in none.stderr


def test_the_page_of_a_run_taken_over_names_the_later_run_by_its_number(cli, write_job, tmp_path):
    state = str(tmp_path / "shared")
    job = write_job(chat_job(["a"]))
    other = write_job(chat_job(["b"], name="other"), "other.yaml")
    for path in (other, job, other, job):  # t's runs are the store's rows 2 and 4, its runs 1 and 2
        assert cli("run", str(path), "--state", state).exit_code == 0
    page = tmp_path / "p.html"
    assert cli("report", "t", "--run", "1", "--state", state, "--html", str(page)).exit_code == 0
    assert "run 2 has taken its items over since" in page.read_text(encoding="utf-8")


def _store_before_run_numbers(folder: Path, jobs: list[str]) -> None:
    """A state.db as batchgpt wrote it before runs were numbered per job: every migration up to
    that one, and a run of each of `jobs` in turn, each with an answered item."""
    folder.mkdir()
    version = MIGRATIONS.index(RUN_NUMBERS)
    db = sqlite3.connect(folder / "state.db")
    for script in MIGRATIONS[:version]:
        db.executescript(script)
    db.execute(f"PRAGMA user_version={version}")
    for run_id, job in enumerate(jobs, 1):
        db.execute(
            "INSERT INTO runs (id, job, job_path, started, finished, exit_code, items, ok, failed, skipped, sent, "
            "results, report) VALUES (?, ?, NULL, ?, ?, 0, 1, 1, 0, 0, 1, ?, ?)",
            (run_id, job, 1000.0 + run_id, 1001.0 + run_id, f"out/{job}.csv", f"out/{job}-report.csv"),
        )
        db.execute(
            "INSERT OR REPLACE INTO items (job, id, seq, run_id, task, type, model, hash, status, output) "
            "VALUES (?, 'x', 0, ?, 'chat', 'chat', 'gpt-4o-mini', 'h', 'ok', ?)",
            (job, run_id, f"answer of run {run_id}"),
        )
    db.commit()
    db.close()


def test_a_store_from_before_is_numbered_per_job_as_it_opens(tmp_path):
    _store_before_run_numbers(tmp_path / "state", ["a", "b", "a", "a", "b"])
    store = Store(tmp_path / "state")
    try:
        assert [(r.id, r.job, r.number) for r in store.runs()] == [
            (5, "b", 2),
            (4, "a", 3),
            (3, "a", 2),
            (2, "b", 1),
            (1, "a", 1),
        ]
        assert store.run(store.begin_run("b", None)).number == 3  # type: ignore[union-attr]
        assert store.run(store.begin_run("c", None)).number == 1  # type: ignore[union-attr]
        assert [r.id for r in store.numbered(2)] == [3, 5] and [r.id for r in store.numbered(2, "b")] == [5]
    finally:
        store.close()
    version = sqlite3.connect(tmp_path / "state" / "state.db").execute("PRAGMA user_version").fetchone()[0]
    assert version == len(MIGRATIONS)


def test_runs_and_export_read_an_old_store_by_the_new_numbers(cli, tmp_path):
    _store_before_run_numbers(tmp_path / "state", ["a", "b", "a"])
    state = str(tmp_path / "state")
    assert _runs_table(cli("runs", "--state", state).stdout) == [(2, "a"), (1, "b"), (1, "a")]
    out = tmp_path / "a.csv"
    result = cli("export", "a", "--run", "2", "--state", state, "--out", str(out), "--report", str(tmp_path / "r.csv"))
    assert result.exit_code == 0 and "run 2 of a" in result.stderr
    assert "answer of run 3" in out.read_text(encoding="utf-8")  # the store's row 3 is a's second run
