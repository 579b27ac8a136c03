"""Batch rows: one row in `batches` per Batch API batch, from the intent to submit it (written
before its file is uploaded, so a run killed before it stored the batch's id finds it again instead
of paying twice) until it is collected; and the items waiting in it, `submitted` with their line."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from .session import Session


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


class Batches:
    def __init__(self, session: Session):
        self._session = session

    def add(self, row: BatchRow, ids: list[str]) -> None:
        """Record the intent to submit a batch, and put its items (`ids`, in the file's line order)
        in it, before anything is uploaded; committed at once."""
        self._session.begin()
        values = {**row.__dict__, "created": row.created or time.time()}
        self._session.execute(
            f"INSERT INTO batches ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})", tuple(values.values())
        )
        self._session.executemany(
            """UPDATE items SET status = 'submitted', batch = ?, batch_line = ?, mode = 'batch', error = NULL,
                   transient = 0, attempts = attempts + 1 WHERE job = ? AND id = ?""",
            ((row.intent, line, row.job, item) for line, item in enumerate(ids, 1)),
        )
        self._session.commit()

    def update(self, intent: str, **changes: Any) -> None:
        """Change a batch's row (its file and batch ids, status, counts); committed at once."""
        unknown = set(changes) - set(BatchRow.__dataclass_fields__)
        assert not unknown, unknown
        self._session.begin()
        self._session.execute(
            f"UPDATE batches SET {', '.join(f'{k} = ?' for k in changes)} WHERE intent = ?", (*changes.values(), intent)
        )
        self._session.commit()

    def listed(self, job: str | None = None, open_only: bool = False) -> list[BatchRow]:
        """Batches of `job` (or of every job), oldest first; `open_only`: those not yet collected."""
        self._session.commit()
        where = ["1 = 1"] + (["job = ?"] if job else []) + (["collected = 0"] if open_only else [])
        rows = self._session.execute(
            f"SELECT {', '.join(BatchRow.__dataclass_fields__)} FROM batches WHERE {' AND '.join(where)} "
            "ORDER BY created, part",
            (job,) if job else (),
        ).fetchall()
        return [BatchRow(*row) for row in rows]

    def waiting(self, intent: str) -> list[WaitingItem]:
        """The items a batch holds unanswered, in line order."""
        self._session.commit()
        rows = self._session.execute(
            f"SELECT {', '.join(WaitingItem.__dataclass_fields__)} FROM items "
            "WHERE batch = ? AND status = 'submitted' ORDER BY batch_line",
            (intent,),
        ).fetchall()
        return [WaitingItem(*row) for row in rows]

    def release(self, intent: str, status: str, error: str, transient: bool = True) -> int:
        """The items a batch still holds unanswered leave it as `status` (skipped or error)."""
        self._session.begin()
        return self._session.execute(
            "UPDATE items SET status = ?, error = ?, transient = ? WHERE batch = ? AND status = 'submitted'",
            (status, error, transient, intent),
        ).rowcount
