"""Waits a server tells and waits the run chooses (issue 24): a server-told wait is capped by the
job's patience and never absurd, and the run says so once; a retry with no server-told wait
backs off exponentially whatever the failure, even when the wait for a turn is longer.

The engine runs on a fake clock that moves only when it sleeps, against the mock server on the
same clock, whose own rate limit (a bucket refilling once in 36 years, or once in 300 s) sends
the absurd and the long waits as a real server words them.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import SECRET, chat_job
from test_batchcalls import Front

from batchgpt.mock import Config, Fault, MockServer

YEAR = 365.25 * 86400


class FakeTime:
    """A clock that moves only when the engine (or a pacer) sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def engine_run(spec: dict[str, Any], base_url: str, tmp_path: Path, fake: FakeTime) -> dict[str, Any]:
    """Run a job through the engine on the fake clock: its rows by id."""
    from batchgpt.jobs import Overrides, load
    from batchgpt.online.parts import Timing
    from batchgpt.progress import Progress
    from batchgpt.runoptions import RunOptions
    from batchgpt.store import Store
    from batchgpt.wiring import online_engine

    os.environ["OPENAI_API_KEY"] = SECRET
    job = load({**spec, "output": {"results": str(tmp_path / "r.csv")}}, Overrides(base_url=base_url))
    store = Store(tmp_path / "state")
    run_id = store.begin_run(job.name, None)
    with Progress(job.name, job.count, bar=False, stream=io.StringIO()) as progress:
        engine = online_engine(job, store, run_id, RunOptions(), progress, Timing(fake.clock, lambda: 0.5, fake.sleep))
        asyncio.run(engine.run())
    rows = {row["id"]: row for row in store.results(job.name, run_id)}
    store.close()
    return rows


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "asked to wait" in r.getMessage()]


def limited(fake: FakeTime, seconds_per_request: float, **config: Any) -> MockServer:
    """The mock, on the fake clock, letting one request through every `seconds_per_request`."""
    return MockServer(Config(api_key=SECRET, rpm=60 / seconds_per_request, **config), clock=fake.clock).start()


def test_a_reset_36_years_away_is_waited_at_most_300_s_and_the_run_says_so_once(tmp_path, caplog):
    fake = FakeTime()
    server = limited(fake, 36 * YEAR)  # answers once, then says its limit is whole again in 36 years
    try:
        job = chat_job(["a", "b"], limits={"concurrency": 1, "patience": 900})
        rows = engine_run(job, server.base_url, tmp_path, fake)
    finally:
        server.stop()
    assert rows["p0"]["status"] == "ok"
    assert rows["p1"]["status"] == "error" and "limits.patience" in rows["p1"]["error"]
    assert max(fake.slept) <= 300 and sum(fake.slept) < 1500  # not 36 years: patience ended it
    [warning] = warnings_of(caplog)
    assert "(about 36 years)" in warning and "x-ratelimit-reset-requests" in warning
    assert "waiting 300 s instead" in warning


def test_patience_5_cuts_a_300_s_wait_to_5_s_and_fails_the_item_then(tmp_path, caplog):
    fake = FakeTime()
    server = limited(fake, 300)  # one request every 300 s: retry-after 300, reset 5m0s
    try:
        job = chat_job(["a", "b"], limits={"concurrency": 1, "patience": 5})
        rows = engine_run(job, server.base_url, tmp_path, fake)
    finally:
        server.stop()
    assert rows["p0"]["status"] == "ok"
    assert rows["p1"]["status"] == "error" and "limits.patience" in rows["p1"]["error"]
    assert max(fake.slept) <= 5 and sum(fake.slept) <= 15
    [warning] = warnings_of(caplog)
    assert "asked to wait 300 s" in warning and "waiting 5 s instead, as limits.patience is 5 s" in warning


def test_a_capped_wait_is_told_on_stderr_once_with_no_traceback(cli, write_job, tmp_path):
    server = MockServer(Config(api_key=SECRET, rpm=0.2)).start()  # the real clock: patience is short
    try:
        job = write_job(chat_job(["a", "b", "c"], limits={"concurrency": 1, "patience": 0.3}))
        result = cli("run", str(job), "--base-url", server.base_url, base_url=False)
    finally:
        server.stop()
    assert result.exit_code == 1, result.output  # the items after the first failed, after patience
    assert result.output.count("asked to wait") == 1 and "waiting 0.3 s instead" in result.output
    assert "Traceback" not in result.output and SECRET not in result.output


def test_a_503_spell_asking_for_300_s_is_ended_by_the_outage_watch_not_waited_out(cli, server, write_job, tmp_path):
    # The decision: limits.outage still applies while items wait as a down server asked (the run
    # stops, the waiting items are skipped for a rerun); limits.timeout bounds attempts, not waits.
    front = Front(server.base_url).start()
    front.faults[("POST", "/chat/completions")] = [(503, {"retry-after": "300"})] * 50
    try:
        job = write_job(chat_job(["a", "b"], limits={"concurrency": 2, "outage": 1}))
        started = time.monotonic()
        result = cli("run", str(job), "--base-url", front.url, base_url=False)
        took = time.monotonic() - started
    finally:
        front.stop()
    assert result.exit_code == 3 and "no answer from the endpoint for 1 s" in result.output, result.output
    assert took < 60  # a bound, not a timing: waiting out the 300 s is the failure
    with (tmp_path / "out" / "t.csv").open(encoding="utf-8", newline="") as handle:
        assert {row["status"] for row in csv.DictReader(handle)} == {"skipped"}


def test_retries_after_timeouts_come_at_growing_intervals_even_when_the_pace_is_slower(tmp_path):
    # One request every 10 s (rpm 6) hid the backoff (0.44 s, 0.88 s, 1.75 s at this draw): every
    # attempt waited for its turn and reached the server exactly 10 s after the one before.
    fake = FakeTime()
    server = MockServer(Config(api_key=SECRET, faults=[Fault("hang")], hang_s=5), clock=fake.clock).start()
    arrivals: list[float] = []
    note = server.note

    def noted(request: Any, body: Any, fault: Any = None) -> None:
        arrivals.append(fake.clock())
        note(request, body, fault)

    server.note = noted  # type: ignore[method-assign]
    try:
        job = chat_job(["a"], limits={"rpm": 6, "timeout": 0.2, "max_retries": 4, "outage": 40})
        rows = engine_run(job, server.base_url, tmp_path, fake)
    finally:
        server.stop()
    assert rows["p0"]["status"] in ("error", "skipped")  # never answered
    intervals = [round(b - a, 3) for a, b in zip(arrivals, arrivals[1:], strict=False)]
    assert len(intervals) >= 3
    assert intervals[1] >= 1.5 * intervals[0]  # 10 s, then 17.5 s: twice the gap, less the jitter
    assert all(later >= earlier for earlier, later in zip(intervals, intervals[1:], strict=False))
