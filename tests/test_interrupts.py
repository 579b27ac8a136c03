"""Ctrl-C pressed again and again through the real CLI in a child process: the run is recorded as
interrupted, whatever phase the presses reach (the grace, closing the run, exporting, the way out),
with no traceback, and a rerun buys nothing recorded again (issue 24, item 17)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from conftest import SECRET, chat_job
from test_resume import answered, start, wait_for


def _ok_items(state: Path) -> set[str]:
    db = sqlite3.connect(f"file:{state / 'state.db'}?mode=ro", uri=True)
    try:
        return {row[0] for row in db.execute("SELECT id FROM items WHERE status = 'ok'")}
    finally:
        db.close()


def test_ctrl_c_again_and_again_records_the_run_as_interrupted_and_a_rerun_buys_nothing_twice(
    server, write_job, tmp_path
):
    """Two Ctrl-C in a row left the run "running?" in `batchgpt runs`: the second came after the
    run's signal handlers were gone (while it closed and exported), and ended the process before
    the run was recorded. Here, once the first one's grace is over and the results are being
    written, they keep coming every 5 ms until the process has ended."""
    server.config.latency = 0.2  # slow answers: some are in flight at every press
    prompts = [f"item {i}" for i in range(20_000)]  # closing and exporting so many rows takes a while
    job = write_job(chat_job(prompts, limits={"concurrency": 16, "timeout": 30}))
    state = tmp_path / ".batchgpt"
    child = start(job, server.base_url)
    wait_for(lambda: answered(state) >= 100)
    child.send_signal(signal.SIGINT)
    written = tmp_path / "out"
    wait_for(lambda: written.is_dir() and any(written.iterdir()))  # the grace is over: the run is exporting
    deadline = time.monotonic() + 60
    while child.poll() is None and time.monotonic() < deadline:
        child.send_signal(signal.SIGINT)
        time.sleep(0.005)
    _, err = child.communicate(timeout=30)
    assert child.returncode == 130 and "Traceback" not in err, err
    env = {**os.environ, "OPENAI_API_KEY": SECRET}
    runs = subprocess.run(
        [sys.executable, "-m", "batchgpt.cli", "runs", str(job)], env=env, capture_output=True, text=True
    )
    [row] = [line for line in runs.stdout.splitlines() if line.split()[:2] == ["1", "t"]]
    assert row.split()[-1] == "130" and "running?" not in runs.stdout  # 130: interrupted by SIGINT
    recorded = _ok_items(state)
    assert len(recorded) >= 100
    # A rerun of the items up to 50 past the last one answered (the same items: their answers
    # stand) buys what is missing, and none of what was recorded.
    reached = prompts[: max(int(item[1:]) for item in recorded) + 51]
    before = len(server.seen)
    server.config.latency = 0
    rerun = start(write_job(chat_job(reached, limits={"concurrency": 16})), server.base_url)
    assert rerun.wait(timeout=120) == 0
    bought_again = {seen.body["messages"][-1]["content"] for seen in server.seen[before:]}
    assert bought_again and not {f"item {item[1:]}" for item in recorded} & bought_again
    assert _ok_items(state) >= {f"p{i}" for i in range(len(reached))}
