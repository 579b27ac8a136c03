"""Items: enrolling a run's requests. An answer is looked up by request (its hash) at its endpoint,
wherever the store keeps it: in the item's own row, in a row of another id no run has claimed yet
(a data file's rows moved), or kept aside (aside.py). Only requests without one are sent.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from typing import Any

from batchgpt.records import Request

from .aside import find_aside, forget_aside, set_aside, take_back
from .encoding import decode_output, kept_json
from .endpoint import endpoint_of
from .session import Session

SEND, ANSWERED, WAITING = "send", "answered", "waiting"  # what enrolling a request found
_CANDIDATES = 64  # rows of one body looked at for one that no item will claim (identical items share a body)


class Items:
    def __init__(self, session: Session):
        self._session = session
        self._has_rows: dict[tuple[str, int], bool] = {}  # (job, run): did the job have rows as the run began
        self._expected: dict[str, AbstractSet[int]] = {}  # job: its items' ids (hash()), where a run said them

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
        self._session.begin()
        if (job, run_id) not in self._has_rows:
            found = self._session.execute("SELECT 1 FROM items WHERE job = ? LIMIT 1", (job,)).fetchone()
            self._has_rows[(job, run_id)] = found is not None
        if not self._has_rows[(job, run_id)]:  # a job's first run has nothing to look up (its ids are unique)
            self._session.enrol(run_id, job, request, "pending", None)
            return SEND
        row = self._session.execute(
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
                set_aside(self._session, job, request.id)  # an earlier run's answer, paid for or refused: kept
            if not self._find_answer(run_id, job, request, here, retry_failed):
                self._session.enrol(run_id, job, request, "pending", None)
                return SEND
            return ANSWERED
        self._session.execute(
            "UPDATE items SET seq = ?, run_id = ?, task = ?, kept = ? WHERE job = ? AND id = ?",
            (request.seq, run_id, request.task, kept_json(request), job, request.id),
        )
        return kept

    def _find_answer(self, run_id: int, job: str, request: Request, here: str, retry_failed: bool) -> bool:
        """Make an answer to `request` at endpoint `here` the item's row in this run, if the store
        has one: kept aside, or in a row that no run has claimed since and that no item of the job
        will claim by its id. An `ok` answer first; else a paid refusal or other permanent error,
        unless `retry_failed`. False when there is none."""
        kinds = ("status = 'ok'",) if retry_failed else ("status = 'ok'", "status = 'error' AND transient = 0")
        for kind in kinds:
            for place, args in (("endpoint = ?", (here,)), ("endpoint IS NULL", ())):  # NULL: kept before endpoints
                where = f"job = ? AND hash = ? AND {place} AND {kind}"
                rowid = find_aside(self._session, where, (job, request.hash, *args))
                if rowid is not None:
                    self._claim_aside(run_id, job, request, rowid)
                    return True
                # each turn of a conversation belongs to its chain: a lone request never takes one
                unclaimed = self._session.execute(
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

    def _claim_aside(self, run_id: int, job: str, request: Request, rowid: int) -> None:
        self._unenrol(job, request.id)
        take_back(self._session, self._claim(run_id, request), rowid)

    def _claim_row(self, run_id: int, job: str, request: Request, found: str) -> None:
        self._unenrol(job, request.id)
        self._session.execute(
            "UPDATE items SET id = ?, seq = ?, run_id = ?, task = ?, kept = ?, turn = ? WHERE job = ? AND id = ?",
            (*self._claim(run_id, request), job, found),
        )

    def _unenrol(self, job: str, item: str) -> None:
        self._session.drop(job, item)
        self._session.execute("DELETE FROM items WHERE job = ? AND id = ?", (job, item))  # unanswered: nothing lost

    @staticmethod
    def _claim(run_id: int, request: Request) -> tuple[Any, ...]:
        """The columns (aside.CLAIMED) an answer found for `request` takes from it."""
        return (request.id, request.seq, run_id, request.task, kept_json(request), request.turn)

    def expect(self, job: str, ids: AbstractSet[int]) -> None:
        """The ids (their hash()) of every row of `job` this run may enrol: a conversation's turn
        under one of them waits for its own chain, and no other chain with the same history takes
        it. (A lone request may take any row not claimed yet: its place is no part of it.)"""
        self._expected[job] = ids

    def skip(self, run_id: int, job: str, request: Request, reason: str) -> None:
        """Enrol a request that this run will not send, keeping an earlier answer for the same body."""
        if not self.claim(run_id, job, request):
            return
        self._session.enrol(run_id, job, request, "skipped", reason)

    def abandon(self, job: str, run_id: int, reason: str) -> None:
        """Items this run enrolled but never answered (a stop, a signal) become `skipped`; the next
        run sends them, since only `ok` (and, by default, `error`) answers are kept."""
        self._session.commit()
        self._session.execute(
            "UPDATE items SET status = 'skipped', error = ? WHERE job = ? AND run_id = ? AND status = 'pending'",
            (reason, job, run_id),
        )

    def answer(self, job: str, item: str) -> Any:
        """An item's stored answer (its output), or None unless it is `ok`."""
        row = self._session.execute(
            "SELECT output, output_json FROM items WHERE job = ? AND id = ? AND status = 'ok'", (job, item)
        ).fetchone()
        return None if row is None else decode_output(row[0], row[1])

    def walk_again(self, job: str, run_id: int) -> None:
        """This run enrols the job's items once more (batch mode, after collecting): the rows it
        wrote the first time must now be looked up."""
        self._has_rows[(job, run_id)] = True

    def keep(self, run_id: int, job: str, request: Request) -> None:
        """Enrol a request in this run as it stands, whatever its status."""
        self._session.begin()
        self._session.execute(
            "UPDATE items SET seq = ?, run_id = ?, task = ? WHERE job = ? AND id = ?",
            (request.seq, run_id, request.task, job, request.id),
        )

    def forget(self, job: str) -> int:
        """--fresh: drop every stored answer of a job, so the run starts over."""
        self._session.commit()
        self._has_rows = {k: v for k, v in self._has_rows.items() if k[0] != job}
        forget_aside(self._session, job)
        return self._session.execute("DELETE FROM items WHERE job = ?", (job,)).rowcount
