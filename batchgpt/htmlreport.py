"""The HTML run report: the one self-contained page a person opens after a run, and where it goes.

This module reads the page's figures from the store (gather) and writes the page (write,
write_beside); what the page shows and how is htmlpage.py's, its charts and CSS htmlcharts.py's.

Its size does not grow with the job: the time series has at most MAX_POINTS slices and every
table a fixed number of rows. The sums behind them are the store's (SQL over the rows, streamed),
so a 1,000,000-item run costs no more memory here than a small one.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import OutputError
from .files import atomic_write
from .htmlcharts import CSS
from .htmlpage import CostRow, RunReport, render
from .records import ErrorGroups
from .store import RunInfo, RunTotals, Store

__all__ = ["CSS", "CostRow", "RunReport", "Sums", "beside", "gather", "render", "write", "write_beside"]

log = logging.getLogger(__name__)
MAX_POINTS = 120  # slices of the time series: enough to see a rate limit bite, few enough to stay small
ERROR_KINDS = 12  # kinds of error shown; the rest are counted
EXAMPLES = 3  # items shown for each kind
SLOWEST = 10
FOREVER = 1e18  # the end of a run still going: every answer from its start on is its own
NO_GROUPS = ErrorGroups(0, 0, ())  # a run with no failed (or skipped) items: nothing to look up


@dataclass(frozen=True)
class Sums:
    """A run's totals and report groups (store.totals, store.groups), as a run that has just
    ended has added them up already."""

    totals: RunTotals
    groups: list[dict[str, Any]]


def beside(report: Path) -> Path:
    """Where a run's page goes: beside its report, named after it (out/t-report.csv: out/t-report.html)."""
    return report.with_suffix(".html")


def gather(store: Store, run: RunInfo, sums: Sums | None = None) -> RunReport:
    """The page's figures for `run`, all added up by the store. Counts, tokens and the job's cost
    are those of the job's items as they stand now (a later run may have taken them over), as
    `batchgpt export` writes them; the time series and the slowest items are this run's answers.
    `sums`: the run's totals and report groups, when the caller has just added them up."""
    items_run = store.latest_run_of(run.job, run.id)
    if sums is None or items_run != run.id:
        sums = Sums(store.totals(run.job, items_run), store.groups(run.job, items_run))
    totals = sums.totals
    until = run.finished if run.finished is not None else FOREVER
    retries = json.loads(run.retries) if run.retries else {}
    return RunReport(
        run=run,
        items_run=run.number if items_run == run.id else _number(store, items_run),
        totals=totals,
        # a finished run (or one taken over by a later one) keeps what it spent in its own row
        spent_usd=totals.spent_usd if items_run == run.id and run.finished is None else run.spent_usd,
        costs=tuple(_cost_row(group) for group in sums.groups),
        timeline=store.timeline(run.job, items_run, run.started, until, MAX_POINTS),
        retries=tuple(sorted(((str(k), int(v)) for k, v in retries.items()), key=lambda kv: (-kv[1], kv[0]))),
        errors=_error_groups(store, run.job, items_run, "error") if totals.failed else NO_GROUPS,
        skipped=_error_groups(store, run.job, items_run, "skipped") if totals.skipped else NO_GROUPS,
        # looked up only when the run retried: a run without retries has no stories to tell
        histories=store.retry_groups(run.job, items_run, ERROR_KINDS, EXAMPLES) if retries else NO_GROUPS,
        slowest=tuple(store.slowest(run.job, items_run, run.started, until, SLOWEST)),
        generated=time.time(),
    )


def _number(store: Store, run_id: int) -> int:
    """A run's number among its job's runs (the run is in the store: it holds items)."""
    later = store.run(run_id)
    return run_id if later is None else later.number


def _error_groups(store: Store, job: str, run_id: int, status: str) -> ErrorGroups:
    return store.error_groups(job, run_id, status, ERROR_KINDS, EXAMPLES)


def _cost_row(group: Mapping[str, Any]) -> CostRow:
    """A report row (store.groups, records.GROUP_COLUMNS) as the page shows it."""
    return CostRow(
        task=group["task"],
        model=group["model"],
        mode=group["mode"],
        requests=group["requests"],
        succeeded=group["succeeded"] or 0,
        failed=group["failed"] or 0,
        skipped=group["skipped"] or 0,
        tokens=(group["prompt_tokens"] or 0) + (group["completion_tokens"] or 0),
        cost_usd=group["cost_usd"],
        cost_usd_this_run=group["cost_usd_this_run"],
    )


def write(path: Path, report: RunReport) -> None:
    """Write the page (atomically, as every output: never half a page)."""
    with atomic_write(path) as handle:
        handle.write(render(report))


def write_beside(store: Store, run_id: int, report_path: Path, sums: Sums | None = None) -> None:
    """A run's page beside its report, once the run is finished (so the page has its exit code and
    why it stopped). The results and report are written by then: a page that cannot be written is
    a warning, not a failed run."""
    run = store.run(run_id)
    if run is None:  # a run begun in this store always has its row
        return
    try:
        write(beside(report_path), gather(store, run, sums))
    except OutputError as exc:
        log.warning("the HTML page was not written: %s", exc)
