"""Runs: each run of a job opens a row in `runs` and closes it with its totals, the one place its
counts, tokens and costs are added up; `runs`, `export` and the report read them back."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from batchgpt.records import shown_url

from .aside import rows_of, spent_aside
from .session import Session


@dataclass(frozen=True)
class RunTotals:
    items: int
    ok: int
    failed: int
    failed_transient: int  # of `failed`: sent again by a plain rerun
    skipped: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None  # the job's: every answer its items hold, from this run or earlier ones
    submitted: int = 0  # waiting in open Batch API batches
    spent_usd: float | None = 0.0  # this run's: the answers it received


@dataclass(frozen=True)
class RunInfo:
    id: int
    job: str
    job_path: str | None
    started: float
    finished: float | None
    exit_code: int | None
    items: int | None
    ok: int | None
    failed: int | None
    skipped: int | None
    sent: int | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None
    results: str | None
    report: str | None
    stopped: str | None
    retries: str | None  # JSON: retries by cause
    spent_usd: float | None  # what this run's answers cost (cost_usd: the job's total)
    endpoint: str | None  # where it sent: "<kind> <base URL>", several joined by ", "; None before they were kept
    number: int  # the job's own count of its runs, from 1: what people call it (`id` is the store's row)


class Runs:
    def __init__(self, session: Session):
        self._session = session

    def _rows(self, job: str, run_id: int) -> str:
        return rows_of(self._session, job, run_id)

    def begin(self, job: str, job_path: str | None, endpoints: Sequence[str] = ()) -> int:
        """A new run of `job`; `endpoints`: where it sends (endpoint_of), shown by `runs`."""
        # numbered in the one statement: a run of another job beginning at once cannot take its number
        cursor = self._session.execute(
            """INSERT INTO runs (job, job_path, started, pid, endpoint, number)
               VALUES (?, ?, ?, ?, ?, (SELECT COALESCE(MAX(number), 0) + 1 FROM runs WHERE job = ?))""",
            (job, job_path, time.time(), os.getpid(), ", ".join(endpoints) or None, job),
        )
        return int(cursor.lastrowid or 0)

    def totals(self, job: str, run_id: int) -> RunTotals:
        """The run's counts, tokens and cost: the one place they are added up. The cost is None
        (unknown), never a partial sum, when an answered item has no cost."""
        self._session.commit()
        row = self._session.execute(
            f"""SELECT COUNT(*), SUM(status = 'ok'), SUM(status = 'error'), SUM(status = 'error' AND transient = 1),
                      SUM(status = 'skipped'), SUM(prompt_tokens), SUM(completion_tokens),
                      CASE WHEN SUM(status = 'ok' AND cost_usd IS NULL) > 0 THEN NULL
                           ELSE COALESCE(SUM(cost_usd), 0) END,
                      SUM(status = 'submitted'),
                      CASE WHEN SUM(answered >= (SELECT started FROM runs WHERE id = ?)
                                   AND status = 'ok' AND cost_usd IS NULL) > 0
                           THEN NULL
                           ELSE COALESCE(SUM(CASE WHEN answered >= (SELECT started FROM runs WHERE id = ?)
                                                  THEN cost_usd END), 0) END
               FROM {self._rows(job, run_id)} WHERE job = ? AND run_id = ?""",
            (run_id, run_id, job, run_id),
        ).fetchone()
        items, ok, failed, transient, skipped, prompt, completion, cost, submitted, spent = row
        aside_usd, unpriced = spent_aside(self._session, job, run_id)
        spent = None if spent is None or unpriced else spent + (aside_usd or 0.0)
        return RunTotals(
            items,
            ok or 0,
            failed or 0,
            transient or 0,
            skipped or 0,
            prompt or 0,
            completion or 0,
            cost,
            submitted or 0,
            spent,
        )

    def finish(
        self, run_id: int, exit_code: int, stopped: str | None, results: str, report: str, totals: RunTotals
    ) -> None:
        self._session.execute(
            """UPDATE runs SET finished = ?, exit_code = ?, items = ?, ok = ?, failed = ?, skipped = ?,
                      prompt_tokens = ?, completion_tokens = ?, cost_usd = ?, stopped = ?, results = ?, report = ?,
                      spent_usd = ?
               WHERE id = ?""",
            (
                time.time(),
                exit_code,
                totals.items,
                totals.ok,
                totals.failed,
                totals.skipped,
                totals.prompt_tokens,
                totals.completion_tokens,
                totals.cost_usd,
                stopped,
                results,
                report,
                totals.spent_usd,
                run_id,
            ),
        )

    def count_sent(self, run_id: int, sent: int, retries: Mapping[str, int]) -> None:
        """Requests the run sent, and its retries by cause."""
        self._session.execute(
            "UPDATE runs SET sent = ?, retries = ? WHERE id = ?",
            (sent, json.dumps(dict(sorted(retries.items()))), run_id),
        )

    def listed(self, job: str | None = None, limit: int = 50) -> list[RunInfo]:
        where, args = ("WHERE job = ?", (job,)) if job else ("", ())
        rows = self._session.execute(
            f"SELECT {', '.join(RunInfo.__dataclass_fields__)} FROM runs {where} ORDER BY id DESC LIMIT ?",
            (*args, limit),
        ).fetchall()
        return [RunInfo(*row) for row in rows]

    def latest_run_of(self, job: str, run_id: int) -> int:
        """The newest run of `job` that holds its items as `run_id` left them: `run_id`, or a later
        run at the same endpoint that took them over (a run elsewhere sets them aside instead, and
        its items are its own). A run from before endpoints were kept matches any."""
        row = self._session.execute(
            """SELECT MAX(later.id) FROM runs AS later, runs AS this
               WHERE this.id = ? AND later.job = ? AND later.id > this.id
                   AND (later.endpoint IS this.endpoint OR later.endpoint IS NULL OR this.endpoint IS NULL)
                   AND (EXISTS (SELECT 1 FROM items WHERE job = later.job AND run_id = later.id)
                        OR EXISTS (SELECT 1 FROM answers WHERE job = later.job AND run_id = later.id))""",
            (run_id, job),
        ).fetchone()
        return int(row[0] or run_id)

    def numbered(self, number: int, job: str | None = None) -> list[RunInfo]:
        """The runs numbered `number`: `job`'s, or every job's that has one."""
        where, args = ("AND job = ?", (job,)) if job else ("", ())
        rows = self._session.execute(
            f"SELECT {', '.join(RunInfo.__dataclass_fields__)} FROM runs WHERE number = ? {where} ORDER BY id",
            (number, *args),
        ).fetchall()
        return [RunInfo(*row) for row in rows]

    def run(self, run_id: int) -> RunInfo | None:
        row = self._session.execute(
            f"SELECT {', '.join(RunInfo.__dataclass_fields__)} FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
        return RunInfo(*row) if row else None

    def latest_run_at(self, job: str, base_url: str) -> int | None:
        """The latest run of `job` that sent to `base_url` (of any provider kind), if any."""
        wanted = shown_url(base_url).rstrip("/")
        for run_id, used in self._session.execute(
            "SELECT id, endpoint FROM runs WHERE job = ? AND endpoint IS NOT NULL ORDER BY id DESC", (job,)
        ).fetchall():
            if any(named.partition(" ")[2].rstrip("/") == wanted for named in used.split(", ")):
                return int(run_id)
        return None
