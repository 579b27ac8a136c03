"""The Python API: validate and run jobs from a notebook, an async web app or an Airflow task, without
the CLI. `arun` runs on the caller's event loop; `run` works with or without one."""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from pathlib import Path
from typing import Any

from .errors import JobError, Problem, StateError, UsageError
from .jobs import Job, Overrides, checked, load
from .lifecycle import RunOptions, Summary, arun_job
from .records import shown_url
from .runoptions import Stop
from .store import RunInfo, Store
from .words import command


def validate(*sources: str | os.PathLike[str] | Mapping[str, Any], model: str | None = None) -> list[Problem]:
    """Every problem in the given job files (or job dicts); an empty list means all are valid.
    `model` is the default for items that name none, as `--model` is for a run."""
    problems: list[Problem] = []
    for source in sources:
        try:
            load(source, Overrides(model=model))
        except JobError as exc:
            problems.extend(exc.problems)
    return problems


def load_job(source: str | os.PathLike[str] | Mapping[str, Any], **settings: Any) -> Job:
    known = {f.name for f in fields(Overrides)}
    unknown = set(settings) - known
    if unknown:
        raise TypeError(f"unknown setting(s) {', '.join(sorted(unknown))}; use {', '.join(sorted(known))}")
    return load(source, Overrides(**settings))


async def arun(
    source: str | os.PathLike[str] | Mapping[str, Any],
    *,
    state_dir: str | os.PathLike[str] | None = None,
    fresh: bool = False,
    retry_failed: bool = False,
    progress: bool = False,
    stop: Stop | None = None,
    **settings: Any,
) -> Any:  # a pandas DataFrame: pandas is tables.py's alone, so it is not named here
    """Run a job on the running event loop and return its results as a pandas DataFrame, as `run`
    does. The loop is never blocked for long: reading the job, opening the state, writing the
    results and reading them back happen in worker threads. `stop` (a batchgpt.Stop) asks the run
    to stop: `stop.request()` lets requests in flight finish, `stop.now()` ends them at once.
    Cancelling the task ends the run at once, writing no results."""
    job = await asyncio.to_thread(load_job, source, **settings)
    options = RunOptions(
        state_dir=Path(state_dir) if state_dir else None, fresh=fresh, retry_failed=retry_failed, progress=progress
    )
    summary = await arun_job(job, options, stop)
    frame = await asyncio.to_thread(_frame, job, summary)
    frame.attrs["summary"] = summary
    return frame


def run(
    source: str | os.PathLike[str] | Mapping[str, Any],
    *,
    state_dir: str | os.PathLike[str] | None = None,
    fresh: bool = False,
    retry_failed: bool = False,
    progress: bool = False,
    stop: Stop | None = None,
    **settings: Any,
) -> Any:  # a pandas DataFrame: pandas is tables.py's alone, so it is not named here
    """Run a job and return its results as a pandas DataFrame, one row per item in input order.

    `settings` are the command-line overrides: out, report, base_url, concurrency, rpm, tpm,
    max_retries, timeout, model, budget, shared_limits, mode ("batch": through the Batch API; the
    frame then holds `submitted` rows until a later run collects them), bom (CSV files for Excel).
    Raises JobError for an invalid job (nothing is sent).
    The run's summary is in the frame's `attrs["summary"]`.

    It works from a script, from any thread, and from inside a running event loop (a notebook
    cell: the run gets a fresh loop in a worker thread, and the cell waits for it). It leaves the
    process as it found it: no signal handler, gc setting or event loop of the caller's is changed.
    """

    def whole() -> Any:
        return asyncio.run(
            arun(
                source,
                state_dir=state_dir,
                fresh=fresh,
                retry_failed=retry_failed,
                progress=progress,
                stop=stop,
                **settings,
            )
        )

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return whole()
    with ThreadPoolExecutor(1, thread_name_prefix="batchgpt-run") as pool:
        return pool.submit(whole).result()


def _frame(job: Job, summary: Summary) -> Any:
    """The run's results as a DataFrame, from the store."""
    from . import tables

    store = Store(summary.state_dir)
    try:
        return tables.dataframe(
            store.results(job.name, summary.run_id), job.name, store.kept_columns(job.name, summary.run_id)
        )
    finally:
        store.close()


def list_runs(state_dir: Path, job: Path | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """Past runs, newest first, as rows for a table."""
    store = _existing_store(state_dir)
    try:
        rows = []
        for run in store.runs(_job_name(job), limit):
            duration = None if run.finished is None else round(run.finished - run.started, 1)
            rows.append(
                {
                    "run": run.number,  # the job's own count: several jobs may share the store
                    "job": run.job,
                    "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run.started)),
                    "seconds": duration,
                    "items": run.items,
                    "ok": run.ok,
                    "failed": run.failed,
                    "skipped": run.skipped,
                    "job_tokens": (run.prompt_tokens or 0) + (run.completion_tokens or 0),  # as job_cost_usd
                    "spent_usd": run.spent_usd,  # this run's answers
                    "job_cost_usd": run.cost_usd,  # every answer the job's items hold
                    "endpoint": run.endpoint or "",  # where it sent: its answers are kept apart from other endpoints
                    "retries": _retries(run.retries),
                    "exit": run.exit_code if run.exit_code is not None else "running?",
                }
            )
        return rows
    finally:
        store.close()


def list_batches(state_dir: Path, job: Path | None = None, every: bool = False) -> list[dict[str, Any]]:
    """The Batch API batches recorded here (open ones, or `every` one), oldest first, as rows."""
    store = _existing_store(state_dir)
    try:
        rows = []
        numbers: dict[int, int | None] = {}  # run id -> its number in its job
        for batch in store.batches(_job_name(job), open_only=not every):
            counts = json.loads(batch.counts) if batch.counts else {}
            if batch.run_id not in numbers:
                run = store.run(batch.run_id)
                numbers[batch.run_id] = None if run is None else run.number
            rows.append(
                {
                    "batch": batch.batch_id or f"(intent {batch.intent[:8]})",
                    "job": batch.job,
                    "run": numbers[batch.run_id],
                    "model": batch.model,
                    "status": batch.status + (" (collected)" if batch.collected else ""),
                    "requests": counts.get("total", batch.lines),
                    "completed": counts.get("completed", 0),
                    "failed": counts.get("failed", 0),
                    "created": _when(batch.created),
                    "ends": _when(batch.ends),
                }
            )
        return rows
    finally:
        store.close()


def _job_name(job: Path | None) -> str | None:
    """The name a job file's runs are stored under (its stem, when the file is gone)."""
    if job is None:
        return None
    if not job.exists():
        return job.stem
    loaded, problems = checked(job)  # said in silence: a model without a price is the run's to warn of
    problems.raise_any()
    assert loaded is not None  # no problems: the job was built
    return loaded.name


def _when(epoch: float | None) -> str:
    return "" if epoch is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def _retries(recorded: str | None) -> str:
    """'HTTP 429: 12, timeout: 2' from the run's JSON; '' for none (or a run from before they were kept)."""
    counts = json.loads(recorded) if recorded else {}
    return ", ".join(f"{cause}: {n:,}" for cause, n in counts.items())


def export_run(
    state_dir: Path,
    run_ref: str | Path,
    out: Path | None = None,
    report_path: Path | None = None,
    base_url: str | None = None,
    bom: bool = False,
    run: int | None = None,
) -> tuple[RunInfo, Path, Path]:
    """Export a run's results and report again from the store: (run, results path, report path).
    `run_ref` is a run number, a job name (its latest run) or a job file (Path: its latest run);
    `run`: the job's run of that number instead (each job numbers its own runs); `base_url`: the
    answers of the job's latest run against that endpoint instead, wherever the store keeps them
    now (a later run elsewhere set them aside); `bom`: CSV files begin with a byte-order mark, for
    Excel (output.bom)."""
    from . import htmlreport
    from .jobs import REPORT_SUFFIXES, RESULT_SUFFIXES
    from .tables import export

    for option, path, suffixes in (("--out", out, RESULT_SUFFIXES), ("--report", report_path, REPORT_SUFFIXES)):
        if path is not None and path.suffix.lower() not in suffixes:
            raise UsageError(f"{option} {path}: use a {' or '.join(suffixes)} file")
    store = _existing_store(state_dir)
    try:
        info = _find_run(store, state_dir, run_ref, run)
        results = Path(info.results or f"{info.job}.csv")
        report_file = Path(info.report or f"{info.job}-report.csv")
        if base_url is not None:  # never over the files of the job's latest run: beside them, named for the endpoint
            info = _run_at(store, info.job, base_url)
            results, report_file = (_named_for(path, base_url) for path in (results, report_file))
        results, report_file = out or results, report_path or report_file
        latest = info.id if base_url is not None else store.latest_run_of(info.job, info.id)
        export(store, info.job, latest, results, report_file, bom)
        htmlreport.write_beside(store, latest, report_file)
        return info, results, report_file
    finally:
        store.close()


def html_report(
    state_dir: Path, run_ref: str | Path, path: Path | None = None, run: int | None = None
) -> tuple[RunInfo, Path]:
    """Write a run's HTML page (default: beside its report, as the run wrote it): (run, page path).
    `run_ref` and `run` as export_run takes them."""
    from . import htmlreport

    store = _existing_store(state_dir)
    try:
        info = _find_run(store, state_dir, run_ref, run)
        page = path or htmlreport.beside(Path(info.report or f"{info.job}-report.csv"))
        htmlreport.write(page, htmlreport.gather(store, info))
        return info, page
    finally:
        store.close()


def _find_run(store: Store, state_dir: Path, run_ref: str | Path, number: int | None = None) -> RunInfo:
    """A job's run `number`, else its latest run; the job by name, or by its file (a Path). A bare
    number names a run when only one job in the store has a run of that number."""
    ref = str(_job_name(run_ref) if isinstance(run_ref, Path) else run_ref)
    listing = command("runs", state=state_dir)
    if number is not None:
        found = store.numbered(number, ref)
        if not found:
            raise UsageError(f"job {ref!r} has no run {number} in {state_dir}: `{listing}` lists them")
        return found[0]
    if not ref.isdigit():
        info = next(iter(store.runs(ref, 1)), None)
        if info is None:
            raise UsageError(f"no run of {ref!r} in {state_dir}: `{listing}` lists them")
        return info
    return _only_run(store.numbered(int(ref)), ref, state_dir)


def _only_run(found: list[RunInfo], ref: str, state_dir: Path) -> RunInfo:
    """The one run of that number; which job's, if several jobs have one, is for the caller to say."""
    if len(found) == 1:
        return found[0]
    if not found:
        raise UsageError(f"no run {ref!r} in {state_dir}: `{command('runs', state=state_dir)}` lists them")
    jobs = ", ".join(repr(info.job) for info in found)
    example = command("report", found[0].job, "--run", ref, state=state_dir)
    raise UsageError(f"jobs {jobs} each have a run {ref} (each job numbers its own runs): name the job, `{example}`")


def _named_for(path: Path, base_url: str) -> Path:
    """`out/t.csv` for http://127.0.0.1:8000/v1: `out/t@127.0.0.1_8000.csv`."""
    host = shown_url(base_url).partition("://")[2].partition("/")[0]
    return path.with_name(f"{path.stem}@{re.sub(r'[^A-Za-z0-9.-]+', '_', host)}{path.suffix}")


def _run_at(store: Store, job: str, base_url: str) -> RunInfo:
    found = store.latest_run_at(job, base_url)
    info = None if found is None else store.run(found)
    if info is None:
        used = sorted({e for run in store.runs(job) if run.endpoint for e in run.endpoint.split(", ")})
        known = f"; its runs went to {', '.join(used)}" if used else ""
        raise UsageError(f"no run of {job!r} sent to {shown_url(base_url)}{known}")
    return info


def _existing_store(state_dir: Path) -> Store:
    if not (state_dir / "state.db").is_file():
        raise StateError(
            f"no run state in {state_dir.absolute()}: a run keeps it in .batchgpt/ beside its job file (or in "
            "its --state DIR); name the job file, or that folder with --state"
        )
    return Store(state_dir, write=False)
