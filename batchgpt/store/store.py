"""Run state in SQLite: every item's request hash, status and answer, and every run's summary.

The store is the source of truth: results and reports are exported from it, so they are always
whole, and a rerun skips what is already answered. WAL mode with synchronous=NORMAL makes each
answer's commit cheap and safe against a killed process (a power cut may lose the last commits,
which are then simply sent again). Schema changes are numbered migrations on PRAGMA user_version.
"""

from __future__ import annotations

import array
import fcntl
import functools
import json
import os
import re
import shlex
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import files
from ..errors import LockedError, StateError, disk_full, store_write_error
from ..records import (
    GROUP_COLUMNS,
    RESULT_COLUMNS,
    ErrorExample,
    ErrorGroups,
    ErrorKind,
    Provider,
    Request,
    Result,
    SlowItem,
    Timeline,
    TimeSlice,
    shown_url,
)

DB_NAME = "state.db"
BUSY_TIMEOUT_S = 120.0  # transactions are a few milliseconds long; this only outlasts a stuck peer
STATE_DIR = ".batchgpt"  # the default state directory's name, beside the job file
_SQLITE_HEADER = b"SQLite format 3\x00"

MIGRATIONS = (
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        job TEXT NOT NULL,
        job_path TEXT,
        started REAL NOT NULL,
        finished REAL,
        exit_code INTEGER,
        pid INTEGER,
        items INTEGER, ok INTEGER, failed INTEGER, skipped INTEGER, sent INTEGER,
        prompt_tokens INTEGER, completion_tokens INTEGER, cost_usd REAL,
        results TEXT, report TEXT, stopped TEXT
    );
    CREATE TABLE items (
        job TEXT NOT NULL,
        id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        run_id INTEGER NOT NULL,
        task TEXT NOT NULL,
        type TEXT NOT NULL,
        model TEXT NOT NULL,
        hash TEXT NOT NULL,
        status TEXT NOT NULL,
        output TEXT,
        output_json INTEGER NOT NULL DEFAULT 0,
        prompt_tokens INTEGER,
        completion_tokens INTEGER,
        cached_tokens INTEGER NOT NULL DEFAULT 0,
        reasoning_tokens INTEGER NOT NULL DEFAULT 0,
        cost_usd REAL,
        attempts INTEGER NOT NULL DEFAULT 0,
        latency_s REAL,
        ttft_s REAL,
        error TEXT,
        answered REAL,
        PRIMARY KEY (job, id)
    );
    CREATE INDEX items_by_run ON items (job, run_id, seq);
    """,
    # 2: structured extras per answer (moderation scores, a revised image prompt, audio length)
    "ALTER TABLE items ADD COLUMN details TEXT;",
    # 3: whether an error is worth sending again by a plain rerun (the server or the network failed,
    # not the request); errors stored before this are judged by their message
    """
    ALTER TABLE items ADD COLUMN transient INTEGER NOT NULL DEFAULT 0;
    UPDATE items SET transient = 1 WHERE status = 'error' AND (error LIKE 'timeout:%' OR error LIKE 'connection:%'
        OR error LIKE 'malformed:%' OR error LIKE 'HTTP 5%' OR error LIKE 'HTTP 408%' OR error LIKE 'HTTP 409%'
        OR error LIKE 'HTTP 429%' OR error LIKE 'HTTP 401%');
    """,
    # 4: a run's retries by what caused them ({"HTTP 429": 12, "timeout": 2}), as JSON
    "ALTER TABLE runs ADD COLUMN retries TEXT;",
    # 5: Batch API mode. A batch row is written (its intent) before its file is uploaded, and the
    # intent travels in the batch's metadata, so a run killed before it stored the batch's id
    # finds the batch again instead of paying for it twice. An item waiting in a batch is
    # `submitted`, with its batch and its line in the batch's file.
    """
    CREATE TABLE batches (
        intent TEXT PRIMARY KEY,
        job TEXT NOT NULL,
        run_id INTEGER NOT NULL,
        part INTEGER NOT NULL,
        base_url TEXT NOT NULL,
        provider TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        model TEXT NOT NULL,
        lines INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        worst_usd REAL,
        file_id TEXT,
        batch_id TEXT,
        status TEXT NOT NULL,
        counts TEXT,
        created REAL NOT NULL,
        ends REAL,
        collected INTEGER NOT NULL DEFAULT 0,
        message TEXT
    );
    CREATE INDEX batches_by_job ON batches (job, collected);
    ALTER TABLE items ADD COLUMN batch TEXT;
    ALTER TABLE items ADD COLUMN batch_line INTEGER;
    ALTER TABLE items ADD COLUMN mode TEXT NOT NULL DEFAULT 'online';
    CREATE INDEX items_by_batch ON items (batch, batch_line);
    """,
    # 6: the item fields a task's `keep:` copies into its result row, as a JSON object
    "ALTER TABLE items ADD COLUMN kept TEXT;",
    # 7: structured outputs: how many times an answer was asked again to match its schema, and
    # the answer's top-level fields (`columns: true`), written as columns the way kept fields are
    """
    ALTER TABLE items ADD COLUMN reasks INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE items ADD COLUMN fields TEXT;
    """,
    # 8: a conversation's turn (1, 2, ...): each turn is a row of its own, `<item id>#<turn>`
    "ALTER TABLE items ADD COLUMN turn INTEGER;",
    # 9: where an answer came from (provider kind and base URL, without credentials): an answer
    # from one endpoint (a rehearsal on the mock server) never stands in for another's; rows from
    # before this have none and still count
    "ALTER TABLE items ADD COLUMN endpoint TEXT;",
    # 10: what a run spent itself (its answers), beside the job's total (`cost_usd`)
    "ALTER TABLE runs ADD COLUMN spent_usd REAL;",
    # 11: only items sent in batches are looked up by batch: an online answer no longer adds an
    # entry (batch NULL) to that index, one b-tree fewer to write per item
    """
    DROP INDEX items_by_batch;
    CREATE INDEX items_by_batch ON items (batch, batch_line) WHERE batch IS NOT NULL;
    """,
    # 12: a paid answer is never thrown away. An `ok` row that another request takes the place of
    # (a run against another endpoint, an edited item, rows moved in a data file) is kept aside in
    # `answers`, with every column it had, and comes back when the same request, at the same
    # endpoint, appears again under any id. Items are looked up by request too: rows of a data file
    # without ids, inserted, deleted or reordered, find their answers wherever they were. Each run
    # names the endpoints it used.
    """
    CREATE TABLE answers AS SELECT * FROM items WHERE 0;
    CREATE INDEX answers_by_request ON answers (job, hash, endpoint, status);
    CREATE INDEX answers_by_run ON answers (job, run_id);
    CREATE INDEX items_by_request ON items (job, hash, endpoint, run_id);
    ALTER TABLE runs ADD COLUMN endpoint TEXT;
    """,
)
# How `output` is stored (items.output_json): text as is, JSON for structures, and a vector (an
# embedding) as packed float32, a quarter of its JSON size and exact for what the API returns.
TEXT, JSON, VECTOR = 0, 1, 2
SEND, ANSWERED, WAITING = "send", "answered", "waiting"  # what enrolling a request found


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
class BatchRow:
    """One Batch API batch of a job, from the intent to submit it until it is collected."""

    intent: str  # written into the batch's metadata: finds the batch again after a crash
    job: str
    run_id: int  # the run that submitted it
    part: int
    base_url: str  # without credentials (shown_url)
    provider: str  # provider.identity(): which key and settings it was submitted with
    endpoint: str
    model: str
    lines: int
    bytes: int
    worst_usd: float | None
    file_id: str | None = None
    batch_id: str | None = None
    status: str = "intent"  # intent | uploaded | the API's status | abandoned
    counts: str | None = None  # JSON: the API's request_counts
    created: float = 0.0
    ends: float | None = None  # when it ended, or when it expires while open
    collected: bool = False
    message: str | None = None


@dataclass(frozen=True)
class WaitingItem:
    """An item waiting in a batch, as the store knows it (its request may have left the job)."""

    id: str
    batch_line: int
    hash: str
    attempts: int  # submissions so far
    seq: int
    task: str
    type: str
    model: str


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


class Store:
    def __init__(self, directory: Path):
        self.directory = directory
        path = directory / DB_NAME
        try:
            directory.mkdir(parents=True, exist_ok=True)
            files.sweep(directory)  # a new store's temporary that a killed process left
            if not path.exists():
                _create(path)
            _check_file(path)
            self._db = _connect(path)
            _wal(self._db)
            self._db.execute("PRAGMA synchronous=NORMAL")
            # Checkpoints fsync; one per ~40 MB of log instead of SQLite's 4 MB keeps commits cheap.
            self._db.execute("PRAGMA wal_autocheckpoint=10000")
            self._migrate(self._db)
        except (sqlite3.DatabaseError, _NotAStore) as exc:
            raise StateError(_unusable(path, str(exc))) from None
        except OSError as exc:
            raise StateError(_unusable_directory(directory, exc)) from None
        self._in_transaction = False
        # Enrolments and answers wait here for the next statement or commit, which runs them as one
        # executemany each: a third of the per-item cost of a statement apiece.
        self._enrolled: list[tuple[Any, ...]] = []
        self._answered: list[tuple[Any, ...]] = []
        # Items enrolled as pending and not yet written: an answer writes its row once, whole. A
        # pending row needs no durability (a killed run sends a pending item again, as it would
        # one with no row), so only a statement, never a commit, writes these first.
        self._pending: dict[tuple[str, str], tuple[Any, ...]] = {}
        self._has_rows: dict[tuple[str, int], bool] = {}  # (job, run): did the job have rows as the run began
        self._expected: dict[str, AbstractSet[int]] = {}  # job: its items' ids (hash()), where a run said them

    def close(self) -> None:
        self.commit()
        self._db.close()

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> None:
        """Bring the schema up to date. The version is read inside the write transaction, so two
        processes opening a new store at once migrate it once. A store from a newer batchgpt is
        refused untouched; a full disk is said to be one, not taken for a broken store."""
        where = db.execute("PRAGMA database_list").fetchone()[2]
        db.execute("BEGIN IMMEDIATE")
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version == 0 and db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]:
                raise _NotAStore("an SQLite database with tables of its own, not a batchgpt store")
            if version > len(MIGRATIONS):  # its tables mean what this batchgpt cannot know
                from ..version import __version__

                raise StateError(
                    f"the state store {where} was written by a newer batchgpt: its format is version {version}, "
                    f"and batchgpt {__version__} knows formats up to {len(MIGRATIONS)}. Nothing in it was "
                    "changed: upgrade batchgpt to use it, or give this job another --state folder"
                )
            for number, script in enumerate(MIGRATIONS[version:], version + 1):
                for statement in filter(str.strip, script.split(";")):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version={number}")
            db.execute("COMMIT")
        except BaseException as exc:
            if db.in_transaction:  # SQLite ends the transaction itself on a full disk
                db.execute("ROLLBACK")
            if isinstance(exc, StateError):
                db.close()  # nothing of it touched: not even the write-ahead log a connection keeps
            if isinstance(exc, sqlite3.Error) and disk_full(exc):
                raise store_write_error(Path(where).parent, exc) from None
            raise

    def _begin(self) -> None:
        # IMMEDIATE takes the write lock up front: a deferred transaction that reads first cannot
        # wait its turn to write once another process has written, and fails with "locked".
        if not self._in_transaction:
            self._db.execute("BEGIN IMMEDIATE")
            self._in_transaction = True

    def commit(self) -> None:
        self._flush()
        if self._in_transaction:
            self._db.execute("COMMIT")
            self._in_transaction = False

    def _execute(self, sql: str, parameters: Sequence[Any] = ()) -> sqlite3.Cursor:
        self._settle()  # a statement sees every write made before it
        return self._db.execute(sql, parameters)

    def _executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> sqlite3.Cursor:
        self._settle()
        return self._db.executemany(sql, rows)

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
            self._begin()
            enrolled, self._enrolled = self._enrolled, []
            self._db.executemany(_ENROL, enrolled)
        if self._answered:
            self._begin()
            answered, self._answered = self._answered, []
            for sql in (_ANSWER, _RECORD):  # rows written whole, then answers to rows already there
                rows = [row[1:] for row in answered if row[0] == sql]
                if rows:
                    self._db.executemany(sql, rows)

    # ------------------------------------------------------------------ runs

    def begin_run(self, job: str, job_path: str | None, endpoints: Sequence[str] = ()) -> int:
        """A new run of `job`; `endpoints`: where it sends (endpoint_of), shown by `runs`."""
        cursor = self._execute(
            "INSERT INTO runs (job, job_path, started, pid, endpoint) VALUES (?, ?, ?, ?, ?)",
            (job, job_path, time.time(), os.getpid(), ", ".join(endpoints) or None),
        )
        return int(cursor.lastrowid or 0)

    def totals(self, job: str, run_id: int) -> RunTotals:
        """The run's counts, tokens and cost: the one place they are added up. The cost is None
        (unknown), never a partial sum, when an answered item has no cost."""
        self.commit()
        row = self._execute(
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
        aside, unpriced = self._execute(  # answers the run received that a later request set aside
            """SELECT SUM(cost_usd), SUM(status = 'ok' AND cost_usd IS NULL) FROM answers
               WHERE job = ? AND run_id != ? AND answered >= (SELECT started FROM runs WHERE id = ?)
                   AND answered <= COALESCE((SELECT finished FROM runs WHERE id = ?), 1e300)""",
            (job, run_id, run_id, run_id),
        ).fetchone()
        spent = None if spent is None or unpriced else spent + (aside or 0.0)
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

    def finish_run(
        self, run_id: int, exit_code: int, stopped: str | None, results: str, report: str, totals: RunTotals
    ) -> None:
        self._execute(
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
        self._execute(
            "UPDATE runs SET sent = ?, retries = ? WHERE id = ?",
            (sent, json.dumps(dict(sorted(retries.items()))), run_id),
        )

    def runs(self, job: str | None = None, limit: int = 50) -> list[RunInfo]:
        where, args = ("WHERE job = ?", (job,)) if job else ("", ())
        rows = self._execute(
            f"SELECT {', '.join(RunInfo.__dataclass_fields__)} FROM runs {where} ORDER BY id DESC LIMIT ?",
            (*args, limit),
        ).fetchall()
        return [RunInfo(*row) for row in rows]

    def latest_run_of(self, job: str, run_id: int) -> int:
        """The newest run of `job` that holds its items as `run_id` left them: `run_id`, or a later
        run at the same endpoint that took them over (a run elsewhere sets them aside instead, and
        its items are its own). A run from before endpoints were kept matches any."""
        row = self._execute(
            """SELECT MAX(later.id) FROM runs AS later, runs AS this
               WHERE this.id = ? AND later.job = ? AND later.id > this.id
                   AND (later.endpoint IS this.endpoint OR later.endpoint IS NULL OR this.endpoint IS NULL)
                   AND (EXISTS (SELECT 1 FROM items WHERE job = later.job AND run_id = later.id)
                        OR EXISTS (SELECT 1 FROM answers WHERE job = later.job AND run_id = later.id))""",
            (run_id, job),
        ).fetchone()
        return int(row[0] or run_id)

    def run(self, run_id: int) -> RunInfo | None:
        row = self._execute(
            f"SELECT {', '.join(RunInfo.__dataclass_fields__)} FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
        return RunInfo(*row) if row else None

    def _rows(self, job: str, run_id: int) -> str:
        """What holds a run's rows, to select from: `items`, or, when some of them were kept aside
        since (a later run elsewhere took their items), those rows and the rest of `items`."""
        aside = self._execute("SELECT 1 FROM answers WHERE job = ? AND run_id = ? LIMIT 1", (job, run_id)).fetchone()
        if aside is None:
            return "items"
        # literals, not parameters, since this names a table: the job's quotes doubled, the run an int
        where = f"job = '{job.replace(chr(39), chr(39) * 2)}' AND run_id = {int(run_id)}"
        return f"(SELECT * FROM items WHERE {where} UNION ALL SELECT * FROM answers WHERE {where})"

    def latest_run_at(self, job: str, base_url: str) -> int | None:
        """The latest run of `job` that sent to `base_url` (of any provider kind), if any."""
        wanted = shown_url(base_url).rstrip("/")
        for run_id, used in self._execute(
            "SELECT id, endpoint FROM runs WHERE job = ? AND endpoint IS NOT NULL ORDER BY id DESC", (job,)
        ).fetchall():
            if any(named.partition(" ")[2].rstrip("/") == wanted for named in used.split(", ")):
                return int(run_id)
        return None

    # ------------------------------------------------------------------ items

    def claim(self, run_id: int, job: str, request: Request, retry_failed: bool = False) -> bool:
        """Enrol a request in this run; True when it must be sent, False when the store has its answer
        (an `ok` one, or a permanent error unless `retry_failed`)."""
        return self.enrol(run_id, job, request, retry_failed) == SEND

    def enrol(self, run_id: int, job: str, request: Request, retry_failed: bool = False) -> str:
        """Enrol a request in this run: SEND it, it is ANSWERED (`ok`, or a permanent error unless
        `retry_failed`), or it is WAITING in an open batch.

        An `ok` answer is found wherever the store keeps it for this request (its hash) at this
        endpoint: in the item's own row, in another item's row no run has claimed yet (a data
        file's rows moved), or kept aside (`answers`) from a run elsewhere or an earlier edit. An
        `ok` row this request displaces is kept aside, never overwritten."""
        self._begin()
        if (job, run_id) not in self._has_rows:
            found = self._execute("SELECT 1 FROM items WHERE job = ? LIMIT 1", (job,)).fetchone()
            self._has_rows[(job, run_id)] = found is not None
        if not self._has_rows[(job, run_id)]:  # a job's first run has nothing to look up (its ids are unique)
            self._write(run_id, job, request, "pending", None)
            return SEND
        row = self._execute(
            "SELECT hash, status, transient, endpoint, run_id FROM items WHERE job = ? AND id = ?", (job, request.id)
        ).fetchone()
        here = endpoint_of(request)
        kept = None
        if row is not None:
            if row[1] == "submitted":  # its batch is collected where it was sent, whatever the job says now
                kept = WAITING
            elif row[0] == request.hash and row[3] in (None, here):  # None: from before endpoints were kept
                if row[1] == "ok" or (row[1] == "error" and not retry_failed and not row[2]):
                    kept = ANSWERED
        if kept is None:
            if row is not None and row[4] != run_id and (row[1] == "ok" or (row[1] == "error" and not row[2])):
                self._set_aside(job, request.id)  # an earlier run's answer, paid for or refused: kept
            if not self._find_answer(run_id, job, request, here, retry_failed):
                self._write(run_id, job, request, "pending", None)
                return SEND
            return ANSWERED
        self._execute(
            "UPDATE items SET seq = ?, run_id = ?, task = ?, kept = ? WHERE job = ? AND id = ?",
            (request.seq, run_id, request.task, _kept(request), job, request.id),
        )
        return kept

    def _set_aside(self, job: str, item: str) -> None:
        """Keep an item's answered row in `answers`, whole, before another request takes its place
        (only `ok` ones are ever taken back; an error stays for `export --base-url` to show)."""
        self._execute(
            f"INSERT INTO answers ({_ITEMS}) SELECT {_ITEMS} FROM items WHERE job = ? AND id = ?", (job, item)
        )
        self._execute("DELETE FROM items WHERE job = ? AND id = ?", (job, item))

    def _find_answer(self, run_id: int, job: str, request: Request, here: str, retry_failed: bool) -> bool:
        """Make an answer to `request` at endpoint `here` the item's row in this run, if the store
        has one: kept aside, or in a row that no run has claimed since and that no item of the job
        will claim by its id. An `ok` answer first; else a paid refusal or other permanent error,
        unless `retry_failed`. False when there is none."""
        kinds = ("status = 'ok'",) if retry_failed else ("status = 'ok'", "status = 'error' AND transient = 0")
        for kind in kinds:
            for place, args in (("endpoint = ?", (here,)), ("endpoint IS NULL", ())):  # NULL: kept before endpoints
                where = f"job = ? AND hash = ? AND {place} AND {kind}"
                aside = self._execute(
                    f"SELECT rowid FROM answers WHERE {where} LIMIT 1", (job, request.hash, *args)
                ).fetchone()
                if aside is not None:
                    self._claim_aside(run_id, job, request, aside[0])
                    return True
                # each turn of a conversation belongs to its chain: a lone request never takes one
                unclaimed = self._execute(
                    f"SELECT id FROM items WHERE {where} AND run_id < ? AND (turn IS NULL) = ? LIMIT {_CANDIDATES}",
                    (job, request.hash, *args, run_id, request.turn is None),
                ).fetchall()
                for (found,) in unclaimed:
                    # a turn under an id the job still has is its own conversation's, waiting for it
                    mine = request.turn is not None and hash(found) in self._expected.get(job, ())
                    if found != request.id and not mine:
                        self._claim_row(run_id, job, request, found)
                        return True
        return False

    def _claim_aside(self, run_id: int, job: str, request: Request, aside: int) -> None:
        self._pending.pop((job, request.id), None)
        self._execute("DELETE FROM items WHERE job = ? AND id = ?", (job, request.id))  # unanswered: nothing lost
        self._execute(_TAKE_BACK, (*self._claim(run_id, request), aside))
        self._execute("DELETE FROM answers WHERE rowid = ?", (aside,))

    def _claim_row(self, run_id: int, job: str, request: Request, found: str) -> None:
        self._pending.pop((job, request.id), None)
        self._execute("DELETE FROM items WHERE job = ? AND id = ?", (job, request.id))  # unanswered: nothing lost
        self._execute(
            "UPDATE items SET id = ?, seq = ?, run_id = ?, task = ?, kept = ?, turn = ? WHERE job = ? AND id = ?",
            (*self._claim(run_id, request), job, found),
        )

    @staticmethod
    def _claim(run_id: int, request: Request) -> tuple[Any, ...]:
        """The columns (_CLAIMED) an answer found for `request` takes from it."""
        return (request.id, request.seq, run_id, request.task, _kept(request), request.turn)

    def expect(self, job: str, ids: AbstractSet[int]) -> None:
        """The ids (their hash()) of every row of `job` this run may enrol: a conversation's turn
        under one of them waits for its own chain, and no other chain with the same history takes
        it. (A lone request may take any row not claimed yet: its place is no part of it.)"""
        self._expected[job] = ids

    def skip(self, run_id: int, job: str, request: Request, reason: str) -> None:
        """Enrol a request that this run will not send, keeping an earlier answer for the same body."""
        if not self.claim(run_id, job, request):
            return
        self._write(run_id, job, request, "skipped", reason)

    def _write(self, run_id: int, job: str, request: Request, status: str, error: str | None) -> None:
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
            _kept(request),
            request.turn,
            endpoint_of(request),
        )
        self._pending.pop((job, request.id), None)
        if status == "pending":
            self._pending[(job, request.id)] = row
        else:
            self._enrolled.append(row)

    def record(self, job: str, result: Result) -> None:
        """Write an answer. It is durable, and counts as done, only after the next commit()."""
        output, kind = _encode(result.output)
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
        )
        enrolled = self._pending.pop((job, result.id), None)
        if enrolled is None:
            self._answered.append((_RECORD, *values, job, result.id))
        else:  # its row written once, whole: the enrolment's columns but status and error, then the answer's
            self._answered.append((_ANSWER, *enrolled[:8], *enrolled[10:], *values))

    def stored_results(self, job: str, run_id: int, batch: int = 5000) -> Iterator[tuple[Any, ...]]:
        """The run's items in input order, streamed, as stored: RESULT_COLUMNS (`output` as stored,
        `details` as JSON text), then how `output` is stored (TEXT, JSON or VECTOR), then the kept
        item fields and the answer's fields, each a JSON object's text or None."""
        self.commit()
        cursor = self._execute(
            f"SELECT {', '.join(RESULT_COLUMNS)}, output_json, kept, fields FROM {self._rows(job, run_id)} "
            "WHERE job = ? AND run_id = ? ORDER BY seq",
            (job, run_id),
        )
        while rows := cursor.fetchmany(batch):
            yield from rows

    def results(self, job: str, run_id: int) -> Iterator[dict[str, Any]]:
        """The run's items in input order, streamed, as records: `output` and `details` decoded, and
        `kept` the item fields and the answer's fields together."""
        names = RESULT_COLUMNS + ("output_json", "kept", "fields")
        for row in self.stored_results(job, run_id):
            record = dict(zip(names, row, strict=True))
            record["output"] = decode_output(record["output"], record.pop("output_json"))
            if record["details"] is not None:
                record["details"] = json.loads(record["details"])
            kept = json.loads(record["kept"]) if record["kept"] else {}
            fields = record.pop("fields")
            record["kept"] = {**kept, **json.loads(fields)} if fields else kept
            yield record

    def kept_columns(self, job: str, run_id: int) -> list[tuple[str, str]]:
        """The kept fields of the run's items, in the order they first appear, each with the
        kind its values share: integer, real, text, boolean, or mixed (for JSON text)."""
        self.commit()
        rows = [
            row
            for column in ("kept", "fields")  # item fields kept, then a structured answer's fields
            for row in self._execute(
                f"""SELECT field.key, field.type, MIN(items.seq), MIN(field.id)
                    FROM {self._rows(job, run_id)} AS items, json_each(items.{column}) AS field
                    WHERE items.job = ? AND items.run_id = ? AND items.{column} IS NOT NULL
                    GROUP BY field.key, field.type""",
                (job, run_id),
            ).fetchall()
        ]
        kinds: dict[str, set[str]] = {}
        first: dict[str, tuple[int, int]] = {}
        for key, kind, seq, place in rows:
            kinds.setdefault(key, set()).add(kind)
            first[key] = min(first.get(key, (seq, place)), (seq, place))
        return [(key, _column_kind(kinds[key])) for key in sorted(kinds, key=first.__getitem__)]

    def groups(self, job: str, run_id: int) -> list[dict[str, Any]]:
        """One row per task, model and mode (online or batch: two prices) in input order. A cost is
        None (unknown), never 0, when any answered item of the group has no cost: no price, or no
        usage in the answer."""
        self.commit()
        rows = self._execute(
            f"""SELECT task, model, mode, COUNT(*), SUM(status = 'ok'), SUM(status = 'error'),
                      SUM(status = 'skipped'), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0),
                      CASE WHEN SUM(status = 'ok' AND cost_usd IS NULL) > 0 THEN NULL
                           ELSE COALESCE(SUM(cost_usd), 0) END,
                      CASE WHEN SUM(answered >= (SELECT started FROM runs WHERE id = ?)
                                   AND status = 'ok' AND cost_usd IS NULL) > 0
                           THEN NULL
                           ELSE COALESCE(SUM(CASE WHEN answered >= (SELECT started FROM runs WHERE id = ?)
                                                  THEN cost_usd END), 0) END
               FROM {self._rows(job, run_id)} WHERE job = ? AND run_id = ? GROUP BY task, model, mode
               ORDER BY MIN(seq)""",
            (run_id, run_id, job, run_id),
        ).fetchall()
        return [dict(zip(GROUP_COLUMNS, row, strict=True)) for row in rows]

    def abandon(self, job: str, run_id: int, reason: str) -> None:
        """Items this run enrolled but never answered (a stop, a signal) become `skipped`; the next
        run sends them, since only `ok` (and, by default, `error`) answers are kept."""
        self.commit()
        self._execute(
            "UPDATE items SET status = 'skipped', error = ? WHERE job = ? AND run_id = ? AND status = 'pending'",
            (reason, job, run_id),
        )

    def answered_before(self, job: str, run_id: int, since: float) -> int:
        """Items of the run answered (ok or failed) before `since`: by earlier runs."""
        self.commit()
        row = self._execute(
            f"SELECT COUNT(*) FROM {self._rows(job, run_id)} WHERE job = ? AND run_id = ? "
            "AND status IN ('ok', 'error') AND answered < ?",
            (job, run_id, since),
        ).fetchone()
        return int(row[0])

    def answer(self, job: str, item: str) -> Any:
        """An item's stored answer (its output), or None unless it is `ok`."""
        row = self._execute(
            "SELECT output, output_json FROM items WHERE job = ? AND id = ? AND status = 'ok'", (job, item)
        ).fetchone()
        return None if row is None else decode_output(row[0], row[1])

    def walk_again(self, job: str, run_id: int) -> None:
        """This run enrols the job's items once more (batch mode, after collecting): the rows it
        wrote the first time must now be looked up."""
        self._has_rows[(job, run_id)] = True

    def keep(self, run_id: int, job: str, request: Request) -> None:
        """Enrol a request in this run as it stands, whatever its status."""
        self._begin()
        self._execute(
            "UPDATE items SET seq = ?, run_id = ?, task = ? WHERE job = ? AND id = ?",
            (request.seq, run_id, request.task, job, request.id),
        )

    # ------------------------------------------------------------------ batches

    def add_batch(self, row: BatchRow, ids: list[str]) -> None:
        """Record the intent to submit a batch, and put its items (`ids`, in the file's line order)
        in it, before anything is uploaded; committed at once."""
        self._begin()
        values = {**row.__dict__, "created": row.created or time.time()}
        self._execute(
            f"INSERT INTO batches ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})", tuple(values.values())
        )
        self._executemany(
            """UPDATE items SET status = 'submitted', batch = ?, batch_line = ?, mode = 'batch', error = NULL,
                   transient = 0, attempts = attempts + 1 WHERE job = ? AND id = ?""",
            ((row.intent, line, row.job, item) for line, item in enumerate(ids, 1)),
        )
        self.commit()

    def update_batch(self, intent: str, **changes: Any) -> None:
        """Change a batch's row (its file and batch ids, status, counts); committed at once."""
        unknown = set(changes) - set(BatchRow.__dataclass_fields__)
        assert not unknown, unknown
        self._begin()
        self._execute(
            f"UPDATE batches SET {', '.join(f'{k} = ?' for k in changes)} WHERE intent = ?", (*changes.values(), intent)
        )
        self.commit()

    def batches(self, job: str | None = None, open_only: bool = False) -> list[BatchRow]:
        """Batches of `job` (or of every job), oldest first; `open_only`: those not yet collected."""
        self.commit()
        where = ["1 = 1"] + (["job = ?"] if job else []) + (["collected = 0"] if open_only else [])
        rows = self._execute(
            f"SELECT {', '.join(BatchRow.__dataclass_fields__)} FROM batches WHERE {' AND '.join(where)} "
            "ORDER BY created, part",
            (job,) if job else (),
        ).fetchall()
        return [BatchRow(*row) for row in rows]

    def batch_items(self, intent: str) -> list[WaitingItem]:
        """The items a batch holds unanswered, in line order."""
        self.commit()
        rows = self._execute(
            f"SELECT {', '.join(WaitingItem.__dataclass_fields__)} FROM items "
            "WHERE batch = ? AND status = 'submitted' ORDER BY batch_line",
            (intent,),
        ).fetchall()
        return [WaitingItem(*row) for row in rows]

    def release(self, intent: str, status: str, error: str, transient: bool = True) -> int:
        """The items a batch still holds unanswered leave it as `status` (skipped or error)."""
        self._begin()
        return self._execute(
            "UPDATE items SET status = ?, error = ?, transient = ? WHERE batch = ? AND status = 'submitted'",
            (status, error, transient, intent),
        ).rowcount

    def forget(self, job: str) -> int:
        """--fresh: drop every stored answer of a job, so the run starts over."""
        self.commit()
        self._has_rows = {k: v for k, v in self._has_rows.items() if k[0] != job}
        self._execute("DELETE FROM answers WHERE job = ?", (job,))  # asked for: no answer kept aside comes back
        return self._execute("DELETE FROM items WHERE job = ?", (job,)).rowcount

    # ------------------------------------------------------------------ the HTML report
    # Every sum is SQLite's, streamed over the rows; Python only sees what the page shows, a few
    # hundred rows at most, so a 1,000,000-item job costs no more memory than a small one.

    def timeline(self, job: str, run_id: int, since: float, until: float, points: int) -> Timeline:
        """The run's answers received between `since` and `until` (epoch seconds: the run's own, not
        earlier runs'), in at most `points` equal slices of time from `since`, each with its
        counts and latency percentiles."""
        self.commit()
        where = "job = ? AND run_id = ? AND status IN ('ok', 'error') AND answered >= ? AND answered <= ?"
        rows_of_run = self._rows(job, run_id)
        args = (job, run_id, since, until)
        answers, first, last, retried, extra = self._execute(
            f"""SELECT COUNT(*), MIN(answered), MAX(answered), SUM(attempts > 1), SUM(MAX(attempts - 1, 0))
                FROM {rows_of_run} WHERE {where}""",
            args,
        ).fetchone()
        if not answers:
            return Timeline(0, None, None, 0, 0, ())
        count = min(points, answers)
        width = max((last - since) / count, 1e-3)
        # Nearest-rank percentiles: the k-th smallest latency of a slice, k = ceil(p * n), from
        # ranks SQLite numbers (nulls last, so ranks 1..n are the latencies).
        rows = self._execute(
            f"""SELECT slice, SUM(status = 'ok'), SUM(status = 'error'), SUM(tokens),
                       MAX(CASE WHEN rank = (known * 50 + 99) / 100 THEN latency_s END),
                       MAX(CASE WHEN rank = (known * 95 + 99) / 100 THEN latency_s END),
                       MAX(latency_s)
                FROM (SELECT slice, status, tokens, latency_s,
                             ROW_NUMBER() OVER (PARTITION BY slice ORDER BY latency_s IS NULL, latency_s) AS rank,
                             COUNT(latency_s) OVER (PARTITION BY slice) AS known
                      FROM (SELECT MIN(CAST((answered - ?) / ? AS INTEGER), ?) AS slice, status, latency_s,
                                   COALESCE(prompt_tokens, 0) + COALESCE(completion_tokens, 0) AS tokens
                            FROM {rows_of_run} WHERE {where}))
                GROUP BY slice""",
            (since, width, count - 1, *args),
        ).fetchall()
        found = {row[0]: row[1:] for row in rows}
        slices = tuple(
            TimeSlice(n * width, (n + 1) * width, *(found.get(n) or (0, 0, 0, None, None, None))) for n in range(count)
        )
        return Timeline(answers, first, last, retried or 0, extra or 0, slices)

    def error_groups(self, job: str, run_id: int, status: str, kinds: int, examples: int) -> ErrorGroups:
        """The run's items of `status` grouped by kind, the `kinds` most frequent with up to
        `examples` items each (the first in input order). An error's kind is what its message says
        before the first ': ' (the HTTP status and code, 'timeout', 'connection'); a skipped item's
        is its whole reason, since a run stops for one reason."""
        self.commit()
        kind = (
            "CASE WHEN instr(error, ': ') BETWEEN 2 AND 81 THEN substr(error, 1, instr(error, ': ') - 1) "
            "ELSE substr(COALESCE(error, '(no message)'), 1, 120) END"
            if status == "error"
            else "substr(COALESCE(error, '(no reason)'), 1, 120)"
        )
        rows = (
            f"SELECT {kind} AS kind, id, error, seq FROM {self._rows(job, run_id)} "
            "WHERE job = ? AND run_id = ? AND status = ?"
        )
        args = (job, run_id, status)
        total, distinct = self._execute(
            f"SELECT COALESCE(SUM(n), 0), COUNT(*) FROM (SELECT COUNT(*) AS n FROM ({rows}) GROUP BY kind)", args
        ).fetchone()
        # Ids and messages are cut here, in SQL: a 1 MB error body never reaches Python or the page.
        found = self._execute(
            f"""WITH matching AS ({rows}),
                     top AS (SELECT kind, COUNT(*) AS n FROM matching GROUP BY kind ORDER BY n DESC, kind LIMIT ?),
                     picked AS (SELECT kind, id, error,
                                       ROW_NUMBER() OVER (PARTITION BY kind ORDER BY seq) AS place
                                FROM matching WHERE kind IN (SELECT kind FROM top))
                SELECT top.kind, top.n, substr(picked.id, 1, 201), substr(picked.error, 1, 501)
                FROM top JOIN picked ON picked.kind = top.kind WHERE picked.place <= ?
                ORDER BY top.n DESC, top.kind, picked.place""",
            (*args, kinds, examples),
        ).fetchall()
        shown: dict[str, tuple[int, list[ErrorExample]]] = {}
        for name, n, item, message in found:
            shown.setdefault(name, (n, []))[1].append(ErrorExample(item, message or ""))
        groups = tuple(ErrorKind(name, n, tuple(listed)) for name, (n, listed) in shown.items())
        return ErrorGroups(total, distinct, groups)

    def slowest(self, job: str, run_id: int, since: float, until: float, limit: int) -> list[SlowItem]:
        """The run's `limit` slowest answers received between `since` and `until`, slowest first."""
        self.commit()
        rows = self._execute(
            f"""SELECT substr(id, 1, 201), task, model, status, latency_s, attempts, substr(error, 1, 501)
               FROM {self._rows(job, run_id)}
               WHERE job = ? AND run_id = ? AND status IN ('ok', 'error') AND latency_s IS NOT NULL
                   AND answered >= ? AND answered <= ?
               ORDER BY latency_s DESC, seq LIMIT ?""",
            (job, run_id, since, until, limit),
        ).fetchall()
        return [SlowItem(*row) for row in rows]


# Every column of an item's row, in the table's order (a migration that adds one adds it to
# `answers` too); _CLAIMED, in this order, are those an answer found for a request takes from it.
_ITEM_COLUMNS = (
    "job id seq run_id task type model hash status output output_json prompt_tokens completion_tokens "
    "cached_tokens reasoning_tokens cost_usd attempts latency_s ttft_s error answered details transient batch "
    "batch_line mode kept reasks fields turn endpoint"
).split()
_ITEMS = ", ".join(_ITEM_COLUMNS)
_CLAIMED = ("id", "seq", "run_id", "task", "kept", "turn")
# An answer kept aside back in `items`, under the request that found it (_CLAIMED, then its rowid).
_TAKE_BACK = (
    f"INSERT INTO items ({_ITEMS}) SELECT {', '.join('?' if c in _CLAIMED else c for c in _ITEM_COLUMNS)} "
    "FROM answers WHERE rowid = ?"
)
_CANDIDATES = 64  # rows of one body looked at for one that no item will claim (identical items share a body)
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
                   cost_usd = NULL, latency_s = NULL, ttft_s = NULL, answered = NULL, fields = NULL"""
_ANSWERED_COLUMNS = (
    "status output output_json prompt_tokens completion_tokens cached_tokens reasoning_tokens cost_usd attempts "
    "latency_s ttft_s error answered details transient mode reasks fields"
).split()
_ANSWER_COLUMNS = "job id seq run_id task type model hash kept turn endpoint".split() + _ANSWERED_COLUMNS
_ANSWER = f"""INSERT INTO items ({", ".join(_ANSWER_COLUMNS)}) VALUES ({", ".join("?" * len(_ANSWER_COLUMNS))})
               ON CONFLICT (job, id) DO UPDATE SET batch = NULL, batch_line = NULL,
                   {", ".join(f"{c} = excluded.{c}" for c in _ANSWER_COLUMNS[2:])}"""
_RECORD = """UPDATE items SET status = ?, output = ?, output_json = ?, prompt_tokens = ?, completion_tokens = ?,
                   cached_tokens = ?, reasoning_tokens = ?, cost_usd = ?, attempts = ?, latency_s = ?, ttft_s = ?,
                   error = ?, answered = ?, details = ?, transient = ?, mode = ?, reasks = ?, fields = ?
               WHERE job = ? AND id = ?"""


class _NotAStore(Exception):
    """A file at the store's name that is not a store: never to be taken for a new, empty one."""


def _connect(path: Path) -> sqlite3.Connection:
    # Other runs (other jobs) may share the store: a busy store waits for them, never fails,
    # from the first statement on (switching to WAL takes a lock too).
    return sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S)


def _create(path: Path) -> None:
    """Build a new store under a temporary name and link it into place whole. So a store file is
    never seen half made, and an empty or broken one is damage, never a store being born."""
    fd, temporary = files.create_temporary(path)
    os.close(fd)
    try:
        db = _connect(temporary)
        try:
            Store._migrate(db)
        finally:
            db.close()
        try:
            os.link(temporary, path)  # unlike a rename, never replaces a store another process just made
        except FileExistsError:
            pass  # that process's store is as new as ours
        except OSError:
            pass  # no hard links on this filesystem: SQLite makes the store in place, as it always did
    finally:
        temporary.unlink(missing_ok=True)


def _check_file(path: Path) -> None:
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(_SQLITE_HEADER))
    except FileNotFoundError:
        return  # made in place just below (see _create)
    if not head:
        raise _NotAStore("the file is empty: 0 bytes")
    if head != _SQLITE_HEADER:
        raise _NotAStore("the file is not an SQLite database")


def _unusable_directory(directory: Path, exc: OSError) -> str:
    return f"cannot use the state directory {directory}: {exc.strerror or exc} (--state DIR puts it elsewhere)"


def _unusable(path: Path, reason: str) -> str:
    """The message for a broken store, with a command that moves it (and its -wal and -shm files)
    aside when pasted into a shell."""
    aside = path.parent.absolute() / f"broken-{time.strftime('%Y%m%d-%H%M%S')}"
    move = f"mkdir -p {shlex.quote(str(aside))} && mv {shlex.quote(str(path.absolute()))}* {shlex.quote(str(aside))}/"
    return (
        f"the state store {path} is unusable ({reason}); move it aside to start afresh (`{move}`) "
        "or run with --fresh --state NEWDIR"
    )


def _wal(db: sqlite3.Connection) -> None:
    """Switch to WAL. Two processes creating one store at once may find it locked here without
    SQLite's busy handler waiting for them, so this waits itself."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def endpoint_of(request: Request) -> str:
    """What names where a request goes: the provider's kind and base URL (without credentials)."""
    return _endpoint(request.provider.kind, request.provider.base_url)


def endpoints(providers: Iterable[Provider]) -> list[str]:
    """Where requests made with `providers` go, named as endpoint_of names them."""
    return sorted({_endpoint(provider.kind, provider.base_url) for provider in providers})


@functools.lru_cache(maxsize=64)  # a job has a provider or a few; every item is enrolled with one
def _endpoint(kind: str, base_url: str) -> str:
    return f"{kind} {shown_url(base_url)}"


def _kept(request: Request) -> str | None:
    return json.dumps(dict(request.kept), ensure_ascii=False, default=str) if request.kept else None


def _column_kind(kinds: set[str]) -> str:
    """One column's kind from the JSON types of its values (nulls fit any)."""
    kinds = kinds - {"null"}
    if kinds <= {"integer"}:
        return "integer" if kinds else "text"
    if kinds <= {"integer", "real"}:
        return "real"
    if kinds <= {"true", "false"}:
        return "boolean"
    if kinds == {"text"}:
        return "text"
    return "mixed"


def _encode(output: Any) -> tuple[Any, int]:
    if output is None or isinstance(output, str):
        return output, TEXT
    if isinstance(output, list) and output and all(isinstance(v, float) for v in output):
        return array.array("f", output).tobytes(), VECTOR
    return json.dumps(output, ensure_ascii=False), JSON


def decode_output(value: Any, kind: int) -> Any:
    """An answer's output as stored (with its kind: TEXT, JSON or VECTOR) as the answer had it."""
    if value is None or kind == TEXT:
        return value
    if kind == VECTOR:
        return array.array("f", value).tolist()
    return json.loads(value)


class JobLock:
    """One run of a job at a time. flock() dies with its process, so a stale lock file from a
    killed run never blocks; the file holds the owner's pid only to name it in the message."""

    def __init__(self, directory: Path, job: str):
        self.path = directory / f"{re.sub(r'[^A-Za-z0-9._-]', '_', job)}.lock"
        self.job = job
        self._file: Any = None

    def __enter__(self) -> JobLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.path, "a+", encoding="utf-8")
        except OSError as exc:
            raise StateError(_unusable_directory(self.path.parent, exc)) from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise LockedError(f"job {self.job!r} is already running (process {owner} holds {self.path})") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
