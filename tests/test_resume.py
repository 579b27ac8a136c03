"""Crash safety, resumption, signals and locks, through the real CLI in a child process."""

from __future__ import annotations

import csv
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import SECRET, chat_job, faults

from batchgpt.errors import EXIT_IO


def start(job: Path, base_url: str, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "OPENAI_API_KEY": SECRET}
    return subprocess.Popen(
        [sys.executable, "-m", "batchgpt.cli", "run", str(job), "--base-url", base_url, *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def answered(state: Path) -> int:
    try:
        # Read-only: connecting read-write would create an empty state.db before the run does.
        db = sqlite3.connect(f"file:{state / 'state.db'}?mode=ro", uri=True)
        try:
            return db.execute("SELECT COUNT(*) FROM items WHERE status = 'ok'").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def results(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open(encoding="utf-8")))


def prompts_sent(server) -> Counter:
    return Counter(s.body["messages"][-1]["content"] for s in server.seen)


def test_kill_9_then_rerun_pays_again_at_most_the_requests_in_flight(server, write_job, tmp_path):
    server.config.latency = 0.03
    prompts = [f"item {i}" for i in range(200)]
    job = write_job(chat_job(prompts, limits={"concurrency": 8}))
    child = start(job, server.base_url)
    wait_for(lambda: answered(tmp_path / ".batchgpt") >= 40)
    child.kill()
    child.wait()
    assert answered(tmp_path / ".batchgpt") < 200
    rerun = start(job, server.base_url)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    rows = results(tmp_path / "out" / "t.csv")
    assert [r["id"] for r in rows] == [f"p{i}" for i in range(200)]
    assert [r["output"] for r in rows] == [f"Echo: {p}" for p in prompts]
    sent = prompts_sent(server)
    assert set(sent) == set(prompts)
    paid_twice = [p for p, n in sent.items() if n > 1]
    assert len(paid_twice) <= 8 and max(sent.values()) <= 2
    assert "answered by earlier runs" in err


def test_a_changed_prompt_is_sent_again_and_an_unchanged_one_is_not(cli, server, write_job, tmp_path):
    job = chat_job(["alpha", "beta", "gamma"])
    assert cli("run", str(write_job(job))).exit_code == 0
    job["tasks"][0]["items"][1]["prompt"] = "BETA, reworded"
    result = cli("run", str(write_job(job)))
    assert result.exit_code == 0
    assert prompts_sent(server) == Counter({"alpha": 1, "beta": 1, "gamma": 1, "BETA, reworded": 1})
    assert [r["output"] for r in results(tmp_path / "out" / "t.csv")] == [
        "Echo: alpha",
        "Echo: BETA, reworded",
        "Echo: gamma",
    ]
    assert "2 answered by earlier runs" in result.stderr


def test_fresh_and_retry_failed(cli, server, write_job, tmp_path):
    from conftest import faults

    path = write_job(chat_job(["ok", "BAD"]))
    faults(server, "400:match=BAD")
    assert cli("run", str(path)).exit_code == 1
    assert cli("run", str(path)).exit_code == 1  # the error is kept: nothing is sent
    assert len(server.seen) == 2
    server.config.faults = []
    assert cli("run", str(path), "--retry-failed").exit_code == 0
    assert prompts_sent(server) == Counter({"ok": 1, "BAD": 2})
    assert cli("run", str(path), "--fresh").exit_code == 0
    assert prompts_sent(server) == Counter({"ok": 2, "BAD": 3})


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_writes_partial_results_and_exits_128_plus_its_number(server, write_job, tmp_path, signum, code):
    server.config.latency = 0.05
    job = write_job(chat_job([f"item {i}" for i in range(120)], limits={"concurrency": 4}))
    child = start(job, server.base_url)
    wait_for(lambda: answered(tmp_path / ".batchgpt") >= 10)
    child.send_signal(signum)
    out, err = child.communicate(timeout=60)
    assert child.returncode == code, err
    assert "Traceback" not in err and f"interrupted by {signum.name}" in err
    rows = results(tmp_path / "out" / "t.csv")
    assert len(rows) == 120
    statuses = Counter(r["status"] for r in rows)
    assert statuses["ok"] >= 10 and statuses["skipped"] > 0 and set(statuses) <= {"ok", "skipped"}
    assert all(f"interrupted by {signum.name}" in r["error"] for r in rows if r["status"] == "skipped")
    rerun = start(job, server.base_url)
    assert rerun.wait(timeout=120) == 0
    assert len(server.seen) == 120  # the rerun sent exactly what the first run did not


def test_a_second_ctrl_c_stops_at_once_and_the_store_survives(server, write_job, tmp_path):
    server.config.latency = 0.05
    server.config.hang_s = 60
    from conftest import faults

    faults(server, "hang:match=item 7")
    job = write_job(chat_job([f"item {i}" for i in range(100)], limits={"concurrency": 2, "timeout": 50}))
    child = start(job, server.base_url)
    wait_for(lambda: answered(tmp_path / ".batchgpt") >= 5 and prompts_sent(server)["item 7"])
    child.send_signal(signal.SIGINT)
    time.sleep(0.3)
    child.send_signal(signal.SIGINT)  # item 7 hangs, so the grace period would last 10 s
    started = time.monotonic()
    out, err = child.communicate(timeout=30)
    assert child.returncode == 130 and time.monotonic() - started < 5
    assert "Traceback" not in err and "batchgpt export" in err
    assert answered(tmp_path / ".batchgpt") >= 5
    server.config.faults = []
    rerun = start(job, server.base_url)
    assert rerun.wait(timeout=120) == 0
    assert len(results(tmp_path / "out" / "t.csv")) == 100


def test_the_hint_after_a_hard_stop_works_pasted_in_another_folder(server, write_job, tmp_path):
    import re
    import shlex

    server.config.latency = 0.05
    server.config.hang_s = 60
    faults(server, "hang:match=item 7")
    write_job(chat_job([f"item {i}" for i in range(40)], limits={"concurrency": 2, "timeout": 50}))
    env = {**os.environ, "OPENAI_API_KEY": SECRET}
    child = subprocess.Popen(
        [sys.executable, "-m", "batchgpt.cli", "run", "job.yaml", "--base-url", server.base_url],
        cwd=tmp_path,  # started beside its job, with a relative path, as from its own folder
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: answered(tmp_path / ".batchgpt") >= 5 and prompts_sent(server)["item 7"])
    child.send_signal(signal.SIGINT)
    time.sleep(0.3)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=30)
    assert child.returncode == 130, err
    [hint] = re.findall(r"results not written \(stopped at once\): `(batchgpt [^`]+)` writes them", err)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    pasted = subprocess.run(
        [sys.executable, "-m", "batchgpt.cli", *shlex.split(hint)[1:]], cwd=elsewhere, env=env, capture_output=True
    )
    assert pasted.returncode == 0, pasted.stderr
    assert len(results(tmp_path / "out" / "t.csv")) == 40


def test_a_second_run_of_the_same_job_exits_4_and_a_dead_owner_does_not_block(server, write_job, tmp_path):
    server.config.latency = 0.2
    job = write_job(chat_job([f"item {i}" for i in range(50)], limits={"concurrency": 1}))
    first = start(job, server.base_url)
    wait_for(lambda: answered(tmp_path / ".batchgpt") >= 1)
    second = start(job, server.base_url)
    out, err = second.communicate(timeout=30)
    assert second.returncode == 4
    assert f"process {first.pid}" in err and "already running" in err
    first.kill()
    first.wait()
    server.config.latency = 0
    third = start(job, server.base_url)
    assert third.wait(timeout=60) == 0  # the lock file is still there, but its owner is dead


def test_a_corrupt_state_store_is_a_clear_error(cli, write_job, tmp_path):
    state = tmp_path / ".batchgpt"
    state.mkdir()
    (state / "state.db").write_bytes(b"garbage" * 1000)
    result = cli("run", str(write_job(chat_job(["a"]))))
    assert result.exit_code == 2
    assert "unusable" in result.stderr and "Traceback" not in result.output


def test_an_unusable_state_directory_is_a_clear_error(cli, write_job, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a directory")
    result = cli("run", str(write_job(chat_job(["a"]))), "--state", str(blocker / "state"))
    assert result.exit_code == 2 and "cannot use the state directory" in result.stderr


def test_runs_lists_past_runs_and_export_writes_them_again(cli, server, write_job, tmp_path):
    path = write_job(chat_job(["a", "b"]))
    assert cli("run", str(path)).exit_code == 0
    assert cli("run", str(path)).exit_code == 0
    listing = cli("runs", str(path))
    assert listing.exit_code == 0
    lines = [line for line in listing.stdout.splitlines() if "│ t " in line or "│ t  " in line or " t " in line]
    assert len(lines) >= 2
    (tmp_path / "out" / "t.csv").unlink()
    rewritten = cli("export", "t", "--state", str(tmp_path / ".batchgpt"))
    assert rewritten.exit_code == 0
    assert [r["output"] for r in results(tmp_path / "out" / "t.csv")] == ["Echo: a", "Echo: b"]
    missing = cli("export", "99", "--state", str(tmp_path / ".batchgpt"))
    assert missing.exit_code == 2 and "no run '99'" in missing.stderr
    nothing = cli("runs", "--state", str(tmp_path / "nowhere"))
    assert nothing.exit_code == 2 and "no run state" in nothing.stderr
    for option in ("--out", "--report"):  # a file type it cannot write: a usage error, not a traceback
        wrong = cli("export", str(path), option, str(tmp_path / "x.xlsx"))
        assert wrong.exit_code == 2 and f"{option} {tmp_path / 'x.xlsx'}: use a .csv or .parquet" in wrong.stderr


def test_cron_gets_plain_or_json_log_lines(server, write_job, tmp_path):
    import json

    job = write_job(chat_job(["a", "b"]))
    child = start(job, server.base_url, "--log-format", "json")
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0
    assert "\x1b[" not in err  # no colour or bar off a terminal
    summary = json.loads(err.strip().splitlines()[-1])
    assert summary["event"] == "summary" and summary["ok"] == 2 and summary["exit_code"] == 0


def test_fresh_never_forgets_under_a_running_job(server, write_job, tmp_path):
    server.config.latency = 0.2
    server.config.hang_s = 120
    faults(server, "hang:match=item 2")  # the first run is still at work however late the second starts
    job = write_job(chat_job([f"item {i}" for i in range(30)], limits={"concurrency": 1, "timeout": 60}))
    first = start(job, server.base_url)
    wait_for(lambda: answered(tmp_path / ".batchgpt") >= 2)
    second = start(job, server.base_url, "--fresh")
    assert second.wait(timeout=30) == 4
    assert answered(tmp_path / ".batchgpt") >= 2  # the locked-out --fresh deleted nothing
    first.kill()
    first.wait()


def _blocked_output(tmp_path: Path, how: str) -> Path:
    if how == "a folder":
        (tmp_path / "r.csv").mkdir()
        return tmp_path / "r.csv"
    if how == "a parent that cannot be made":
        (tmp_path / "blocker").write_text("a file where a folder should be")
        return tmp_path / "blocker" / "r.csv"
    if os.geteuid() != 0:
        (tmp_path / "read-only").mkdir(mode=0o555)
        return tmp_path / "read-only" / "r.csv"
    try:  # root writes anywhere chmod forbids, but not in /sys
        (Path("/sys") / "r.csv").touch()
    except OSError:
        return Path("/sys") / "r.csv"
    (Path("/sys") / "r.csv").unlink()
    pytest.skip("no folder here refuses root")


@pytest.mark.parametrize("how", ["a folder", "a parent that cannot be made", "a read-only folder"])
@pytest.mark.parametrize("option", ["--out", "--report"])
def test_an_output_that_cannot_be_written_is_found_before_anything_is_sent(
    cli, server, write_job, tmp_path, how, option
):
    target = _blocked_output(tmp_path, how)
    result = cli("run", str(write_job(chat_job(["a", "b"]))), option, str(target))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"cannot write {target}: " in result.stderr and "nothing was sent" in result.stderr
    assert ".tmp" not in result.stderr
    assert server.seen == [] and answered(tmp_path / ".batchgpt") == 0


def test_a_full_disk_names_the_file_keeps_the_store_and_says_how_to_write_elsewhere(
    cli, server, write_job, tmp_path, monkeypatch
):
    import errno

    from batchgpt import tablefiles

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    path = write_job(chat_job(["a", "b"]))
    with monkeypatch.context() as disk:
        disk.setattr(tablefiles, "_write_rows", full)  # results go to JSONL; the report (CSV) meets the full disk
        result = cli("run", str(path), "--out", str(tmp_path / "out" / "t.jsonl"))
    report = tmp_path / "out" / "t-report.csv"
    assert result.exit_code == EXIT_IO and "Traceback" not in result.output  # answers paid for: not "invalid"
    assert f"cannot write {report}: No space left on device" in result.stderr and ".tmp" not in result.stderr
    assert "batchgpt export" in result.stderr
    assert answered(tmp_path / ".batchgpt") == 2 and sorted(os.listdir(tmp_path / "out")) == ["t.jsonl"]
    elsewhere = cli("export", "t", "--state", str(tmp_path / ".batchgpt"), "--out", str(tmp_path / "r.csv"))
    assert elsewhere.exit_code == 0
    assert [r["output"] for r in results(tmp_path / "r.csv")] == ["Echo: a", "Echo: b"]
    assert cli("run", str(path)).exit_code == 0 and len(server.seen) == 2  # nothing paid twice


def test_a_truncated_state_store_stops_the_run_instead_of_paying_again(cli, server, write_job, tmp_path):
    path = write_job(chat_job(["a", "b"]))
    assert cli("run", str(path)).exit_code == 0
    (tmp_path / ".batchgpt" / "state.db").write_bytes(b"")
    result = cli("run", str(path))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "unusable" in result.stderr and str(tmp_path / ".batchgpt" / "state.db") in result.stderr
    assert len(server.seen) == 2


def test_temporaries_left_by_a_killed_run_are_cleaned_up_and_other_files_kept(cli, server, write_job, tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    out = tmp_path / "out"
    out.mkdir()
    leftovers = [f".t.csv.{gone.pid}.tmp", f".t-report.csv.{gone.pid}.tmp"]
    kept = [f".t.csv.{os.getpid()}.tmp", f".notes.txt.{gone.pid}.tmp", "notes.tmp"]
    for name in leftovers + kept:
        (out / name).write_text("x")
    assert cli("run", str(write_job(chat_job(["a"])))).exit_code == 0
    assert sorted(os.listdir(out)) == sorted(kept + ["t.csv", "t-report.csv", "t-report.html"])


def test_a_full_disk_that_also_fails_the_stores_bookkeeping_still_names_the_file(
    cli, server, write_job, tmp_path, monkeypatch
):
    import errno

    from batchgpt import tablefiles
    from batchgpt.store import Store

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def store_full(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    with monkeypatch.context() as disk:
        disk.setattr(tablefiles, "_write_rows", full)  # every CSV: the results (from the store's rows) and the report
        disk.setattr(Store, "finish_run", store_full)
        result = cli("run", str(write_job(chat_job(["a"]))))
    assert result.exit_code == EXIT_IO and "Traceback" not in result.output
    assert f"cannot write {tmp_path / 'out' / 't.csv'}: No space left on device" in result.stderr
    assert answered(tmp_path / ".batchgpt") == 1


def test_a_run_keeps_its_retries_by_cause_and_runs_shows_them(cli, server, write_job, tmp_path):
    from batchgpt.api import list_runs
    from batchgpt.store import Store

    faults(server, "500:first=1,match=x", "429:first=2,match=y")
    path = write_job(chat_job(["x", "y", "z"]))
    assert cli("run", str(path)).exit_code == 0
    [row] = list_runs(tmp_path / ".batchgpt")
    assert row["retries"] == "HTTP 429: 2, HTTP 500: 1"
    store = Store(tmp_path / ".batchgpt")
    assert store.runs()[0].sent == 6  # three items, three retries
    store.close()
    listing = cli("runs", str(path))
    assert "HTTP 429: 2" in listing.stdout


def test_answers_from_one_endpoint_never_stand_in_for_anothers(cli, server, write_job, tmp_path):
    from batchgpt.mock import Config, MockServer

    path = write_job(chat_job(["one", "two"]))
    assert cli("run", str(path)).exit_code == 0  # a rehearsal on one server
    other = MockServer(Config(api_key=SECRET)).start()
    try:
        real = cli("run", str(path), "--base-url", other.base_url, base_url=False)
        assert real.exit_code == 0, real.output
        assert len(other.seen) == 2  # the other endpoint answers every item itself
        again = cli("run", str(path), "--base-url", other.base_url, base_url=False)
        assert again.exit_code == 0 and len(other.seen) == 2  # and its answers stand on a rerun there
    finally:
        other.stop()


def test_a_rerun_that_sent_nothing_spent_nothing_and_says_the_jobs_total_apart(cli, server, write_job, tmp_path):
    path = write_job(chat_job(["one", "two"]))
    first = cli("run", str(path))
    assert first.exit_code == 0
    again = cli("run", str(path))
    assert "cost $0.000000 this run, $0.0000" in again.output and "for the job's answers" in again.output
    report = list(csv.DictReader((tmp_path / "out" / "t-report.csv").open()))
    assert float(report[-1]["cost_usd_this_run"]) == 0 and float(report[-1]["cost_usd"]) > 0
    runs = {r["run"]: r for r in batchgpt_runs(tmp_path)}
    assert runs[1]["spent_usd"] == runs[1]["job_cost_usd"] > 0 and runs[2]["spent_usd"] == 0


def batchgpt_runs(tmp_path: Path) -> list[dict]:
    from batchgpt.api import list_runs

    return list_runs(tmp_path / ".batchgpt")


@pytest.mark.timeout(60)
def test_a_store_that_cannot_be_written_mid_run_ends_the_run_with_a_message(cli, server, write_job, monkeypatch):
    """A full disk failed the commit in an event-loop callback: asyncio printed the traceback and
    the workers waited for a commit that never came, so the run hung."""
    from batchgpt.store import Store

    commit = Store.commit
    calls = {"n": 0}

    def fills_up(self):
        calls["n"] += 1
        if calls["n"] > 3:
            raise sqlite3.OperationalError("database or disk is full")
        commit(self)

    monkeypatch.setattr(Store, "commit", fills_up)
    result = cli("run", str(write_job(chat_job([f"q{i}" for i in range(40)]))))
    assert result.exit_code == EXIT_IO and "Traceback" not in result.output
    assert "the disk is full: cannot write the run state in" in result.stderr
    assert "database or disk is full" in result.stderr


def test_items_not_reached_when_the_grace_ends_are_skipped_in_every_count(server, write_job, tmp_path):
    """Both workers hang, the walk waits for a free worker, and the grace period ends: the items it
    never reached were missing from the summary, the report and the results file."""
    server.config.hang_s = 60
    faults(server, "hang:match=item")
    job = write_job(chat_job([f"item {i}" for i in range(60)], limits={"concurrency": 2, "timeout": 50}))
    child = start(job, server.base_url)
    wait_for(lambda: len(server.seen) >= 2)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    rows = results(tmp_path / "out" / "t.csv")
    assert len(rows) == 60 and {r["status"] for r in rows} == {"skipped"}
    assert "60 items: 0 ok, 0 failed, 60 skipped" in err
    report = {r["task"]: r for r in results(tmp_path / "out" / "t-report.csv")}
    assert report["TOTAL"]["requests"] == "60" and report["TOTAL"]["skipped"] == "60"
