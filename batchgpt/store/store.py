"""The Store: the run state in SQLite, the one object other layers receive. It holds every item's
request hash, status and answer, and every run's summary; it is the source of truth, so results and
reports exported from it are always whole, and a rerun skips what is already answered.

The Store only opens state.db and hands each call to the part that owns it:
- schema.py: the file, its migrations, opening it;  session.py: the transaction and queued writes;
- runs.py: runs and their totals;  items.py: enrolling requests, finding their answers;
- aside.py: answers kept aside;  batchrows.py: Batch API batches;
- results.py: a run's rows for export;  report.py: the HTML report's sums.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any

from batchgpt.records import ErrorGroups, Request, Result, SlowItem, Timeline

from .batchrows import Batches, BatchRow, WaitingItem
from .items import Items
from .report import Report
from .results import Results
from .runs import RunInfo, Runs, RunTotals
from .schema import open_db
from .session import Session


class Store:
    """The run state of every job in one state directory (see the module's docstring)."""

    def __init__(self, directory: Path, write: bool = True):
        """`write=False` for a store only read (runs, export): one in a read-only file still is."""
        self.directory = directory
        self._db = open_db(directory, write)  # kept for tests and bench/resume.py, which look at the file's tables
        self._session = Session(self._db)
        self._runs = Runs(self._session)
        self._items = Items(self._session)
        self._batches = Batches(self._session)
        self._results = Results(self._session)
        self._report = Report(self._session)

    def close(self) -> None:
        self._session.close()

    def commit(self) -> None:
        self._session.commit()

    # runs (runs.py)

    def begin_run(self, job: str, job_path: str | None, endpoints: Sequence[str] = ()) -> int:
        return self._runs.begin(job, job_path, endpoints)

    def totals(self, job: str, run_id: int) -> RunTotals:
        return self._runs.totals(job, run_id)

    def finish_run(
        self, run_id: int, exit_code: int, stopped: str | None, results: str, report: str, totals: RunTotals
    ) -> None:
        self._runs.finish(run_id, exit_code, stopped, results, report, totals)

    def count_sent(self, run_id: int, sent: int, retries: Mapping[str, int]) -> None:
        self._runs.count_sent(run_id, sent, retries)

    def runs(self, job: str | None = None, limit: int = 50) -> list[RunInfo]:
        return self._runs.listed(job, limit)

    def run(self, run_id: int) -> RunInfo | None:
        return self._runs.run(run_id)

    def numbered(self, number: int, job: str | None = None) -> list[RunInfo]:
        return self._runs.numbered(number, job)

    def latest_run_of(self, job: str, run_id: int) -> int:
        return self._runs.latest_run_of(job, run_id)

    def latest_run_at(self, job: str, base_url: str) -> int | None:
        return self._runs.latest_run_at(job, base_url)

    # items (items.py), answers (session.py)

    def claim(self, run_id: int, job: str, request: Request, retry_failed: bool = False) -> bool:
        return self._items.claim(run_id, job, request, retry_failed)

    def enrol(self, run_id: int, job: str, request: Request, retry_failed: bool = False) -> str:
        return self._items.enrol(run_id, job, request, retry_failed)

    def expect(self, job: str, ids: AbstractSet[int]) -> None:
        self._items.expect(job, ids)

    def skip(self, run_id: int, job: str, request: Request, reason: str) -> None:
        self._items.skip(run_id, job, request, reason)

    def keep(self, run_id: int, job: str, request: Request) -> None:
        self._items.keep(run_id, job, request)

    def walk_again(self, job: str, run_id: int) -> None:
        self._items.walk_again(job, run_id)

    def record(self, job: str, result: Result) -> None:
        self._session.answer(job, result)

    def abandon(self, job: str, run_id: int, reason: str) -> None:
        self._items.abandon(job, run_id, reason)

    def answer(self, job: str, item: str) -> Any:
        return self._items.answer(job, item)

    def forget(self, job: str) -> int:
        return self._items.forget(job)

    # batches (batchrows.py)

    def add_batch(self, row: BatchRow, ids: list[str]) -> None:
        self._batches.add(row, ids)

    def update_batch(self, intent: str, **changes: Any) -> None:
        self._batches.update(intent, **changes)

    def batches(self, job: str | None = None, open_only: bool = False) -> list[BatchRow]:
        return self._batches.listed(job, open_only)

    def batch_items(self, intent: str) -> list[WaitingItem]:
        return self._batches.waiting(intent)

    def release(self, intent: str, status: str, error: str, transient: bool = True) -> int:
        return self._batches.release(intent, status, error, transient)

    # a run's rows for export (results.py)

    def stored_results(self, job: str, run_id: int, batch: int = 5000) -> Iterator[tuple[Any, ...]]:
        return self._results.stored_results(job, run_id, batch)

    def results(self, job: str, run_id: int) -> Iterator[dict[str, Any]]:
        return self._results.results(job, run_id)

    def kept_columns(self, job: str, run_id: int) -> list[tuple[str, str]]:
        return self._results.kept_columns(job, run_id)

    def groups(self, job: str, run_id: int) -> list[dict[str, Any]]:
        return self._results.groups(job, run_id)

    def answered_before(self, job: str, run_id: int, since: float) -> int:
        return self._results.answered_before(job, run_id, since)

    # the HTML report (report.py)

    def timeline(self, job: str, run_id: int, since: float, until: float, points: int) -> Timeline:
        return self._report.timeline(job, run_id, since, until, points)

    def error_groups(self, job: str, run_id: int, status: str, kinds: int, examples: int) -> ErrorGroups:
        return self._report.error_groups(job, run_id, status, kinds, examples)

    def retry_groups(self, job: str, run_id: int, kinds: int, examples: int) -> ErrorGroups:
        return self._report.retry_groups(job, run_id, kinds, examples)

    def slowest(self, job: str, run_id: int, since: float, until: float, limit: int) -> list[SlowItem]:
        return self._report.slowest(job, run_id, since, until, limit)
