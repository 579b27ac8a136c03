"""The store's file and its format: the schema as numbered migrations on PRAGMA user_version, and
opening state.db, which makes it whole, checks it is a store, and brings it up to date.

WAL mode with synchronous=NORMAL makes each answer's commit cheap and safe against a killed
process (a power cut may lose the last commits, which are then simply sent again).
"""

from __future__ import annotations

import os
import shlex
import sqlite3
import time
from pathlib import Path

from batchgpt import files
from batchgpt.errors import StateError, disk_full, store_write_error

from .lock import DB_NAME, read_only, unusable_directory, writable

BUSY_TIMEOUT_S = 120.0  # transactions are a few milliseconds long; this only outlasts a stuck peer
_SQLITE_HEADER = b"SQLite format 3\x00"

# 14: each job numbers its own runs, 1, 2, 3 in the order they began (runs.number), as people
# name them (`runs`, `--run N`, the log, the page): the row id counted every job's runs in the store.
# The runs of a store from before are numbered by that order too. Items, answers and batches still
# point at a run by its row id.
# (Numbered through a keyed temporary table: a count of the earlier runs for each run would take
# time in the square of a years-old cron job's runs.)
RUN_NUMBERS = """
    ALTER TABLE runs ADD COLUMN number INTEGER;
    CREATE TEMP TABLE numbered (id INTEGER PRIMARY KEY, number INTEGER NOT NULL);
    INSERT INTO numbered SELECT id, ROW_NUMBER() OVER (PARTITION BY job ORDER BY id) FROM runs;
    UPDATE runs SET number = (SELECT number FROM numbered WHERE numbered.id = runs.id);
    DROP TABLE numbered;
    CREATE UNIQUE INDEX runs_by_number ON runs (job, number);
    """

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
    # 13: why each attempt of an item before its last was tried again (["HTTP 429", "timeout"], as
    # JSON; NULL: tried once), so the report can say of each retried request what happened
    """
    ALTER TABLE items ADD COLUMN retried TEXT;
    ALTER TABLE answers ADD COLUMN retried TEXT;
    """,
    RUN_NUMBERS,
)
# Every column of an item's row, in the table's order (a migration that adds one adds it to
# `answers` too).
ITEM_COLUMNS = (
    "job id seq run_id task type model hash status output output_json prompt_tokens completion_tokens "
    "cached_tokens reasoning_tokens cost_usd attempts latency_s ttft_s error answered details transient batch "
    "batch_line mode kept reasks fields turn endpoint retried"
).split()


def open_db(directory: Path, write: bool = True) -> sqlite3.Connection:
    """The store in `directory`, made if new, migrated, in WAL mode; StateError, saying what to
    do, when the directory or the file cannot be used (or, to `write`, cannot be written)."""
    path = directory / DB_NAME
    try:
        directory.mkdir(parents=True, exist_ok=True)
        writable(directory, path if write else None)
        files.sweep(directory)  # a new store's temporary that a killed process left
        if not path.exists():
            _create(path)
        _check_file(path)
        db = connect(path)
        _wal(db)
        db.execute("PRAGMA synchronous=NORMAL")
        # Checkpoints fsync; one per ~40 MB of log instead of SQLite's 4 MB keeps commits cheap.
        db.execute("PRAGMA wal_autocheckpoint=10000")
        migrate(db)
    except (sqlite3.DatabaseError, _NotAStore) as exc:
        if _refused(exc):
            raise StateError(read_only(directory, store=path)) from None
        raise StateError(_unusable(path, str(exc))) from None
    except OSError as exc:
        raise StateError(unusable_directory(directory, exc)) from None
    return db


def migrate(db: sqlite3.Connection) -> None:
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
            from batchgpt.version import __version__

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


def _refused(exc: Exception) -> bool:
    """Whether SQLite may not write the store (SQLITE_READONLY; Python 3.10 only says it in words)."""
    name = getattr(exc, "sqlite_errorname", "")
    return name.startswith("SQLITE_READONLY") or "readonly database" in str(exc)


class _NotAStore(Exception):
    """A file at the store's name that is not a store: never to be taken for a new, empty one."""


def connect(path: Path) -> sqlite3.Connection:
    # Other runs (other jobs) may share the store: a busy store waits for them, never fails,
    # from the first statement on (switching to WAL takes a lock too).
    return sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S)


def _create(path: Path) -> None:
    """Build a new store under a temporary name and link it into place whole. So a store file is
    never seen half made, and an empty or broken one is damage, never a store being born."""
    fd, temporary = files.create_temporary(path)
    os.close(fd)
    try:
        db = connect(temporary)
        try:
            migrate(db)
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
