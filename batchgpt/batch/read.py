"""Reading what the Batch API answers: the fields of a batch object, and the lines of an ended
batch's output and error files matched to the items the batch holds, by one rule.

A line belongs to the item whose `custom_id` it carries among the items the batch holds, as the
store gives them (each with the hash of the request it was submitted with): its answer is
recorded under that item and hash, whatever the job says now. An item's first answer stands: an
error line never undoes it, and a second line for it is ignored, as is a line for no item of
the batch; both are told. The counts are the files': a batch object's `request_counts` is shown
when it has one, never trusted to say what the files hold. A line too large to read (bodies.py)
answers its item as an error, likely billed; one that names no item leaves every item no line
spoke of unread (and likely billed) rather than missing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from batchgpt.store import WaitingItem
from batchgpt.words import count

from .files import LineOutcome, read_line


class Tally:
    """What an ended batch's lines did for the items it holds, as they are read."""

    def __init__(self, waiting: Mapping[str, WaitingItem]):
        self.waiting = waiting
        self.answered: set[str] = set()
        self.failed: set[str] = set()
        self.foreign = 0  # lines for no item of the batch
        self.duplicate = 0  # lines for an item that had its line
        self.extra_answers = 0  # of those, the ones with an answer (perhaps billed)
        self.unreadable = 0
        self.too_large = 0  # lines too large to read, each for an item of the batch (likely billed)
        self.unnamed = 0  # lines too large to read whose start named no item: any unspoken item's

    def match(self, outcome: LineOutcome) -> WaitingItem | None:
        """The item to record this line for; None when it is ignored (and counted)."""
        item = self.waiting.get(outcome.custom_id)
        repeated = item is not None and (item.id in self.answered or (outcome.body is None and item.id in self.failed))
        if item is None or repeated:
            nameless = outcome.too_large and not outcome.custom_id  # any unspoken item's (collect._unread)
            self.unnamed += nameless
            self.foreign += item is None and not nameless
            self.duplicate += repeated
            self.extra_answers += outcome.body is not None or (outcome.too_large and not nameless)
            return None
        self.too_large += outcome.too_large
        return item

    def recorded(self, item: WaitingItem, answered: bool) -> None:
        (self.answered if answered else self.failed).add(item.id)

    def missing(self) -> list[WaitingItem]:
        """The items no line spoke of, in line order."""
        spoken = self.answered | self.failed
        return [item for item in self.waiting.values() if item.id not in spoken]

    def counts(self, total: int) -> dict[str, int]:
        return {"total": total, "completed": len(self.answered), "failed": len(self.failed - self.answered)}

    def ignored(self) -> str | None:
        """What was ignored, for a warning; None when nothing was."""
        parts = [
            f"{count(self.duplicate, 'line')} for an item that had its line" if self.duplicate else "",
            f"{count(self.foreign, 'line')} for no item of the batch" if self.foreign else "",
            f"{count(self.unreadable, 'line')} not readable" if self.unreadable else "",
        ]
        told = "; ".join(p for p in parts if p)
        return told or None


def read_files(downloaded: list[tuple[str, Path]], tally: Tally) -> Iterator[LineOutcome]:
    """The lines of a batch's output and error files, as they are read; broken ones are counted
    (and told with the lines ignored)."""
    for _, path in downloaded:
        with path.open("rb") as handle:
            for raw in handle:
                if raw.strip():
                    outcome = read_line(raw)
                    if isinstance(outcome, str):
                        tally.unreadable += 1
                    else:
                        yield outcome


def readable(path: Path) -> tuple[int, int]:
    """(lines read, lines not readable) of a downloaded file."""
    good = bad = 0
    with path.open("rb") as handle:
        for raw in handle:
            if raw.strip():
                if isinstance(read_line(raw), str):
                    bad += 1
                else:
                    good += 1
    return good, bad


def api_counts(data: Mapping[str, Any]) -> dict[str, int] | None:
    """A batch object's request_counts, each a whole number; None when it has none."""
    counts = as_dict(data.get("request_counts"))
    return {k: whole(counts.get(k)) for k in ("total", "completed", "failed")} if counts else None


def summary(counts: Mapping[str, int]) -> str:
    return f"{counts['completed']:,} completed, {counts['failed']:,} failed of {counts['total']:,}"


def validation_errors(data: Mapping[str, Any]) -> list[tuple[int | None, str, str]]:
    """(line, code, message) of each problem a failed batch reports; line None: the whole file."""
    found = []
    errors = data.get("errors")
    listed = errors if isinstance(errors, list) else as_dict(errors).get("data")
    for error in listed if isinstance(listed, list) else []:
        if isinstance(error, dict):
            line = error.get("line")
            found.append(
                (
                    line if isinstance(line, int) else None,
                    str(error.get("code") or "invalid"),
                    str(error.get("message")),
                )
            )
    return found or [(None, "failed", "the batch failed without saying why")]


def as_dict(value: Any) -> dict[str, Any]:
    """A field the API documents as an object; anything else reads as empty (a server's oddity)."""
    return value if isinstance(value, dict) else {}


def whole(value: Any) -> int:
    """A count the API documents as a whole number; anything else counts as 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def when(value: Any) -> float | None:
    """A timestamp (epoch seconds) the API documents as a number; anything else is unknown."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
