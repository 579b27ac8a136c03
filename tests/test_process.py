"""The library does not own the process: `batchgpt.run` works from a thread and inside a running
event loop (a notebook cell), `batchgpt.arun` shares the caller's loop without blocking it, and
neither touches the host's signal handlers, gc thresholds or frozen objects. A caller stops a run
with a `batchgpt.Stop` handle. All against the mock server."""

from __future__ import annotations

import asyncio
import gc
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import SECRET, chat_job

import batchgpt
from batchgpt.errors import EXIT_STOPPED
from batchgpt.mock import MockServer


@pytest.fixture
def settings(server: MockServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """run's keyword arguments against the mock server, with state and outputs under tmp_path."""
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.chdir(tmp_path)
    return {
        "base_url": server.base_url,
        "state_dir": tmp_path / "state",
        "out": str(tmp_path / "results.csv"),
        "report": str(tmp_path / "report.csv"),
    }


def statuses(frame: pd.DataFrame) -> set[str]:
    return set(frame["status"])


def test_run_works_from_a_thread_that_is_not_the_main_one(settings):
    got: list[Any] = []
    thread = threading.Thread(target=lambda: got.append(batchgpt.run(chat_job(["a", "b"]), **settings)))
    thread.start()
    thread.join(60)
    [frame] = got
    assert statuses(frame) == {"ok"} and frame.attrs["summary"].exit_code == 0


def test_run_works_inside_a_running_event_loop_as_in_a_notebook_cell(settings):
    async def cell() -> Any:
        return batchgpt.run(chat_job(["a", "b"]), **settings)

    frame = asyncio.run(cell())
    assert statuses(frame) == {"ok"} and len(frame) == 2


def test_arun_shares_the_callers_loop_with_a_task_that_keeps_ticking(settings, server, monkeypatch):
    """A ticker on the same loop goes on while the run waits for answers, and the work that blocks
    (opening the state, writing the results) is done off the loop's thread."""
    from batchgpt import lifecycle

    server.config.latency = 0.02
    threads: list[threading.Thread] = []
    export = lifecycle.export

    def exporting(*args: Any) -> Any:
        threads.append(threading.current_thread())
        return export(*args)

    monkeypatch.setattr(lifecycle, "export", exporting)

    async def main() -> tuple[Any, int]:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0.001)

        ticking = asyncio.create_task(ticker())
        try:
            frame = await batchgpt.arun(chat_job([f"q{i}" for i in range(6)], limits={"concurrency": 1}), **settings)
        finally:
            done.set()
            await ticking
        return frame, ticks

    frame, ticks = asyncio.run(main())
    assert statuses(frame) == {"ok"} and len(frame) == 6
    assert ticks >= 6  # it ticked while six answers were awaited one after another
    assert threads and threads[0] is not threading.main_thread()


@pytest.fixture
def host_settings() -> Iterator[Callable[[], tuple[Any, ...]]]:
    """A host with gc thresholds of its own, objects it froze, and a SIGTERM handler of its own."""
    threshold = gc.get_threshold()
    handler = signal.getsignal(signal.SIGTERM)
    gc.set_threshold(1234, 11, 12)
    gc.freeze()
    signal.signal(signal.SIGTERM, lambda *_: None)

    def seen() -> tuple[Any, ...]:
        return (
            gc.get_threshold(),
            gc.get_freeze_count(),
            signal.getsignal(signal.SIGINT),
            signal.getsignal(signal.SIGTERM),
        )

    yield seen
    signal.signal(signal.SIGTERM, handler)
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_run_leaves_the_hosts_gc_and_signal_handlers_as_it_found_them(settings, host_settings):
    before = host_settings()
    assert before[1] > 0  # the host froze objects
    frame = batchgpt.run(chat_job(["a", "b"]), **settings)
    assert statuses(frame) == {"ok"}
    threshold, frozen, *handlers = host_settings()
    assert (threshold, handlers) == (before[0], list(before[2:]))
    # none unfrozen (gc.unfreeze() leaves 0) and none frozen more; a few the host froze were freed
    assert before[1] - 1000 < frozen <= before[1]


def test_a_stop_asked_before_the_run_sends_nothing_and_says_why(settings, server):
    stop = batchgpt.Stop()
    stop.request("the web app is shutting down")
    frame = batchgpt.run(chat_job(["a", "b", "c"], limits={"concurrency": 1}), stop=stop, **settings)
    summary = frame.attrs["summary"]
    assert statuses(frame) == {"skipped"} and not server.seen
    assert summary.exit_code == EXIT_STOPPED and summary.stopped == "the web app is shutting down"
    assert all("the web app is shutting down" in error for error in frame["error"])


def test_a_stop_from_another_thread_lets_answers_in_flight_finish_and_writes_the_results(settings, server):
    """The run is stopped from the thread that started it while its worker thread waits for the
    third answer: what was answered stays, the rest is skipped, the results are written."""
    server.config.latency = 0.2
    stop = batchgpt.Stop()
    got: list[Any] = []
    job = chat_job([f"q{i}" for i in range(20)], limits={"concurrency": 1, "timeout": 30})
    thread = threading.Thread(target=lambda: got.append(batchgpt.run(job, stop=stop, **settings)))
    thread.start()
    while len(server.seen) < 3 and thread.is_alive():
        threading.Event().wait(0.01)
    stop.request()
    thread.join(60)
    [frame] = got
    counts = frame["status"].value_counts().to_dict()
    assert counts.get("ok", 0) >= 2 and counts.get("skipped", 0) >= 10 and set(counts) <= {"ok", "skipped"}
    assert frame.attrs["summary"].exported and Path(settings["out"]).is_file()
    assert frame.attrs["summary"].stopped == "stopped by the caller"


def test_a_stop_ends_a_batch_runs_wait_for_its_batches_at_once(settings, server):
    """A batch-mode run told to wait for its batches (an hour between polls) ends as soon as it is
    asked to stop: the batch stays open for a later run to collect."""
    from batchgpt.batch import EXIT_SUBMITTED
    from batchgpt.jobs import Overrides, load
    from batchgpt.lifecycle import RunOptions, arun_job

    server.config.batch_delay = 3600
    job = load(
        chat_job(["a", "b"], mode="batch"),
        Overrides(base_url=settings["base_url"], out=settings["out"], report=settings["report"]),
    )
    options = RunOptions(state_dir=settings["state_dir"], wait=True, poll=3600)
    stop = batchgpt.Stop()
    got: list[Any] = []
    thread = threading.Thread(target=lambda: got.append(asyncio.run(arun_job(job, options, stop))))
    thread.start()
    while not server.batch.batches and thread.is_alive():
        threading.Event().wait(0.01)
    stop.request("enough for today")
    thread.join(60)
    [summary] = got
    assert summary.exit_code == EXIT_SUBMITTED and summary.batches_open == 1 and summary.submitted == 2
    assert summary.stopped == "enough for today" and not summary.exported


def test_a_hard_stop_counts_the_requests_it_cuts_off_as_maybe_billed(settings, server):
    """`Stop.now()` cancels requests the server may already be answering, and billing: each is an
    attempt that may have been billed, at its worst case, so the reported worst case is never
    below the bill. Before, they vanished from the summary."""
    server.config.latency = 30
    stop = batchgpt.Stop()
    got: list[Any] = []
    job = chat_job([f"q{i}" for i in range(6)], limits={"concurrency": 3, "timeout": 60})
    thread = threading.Thread(target=lambda: got.append(batchgpt.run(job, stop=stop, **settings)))
    thread.start()
    while len(server.seen) < 3 and thread.is_alive():
        threading.Event().wait(0.01)
    stop.now()
    thread.join(60)
    [frame] = got
    summary = frame.attrs["summary"]
    assert len(server.seen) == 3
    assert summary.unconfirmed == 3 and summary.unconfirmed_usd is not None and summary.unconfirmed_usd > 0


def test_a_hard_stop_during_a_reask_keeps_the_answer_already_bought(settings, server):
    """The first answer missed its schema and was paid for; the re-ask hangs and the run is
    stopped at once. The paid answer is recorded with its cost, not dropped with the re-ask."""
    from batchgpt.mock.faults import Fault
    from batchgpt.store import Store

    server.config.faults = [Fault.parse("schema-miss")]
    server.config.latency = 0.3  # then 30 s, for the re-ask, once the first request is in
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}},
        "required": ["name"],
        "additionalProperties": False,
    }
    job = chat_job(["shoe"], limits={"concurrency": 1, "timeout": 60})
    job["tasks"][0]["schema"] = schema
    stop = batchgpt.Stop()
    got: list[Any] = []
    thread = threading.Thread(target=lambda: got.append(batchgpt.run(job, stop=stop, **settings)))
    thread.start()
    while not server.seen and thread.is_alive():
        threading.Event().wait(0.005)
    server.config.latency = 30
    while len(server.seen) < 2 and thread.is_alive():
        threading.Event().wait(0.01)
    stop.now()
    thread.join(60)
    assert len(got) == 1 and len(server.seen) == 2
    store = Store(settings["state_dir"])
    [row] = list(store.results("t", 1))
    store.close()
    assert row["id"] == "p0" and row["cost_usd"] and row["cost_usd"] > 0 and row["prompt_tokens"] > 0
    assert "does not match the schema" in row["error"]
