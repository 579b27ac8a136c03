"""One run of a job, online or through the Batch API: lock the job, open its state, begin the run,
execute it through a backend (backend.py's seam), close its accounts, write its results.

`arun_job` runs on the caller's event loop and never blocks it for long: opening the store,
forgetting a job, walking the job for what a stop left unreached, and exporting the results and
report run in a worker thread (asyncio.to_thread), one phase at a time, so the store is never used
by two threads at once. The backend's own writes (an answer's row, a few microseconds each,
committed in groups) stay on the loop: moving each to a thread would cost more than it saves.

The run owns no process state: no signal handler, no event-loop policy, no gc tuning. A caller
stops a run through a runoptions.Stop handle; the command line's signal handlers (cli/loop.py) use one.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import files, htmlreport
from .backend import Backend, Ending
from .errors import EXIT_FAILED_ITEMS, EXIT_OK, EXIT_STOPPED, OutputError, UsageError, store_write_error
from .jobs import Job, check_ready
from .media import MEDIA_TYPES, media_folder
from .progress import Progress
from .providers import api_key
from .records import shown_url
from .runoptions import GRACE_S, RunOptions, Stop
from .shared import SharedLimits
from .store import STATE_DIR, JobLock, RunTotals, Store, endpoints
from .tables import export
from .wiring import wire
from .words import command, count

__all__ = ["RunOptions", "Stop", "Summary", "arun_job"]


@dataclass(frozen=True)
class Summary:
    run_id: int  # the run's row in the store
    job: str
    items: int
    sent: int
    ok: int
    failed: int
    skipped: int
    reused: int
    failed_transient: int  # of `failed`: sent again by a plain rerun
    refused: int  # 429 and 503 answers the run waited out
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    elapsed_s: float
    exit_code: int
    results: Path
    report: Path
    state_dir: Path
    stopped: str | None = None
    unknown_models: tuple[str, ...] = field(default=())
    exported: bool = True
    mode: str = "online"
    submitted: int = 0  # batch mode: items waiting in open batches
    spent_usd: float | None = 0.0  # what this run's answers cost (cost_usd: the job's total)
    batches_open: int = 0
    online_items: int = 0  # batch mode: items of types the Batch API does not take, sent online
    unconfirmed: int = 0  # attempts with no usable answer that may have been billed (slow.py)
    timed_out: int = 0  # of those: the ones that timed out
    unconfirmed_usd: float | None = 0.0  # their worst-case cost, not in cost_usd (None: unknown)
    run_number: int = 0  # the run's number among its job's runs, as `runs` and `--run` name it


async def arun_job(
    job: Job, options: RunOptions | None = None, stop: Stop | None = None, cancel: bool = False
) -> Summary:
    """Run a validated job to the end (or to a stop) as its mode says, online or through the Batch
    API, and write its results and report. `cancel`: cancel the job's open batches instead, and
    collect what they finished. `stop`: the handle that asks the run to stop."""
    options = options or RunOptions()
    batch = cancel or job.mode == "batch"
    async with _opened(job, options) as (store, state_dir):
        _check_open_batches(job, options, store, batch)
        if options.fresh:
            await asyncio.to_thread(store.forget, job.name)
        return await _run_opened(job, options, stop, cancel, store, state_dir)


async def prepare(job: Job) -> None:
    """What must hold before anything is sent: every key is set, every output can be written,
    a shared limit can be reached."""
    check_ready(job)  # the key variables the job names, the CA bundles the environment names
    for provider in {job.provider, *(t.provider for t in job.tasks)}:
        api_key(provider)  # a missing key is a usage error before anything starts
    # An output that cannot be written is found now, not after the answers are paid for.
    try:
        for path in (job.results, job.report, htmlreport.beside(job.report)):  # the report's page too
            files.check_writable(path)
        if job.fmt == "jsonl" or any(task.type in MEDIA_TYPES for task in job.tasks):
            files.check_folder(media_folder(job.results, job.name))
    except OutputError as exc:
        raise UsageError(f"{exc}; nothing was sent") from None  # a usage error: nothing is paid for
    if job.limits.shared:
        await SharedLimits.verify(job.limits.shared)  # so is a shared limit that cannot be reached


@asynccontextmanager
async def _opened(job: Job, options: RunOptions) -> AsyncIterator[tuple[Store, Path]]:
    """The job's store, under the job's lock, after `prepare`; closed at the end."""
    await prepare(job)
    state_dir = options.state_dir or job.base_dir / STATE_DIR
    with JobLock(state_dir, job.name):
        store = await asyncio.to_thread(Store, state_dir)
        try:
            yield store, state_dir
        except BaseException as exc:
            # A full disk fails the store's bookkeeping of the run (and its close) too. The answers
            # are committed already, and the first failure is the news.
            with suppress(sqlite3.Error):
                store.close()
            if isinstance(exc, sqlite3.OperationalError) and isinstance(exc.__context__, OutputError):
                raise exc.__context__ from None
            if isinstance(exc, sqlite3.Error):
                raise store_write_error(state_dir, exc) from None
            raise
        store.close()


def _check_open_batches(job: Job, options: RunOptions, store: Store, batch: bool) -> None:
    """An online run, or a fresh start, would pay twice for items waiting in open batches."""
    if not store.batches(job.name, open_only=True) or (batch and not options.fresh):
        return
    cancel = command("cancel", job.path or job.name, state=options.state_dir)
    if batch:
        raise UsageError(f"job {job.name!r} has open batches: --fresh would lose their answers; `{cancel}` first")
    waiting = store.batches(job.name, open_only=True)
    raise UsageError(
        f"job {job.name!r} has {count(len(waiting), 'open Batch API batch')}: "
        f"run it with --batch to collect them, or `{cancel}` first "
        "(an online run would pay for their items twice)"
    )


async def _run_opened(
    job: Job, options: RunOptions, stop: Stop | None, cancel: bool, store: Store, state_dir: Path
) -> Summary:
    started = time.monotonic()
    run_id = store.begin_run(job.name, str(job.path) if job.path else None, endpoints(t.provider for t in job.tasks))
    if job.ids is not None:
        await asyncio.to_thread(store.expect, job.name, job.ids)
    bar = options.progress if options.progress is not None else sys.stderr.isatty() and options.log_format == "text"
    with Progress(job.name, job.count, bar) as progress:
        backend = wire(job, store, run_id, options, progress, state_dir, cancel)
        number = _number(store, run_id)
        announce(progress, job, number, backend.mode)
        executed = await execute(backend, stop, progress)
        closed = await asyncio.to_thread(_close, job, store, run_id, backend, executed)
    return summarize(
        job,
        run_id,
        closed.totals,
        started,
        run_number=number,
        sent=backend.sent,
        refused=backend.refused,
        exit_code=closed.exit_code,
        state_dir=state_dir,
        stopped=closed.ending.stopped,
        exported=closed.exported,
        **closed.ending.fields,
    )


@dataclass(frozen=True)
class Executed:
    hard: bool  # stopped at once: no results are written
    signal: int | None  # the signal that stopped it (the exit code is 128 + it)


async def execute(backend: Backend, stop: Stop | None, progress: Progress) -> Executed:
    """Run the backend in a task of its own, stopping it as `stop` asks: the first request stops
    new work and gives the work in flight GRACE_S, a second (or the end of the grace) cancels it.
    Cancelling the caller's task cancels the backend too, and is passed on."""
    task = asyncio.create_task(backend.run())
    if stop is None:
        await task
        return Executed(False, None)
    loop = asyncio.get_running_loop()
    ours: list[asyncio.TimerHandle | None] = []  # the stop began: cancelling the task is then ours

    def asked() -> None:
        if task.done():
            return
        first = not ours
        if first:
            backend.stop(stop.reason or "stopped by the caller")
        if stop.hard:
            ours.append(None)
            task.cancel()
        elif first:
            again = "a second Ctrl-C" if stop.signal is not None else "a second stop"
            progress.log("grace", message=f"requests in flight have {GRACE_S:g} s to finish; {again} stops at once")
            ours.append(loop.call_later(GRACE_S, task.cancel))

    forget = stop.listen(asked)
    try:
        await task
    except asyncio.CancelledError:
        if not ours or not task.cancelled():
            raise  # the caller cancelled the run
    finally:
        forget()
        for timer in ours:
            if timer is not None:
                timer.cancel()
    return Executed(bool(ours) and stop.hard, stop.signal if ours else None)


@dataclass(frozen=True)
class _Closed:
    totals: RunTotals
    ending: Ending
    exit_code: int
    exported: bool


def _close(job: Job, store: Store, run_id: int, backend: Backend, executed: Executed) -> _Closed:
    """Close the run's accounts and write its results, report and page (unless it stopped hard,
    or items still wait in open batches). Runs in a worker thread."""
    hard = executed.hard
    backend.wind_up(hard)
    store.count_sent(run_id, backend.sent, backend.retries)
    store.abandon(job.name, run_id, f"not answered: {backend.stopped or 'the run ended'}")
    totals = store.totals(job.name, run_id)
    ending = backend.ending(totals)
    paths = (str(job.results.absolute()), str(job.report.absolute()))
    exported = not hard and ending.pending is None
    groups: list[dict[str, Any]] = []
    if exported:
        try:
            groups = export(store, job.name, run_id, job.results, job.report, job.bom)
        except OutputError:
            store.finish_run(run_id, OutputError.exit_code, "the results could not be written", *paths, totals)
            raise
    if executed.signal is not None:
        exit_code = 128 + executed.signal
    elif ending.pending is not None:
        exit_code = ending.pending
    else:
        exit_code = EXIT_STOPPED if ending.stopped else EXIT_FAILED_ITEMS if totals.failed else EXIT_OK
    store.finish_run(run_id, exit_code, ending.stopped, *paths, totals)
    if exported:
        htmlreport.write_beside(store, run_id, job.report, htmlreport.Sums(totals, groups))
    return _Closed(totals, ending, exit_code, exported)


def _number(store: Store, run_id: int) -> int:
    """The run's number among its job's runs."""
    run = store.run(run_id)
    assert run is not None  # just begun
    return run.number


def announce(progress: Progress, job: Job, number: int, mode: str) -> None:
    """The line a run starts with, for a log read later: the job, the run (its number among the
    job's runs), where it goes, how much."""
    endpoints = sorted({shown_url(p.base_url) for p in (job.provider, *(t.provider for t in job.tasks))})
    progress.log(
        "start",
        message=f"run {number} of {job.name} ({mode}): {count(job.count, 'item')} to {', '.join(endpoints)}",
        run=number,
        items=job.count,
        mode=mode,
        endpoints=endpoints,
    )


def summarize(job: Job, run_id: int, totals: RunTotals, started: float, **fields: Any) -> Summary:
    """A run's summary: its counts, tokens and cost as the store adds them up, and `fields`."""
    return Summary(
        run_id=run_id,
        job=job.name,
        items=totals.items,
        ok=totals.ok,
        failed=totals.failed,
        skipped=totals.skipped,
        failed_transient=totals.failed_transient,
        prompt_tokens=totals.prompt_tokens,
        completion_tokens=totals.completion_tokens,
        cost_usd=totals.cost_usd,
        spent_usd=totals.spent_usd,
        elapsed_s=time.monotonic() - started,
        results=job.results,
        report=job.report,
        **fields,
    )
