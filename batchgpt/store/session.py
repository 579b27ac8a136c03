"""The open store's connection: its write transaction, and the item writes that wait to run as one
executemany each (a third of the per-item cost of a statement apiece).

Enrolments and answers are queued; a statement runs them first, so it sees every write made
before it, and a commit runs them before it commits. An item enrolled as pending is held apart
until it is answered, so its row is written once, whole: a pending row needs no durability (a
killed run sends a pending item again, as it would one with no row), so only a statement, never a
commit, writes these first.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from typing import Any

from batchgpt.records import Request, Result

from .encoding import encode, kept_json
from .endpoint import endpoint_of

_ENROL = """INSERT INTO items (job, id, seq, run_id, task, type, model, hash, status, error, kept, turn, endpoint)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (job, id) DO UPDATE SET seq = excluded.seq, run_id = excluded.run_id,
                   task = excluded.task, type = excluded.type, model = excluded.model, hash = excluded.hash,
                   kept = excluded.kept, turn = excluded.turn, endpoint = excluded.endpoint,
                   status = excluded.status, error = excluded.error, output = NULL, output_json = 0, details = NULL,
                   -- a body sent again in batches counts its submissions; online, each run counts afresh
                   attempts = CASE WHEN items.mode = 'batch' AND items.hash = excluded.hash
                                   THEN items.attempts ELSE 0 END,
                   transient = 0, batch = NULL, batch_line = NULL, mode = 'online',
                   prompt_tokens = NULL, completion_tokens = NULL, cached_tokens = 0, reasoning_tokens = 0,
                   cost_usd = NULL, latency_s = NULL, ttft_s = NULL, answered = NULL, fields = NULL, retried = NULL"""
_ANSWERED_COLUMNS = (
    "status output output_json prompt_tokens completion_tokens cached_tokens reasoning_tokens cost_usd attempts "
    "latency_s ttft_s error answered details transient mode reasks fields retried"
).split()
_ANSWER_COLUMNS = "job id seq run_id task type model hash kept turn endpoint".split() + _ANSWERED_COLUMNS
_ANSWER = f"""INSERT INTO items ({", ".join(_ANSWER_COLUMNS)}) VALUES ({", ".join("?" * len(_ANSWER_COLUMNS))})
               ON CONFLICT (job, id) DO UPDATE SET batch = NULL, batch_line = NULL,
                   {", ".join(f"{c} = excluded.{c}" for c in _ANSWER_COLUMNS[2:])}"""
_RECORD = """UPDATE items SET status = ?, output = ?, output_json = ?, prompt_tokens = ?, completion_tokens = ?,
                   cached_tokens = ?, reasoning_tokens = ?, cost_usd = ?, attempts = ?, latency_s = ?, ttft_s = ?,
                   error = ?, answered = ?, details = ?, transient = ?, mode = ?, reasks = ?, fields = ?,
                   retried = ?
               WHERE job = ? AND id = ?"""


class Session:
    def __init__(self, db: sqlite3.Connection):
        self.db = db
        self._in_transaction = False
        self._enrolled: list[tuple[Any, ...]] = []  # _ENROL rows
        self._answered: list[tuple[Any, ...]] = []  # (_ANSWER or _RECORD, its row)
        self._pending: dict[tuple[str, str], tuple[Any, ...]] = {}  # (job, id): an _ENROL row held until answered

    def close(self) -> None:
        self.commit()
        self.db.close()

    def begin(self) -> None:
        # IMMEDIATE takes the write lock up front: a deferred transaction that reads first cannot
        # wait its turn to write once another process has written, and fails with "locked".
        if not self._in_transaction:
            self.db.execute("BEGIN IMMEDIATE")
            self._in_transaction = True

    def commit(self) -> None:
        self._flush()
        if self._in_transaction:
            self.db.execute("COMMIT")
            self._in_transaction = False

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> sqlite3.Cursor:
        self._settle()  # a statement sees every write made before it
        return self.db.execute(sql, parameters)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> sqlite3.Cursor:
        self._settle()
        return self.db.executemany(sql, rows)

    def enrol(self, run_id: int, job: str, request: Request, status: str, error: str | None) -> None:
        """Queue an item's row in this run as `status`: pending (held until it is answered) or
        settled (skipped, with its reason)."""
        row = (
            job,
            request.id,
            request.seq,
            run_id,
            request.task,
            request.type,
            request.model,
            request.hash,
            status,
            error,
            kept_json(request),
            request.turn,
            endpoint_of(request),
        )
        self._pending.pop((job, request.id), None)
        if status == "pending":
            self._pending[(job, request.id)] = row
        else:
            self._enrolled.append(row)

    def drop(self, job: str, item: str) -> None:
        """Forget an item's pending row: an answer found in the store takes its place."""
        self._pending.pop((job, item), None)

    def answer(self, job: str, result: Result) -> None:
        """Queue an answer. It is durable, and counts as done, only after the next commit()."""
        output, kind = encode(result.output)
        details = None if result.details is None else json.dumps(result.details, ensure_ascii=False)
        # a structured answer's fields become columns the way kept item fields do
        fields = None if result.fields is None else json.dumps(result.fields, ensure_ascii=False)
        values = (
            result.status,
            output,
            kind,
            result.prompt_tokens,
            result.completion_tokens,
            result.cached_tokens,
            result.reasoning_tokens,
            result.cost_usd,
            result.attempts,
            result.latency_s,
            result.ttft_s,
            result.error,
            time.time(),
            details,
            result.transient,
            result.mode,
            result.reasks,
            fields,
            json.dumps(result.retried) if result.retried else None,
        )
        enrolled = self._pending.pop((job, result.id), None)
        if enrolled is None:
            self._answered.append((_RECORD, *values, job, result.id))
        else:  # its row written once, whole: the enrolment's columns but status and error, then the answer's
            self._answered.append((_ANSWER, *enrolled[:8], *enrolled[10:], *values))

    def _settle(self) -> None:
        """Write the pending rows too, then everything queued."""
        if self._pending:
            self._enrolled.extend(self._pending.values())
            self._pending.clear()
        self._flush()

    def _flush(self) -> None:
        """Run the queued enrolments, then the queued answers, each as one executemany. Enrolments
        go first: an item is enrolled before it is sent, so before it is answered, and a run enrols
        and answers an item at most once; so this order is the order they were made in."""
        if self._enrolled:
            self.begin()
            enrolled, self._enrolled = self._enrolled, []
            self.db.executemany(_ENROL, enrolled)
        if self._answered:
            self.begin()
            answered, self._answered = self._answered, []
            for sql in (_ANSWER, _RECORD):  # rows written whole, then answers to rows already there
                rows = [row[1:] for row in answered if row[0] == sql]
                if rows:
                    self.db.executemany(sql, rows)
