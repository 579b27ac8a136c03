"""Whether a batch was created for an intent whose creation no run saw answered (a run killed
while creating it, a creation that timed out or failed with a 5xx, an answer without an id).

The provider's list of batches (`GET /batches`) is read through every page. A batch is the
intent's when its metadata carries the intent, or when it was made from the intent's uploaded
file (`input_file_id`): relays and gateways that drop metadata from the list still show it.
The list proves that no batch was made only when it was read to its end (or, listed newest
first, past the intent's time) and it showed a batch this store knows was made there, with the
fields the match reads: an empty list, a list that drops both fields, or one that repeats a page
instead of paging shows nothing either way. Then the provider cannot tell, and nothing may be
created: the user adopts the batch by its id, or declares it lost (batchresolve.py).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from batchgpt.records import Failure
from batchgpt.store import BatchRow

from .read import as_dict, when

if TYPE_CHECKING:  # the client is the caller's: this module only reads what it answered
    from batchgpt.client import Answer

LIST_PAGES = 50  # pages read before giving up (the API's pages hold at most 100 batches)
PAGE = 100
SKEW_S = 3600.0  # how far the provider's clock may be from ours (created_at against the intent's time)

ListPage = Callable[[dict[str, str]], Awaitable["Answer | Failure"]]


@dataclass(frozen=True)
class Lookup:
    """What the list said: the batch found, that there is none, or why it cannot say."""

    batch: dict[str, Any] | None = None
    absent: bool = False
    later: str | None = None  # the list could not be read now: the next poll tries again
    unresolved: str | None = None  # the list cannot tell, and no later poll will


async def find(list_page: ListPage, row: BatchRow, known: Mapping[str, BatchRow]) -> Lookup:
    """Look for the intent `row`'s batch; `known` holds the store's batches (by id) that were
    created at the same provider, the witnesses that the list shows what the match reads."""
    walk = _Walk(row, known)
    after: str | None = None
    for _ in range(LIST_PAGES):
        answer = await list_page({"limit": str(PAGE), **({"after": after} if after else {})})
        if isinstance(answer, Failure):
            return Lookup(later=answer.describe())
        entries = answer.data.get("data")
        if not isinstance(entries, list):
            return Lookup(unresolved="its list of batches has no `data` list")
        page = [entry for entry in entries if isinstance(entry, dict)]
        walk.read(page)
        if walk.found is not None:
            return Lookup(batch=walk.found)
        if walk.repeated:
            return Lookup(unresolved="its list of batches gives the same page again instead of the next (`after`)")
        last = page[-1].get("id") if page else None
        if not page or answer.data.get("has_more") is False or walk.passed or not isinstance(last, str):
            return walk.verdict()
        after = last
    return Lookup(unresolved=f"its list of batches goes on past {LIST_PAGES * PAGE:,} batches")


class _Walk:
    """The list as read so far."""

    def __init__(self, row: BatchRow, known: Mapping[str, BatchRow]):
        self.row = row
        self.known = known
        self.found: dict[str, Any] | None = None
        self.seen: set[str] = set()
        self.repeated = False
        self.witnessed = False  # a batch this store knows was listed with its intent or its file
        self.ordered = True  # newest first, every one with its created_at
        self.oldest = math.inf

    @property
    def passed(self) -> bool:
        """Listed newest first, the list has gone past the intent's time: its batch would be
        above; and a witness was seen (the batches it shows carry what the match reads)."""
        return self.ordered and self.witnessed and self.oldest < self.row.created - SKEW_S

    def read(self, page: list[dict[str, Any]]) -> None:
        for batch in page:
            if _made_for(batch, self.row):
                self.found = batch
                return
            ident = batch.get("id")
            if isinstance(ident, str):
                self.repeated |= ident in self.seen
                self.seen.add(ident)
                witness = self.known.get(ident)
                self.witnessed |= witness is not None and _made_for(batch, witness)
            created = when(batch.get("created_at"))
            self.ordered &= created is not None and created <= self.oldest
            self.oldest = min(self.oldest, created if created is not None else math.inf)

    def verdict(self) -> Lookup:
        if self.witnessed:
            return Lookup(absent=True)
        if not self.seen:
            return Lookup(unresolved="its list of batches is empty")
        return Lookup(
            unresolved="its list of batches shows none of the batches made there before with their "
            "metadata or input file, so it cannot show this one"
        )


def _made_for(batch: Mapping[str, Any], row: BatchRow) -> bool:
    """The batch carries the intent in its metadata, or was made from the intent's file."""
    if as_dict(batch.get("metadata")).get("batchgpt_intent") == row.intent:
        return True
    return row.file_id is not None and batch.get("input_file_id") == row.file_id
