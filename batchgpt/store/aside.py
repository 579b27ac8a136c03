"""Answers kept aside: the `answers` table (migration 12). A paid answer is never thrown away: an
`ok` row (or a permanent error) that another request takes the place of is moved here whole, with
every column it had, and comes back when the same request, at the same endpoint, appears again
under any id. A run whose rows were set aside since is read from here and `items` together."""

from __future__ import annotations

from typing import Any

from .schema import ITEM_COLUMNS
from .session import Session

_ITEMS = ", ".join(ITEM_COLUMNS)
# The columns, in this order, that an answer found for a request takes from the request.
CLAIMED = ("id", "seq", "run_id", "task", "kept", "turn")
# An answer kept aside back in `items`, under the request that found it (CLAIMED, then its rowid).
_TAKE_BACK = (
    f"INSERT INTO items ({_ITEMS}) SELECT {', '.join('?' if c in CLAIMED else c for c in ITEM_COLUMNS)} "
    "FROM answers WHERE rowid = ?"
)


def set_aside(session: Session, job: str, item: str) -> None:
    """Keep an item's answered row in `answers`, whole, before another request takes its place
    (only `ok` ones are ever taken back; an error stays for `export --base-url` to show)."""
    session.execute(f"INSERT INTO answers ({_ITEMS}) SELECT {_ITEMS} FROM items WHERE job = ? AND id = ?", (job, item))
    session.execute("DELETE FROM items WHERE job = ? AND id = ?", (job, item))


def find_aside(session: Session, where: str, args: tuple[Any, ...]) -> int | None:
    """The rowid of an answer kept aside that matches `where`, if there is one."""
    row = session.execute(f"SELECT rowid FROM answers WHERE {where} LIMIT 1", args).fetchone()
    return None if row is None else int(row[0])


def take_back(session: Session, claimed: tuple[Any, ...], rowid: int) -> None:
    """Make the answer kept aside at `rowid` an item's row again, with the `claimed` columns."""
    session.execute(_TAKE_BACK, (*claimed, rowid))
    session.execute("DELETE FROM answers WHERE rowid = ?", (rowid,))


def rows_of(session: Session, job: str, run_id: int) -> str:
    """What holds a run's rows, to select from: `items`, or, when some of them were kept aside
    since (a later run elsewhere took their items), those rows and the rest of `items`."""
    aside = session.execute("SELECT 1 FROM answers WHERE job = ? AND run_id = ? LIMIT 1", (job, run_id)).fetchone()
    if aside is None:
        return "items"
    # literals, not parameters, since this names a table: the job's quotes doubled, the run an int
    where = f"job = '{job.replace(chr(39), chr(39) * 2)}' AND run_id = {int(run_id)}"
    return f"(SELECT * FROM items WHERE {where} UNION ALL SELECT * FROM answers WHERE {where})"


def spent_aside(session: Session, job: str, run_id: int) -> tuple[float | None, int | None]:
    """What the answers a run received, that a later request set aside, cost, and how many of the
    `ok` ones have no cost."""
    cost, unpriced = session.execute(
        """SELECT SUM(cost_usd), SUM(status = 'ok' AND cost_usd IS NULL) FROM answers
           WHERE job = ? AND run_id != ? AND answered >= (SELECT started FROM runs WHERE id = ?)
               AND answered <= COALESCE((SELECT finished FROM runs WHERE id = ?), 1e300)""",
        (job, run_id, run_id, run_id),
    ).fetchone()
    return cost, unpriced


def forget_aside(session: Session, job: str) -> None:
    """--fresh: drop the job's answers kept aside (asked for: none of them comes back)."""
    session.execute("DELETE FROM answers WHERE job = ?", (job,))
