"""The Python API: validate and run jobs from a notebook or an Airflow task, without the CLI."""
from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path
from typing import Any, Mapping

from .errors import JobError, Problem
from .jobs import Job, Overrides, load
from .runner import RunOptions, Summary, run_job
from .store import Store


def validate(*sources: str | os.PathLike | Mapping[str, Any]) -> list[Problem]:
    """Every problem in the given job files (or job dicts); an empty list means all are valid."""
    problems: list[Problem] = []
    for source in sources:
        try:
            load(source)
        except JobError as exc:
            problems.extend(exc.problems)
    return problems


def load_job(source: str | os.PathLike | Mapping[str, Any], **settings: Any) -> Job:
    known = {f.name for f in fields(Overrides)}
    unknown = set(settings) - known
    if unknown:
        raise TypeError(f"unknown setting(s) {', '.join(sorted(unknown))}; use {', '.join(sorted(known))}")
    return load(source, Overrides(**settings))


def run(source: str | os.PathLike | Mapping[str, Any], *, state_dir: str | os.PathLike | None = None,
        fresh: bool = False, retry_failed: bool = False, progress: bool = False, **settings: Any):
    """Run a job and return its results as a pandas DataFrame, one row per item in input order.

    `settings` are the command-line overrides: out, report, base_url, concurrency, rpm, tpm,
    max_retries, timeout, model, budget. Raises JobError for an invalid job (nothing is sent).
    The run's summary is in the frame's `attrs["summary"]`.
    """
    from . import report

    job = load_job(source, **settings)
    summary = execute(job, RunOptions(state_dir=Path(state_dir) if state_dir else None, retry_failed=retry_failed,
                                      progress=progress), fresh)
    store = Store(Path(state_dir) if state_dir else job.base_dir / ".batchgpt")
    try:
        frame = report.dataframe(store.results(job.name, summary.run_id), job.name)
    finally:
        store.close()
    frame.attrs["summary"] = summary
    return frame


def execute(job: Job, options: RunOptions, fresh: bool = False) -> Summary:
    if fresh:
        store = Store(options.state_dir or job.base_dir / ".batchgpt")
        store.forget(job.name)
        store.close()
    return run_job(job, options, job.count)
