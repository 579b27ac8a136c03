"""Slow is not down: how long an attempt waits for its answer, and what attempts that got no
usable answer may have cost.

A relay that queues over-limit requests (LiteLLM holds them about 60 s) answers late, not never,
and bills what it forwarded even after the client gave up. So a timeout is no sign of an outage.
Instead each limit (endpoint, key, model) learns to wait longer: an attempt that timed out at the
limit's current wait doubles it, up to LONGEST times `limits.timeout`, and it stays there for the
run (the cost is only that a request that truly hangs is given up later). The pacer meanwhile
lets fewer requests be in flight at once, as after a 503 (pacing.py), and recovers as answers
come. Only an attempt that waited the longest and still got nothing may count toward the outage
watch: a server that says nothing in four times the timeout is not merely slow.

An attempt that may have been billed without saying how much (it timed out, was cut off after it
was sent, or its answer could not be read) is tallied here with its worst-case cost, for the
run's summary: the results' cost cannot include it, and the bill may.
"""

from __future__ import annotations

from dataclasses import dataclass

from .records import Failure
from .words import count

GROWTH = 2.0  # a timeout at the current wait multiplies it by this
LONGEST = 4.0  # ... up to this many times limits.timeout


class Deadline:
    """How long the attempts on one limit wait for their answer."""

    def __init__(self, base: float):
        self.base = base
        self.seconds = base

    @property
    def longest(self) -> float:
        return self.base * LONGEST

    def timed_out(self, waited: float) -> None:
        """An attempt that waited `waited` seconds timed out. Only one that waited the current
        wait makes it longer: attempts sent before the last growth say nothing new."""
        if waited >= self.seconds:
            self.seconds = min(self.seconds * GROWTH, self.longest)

    def hopeless(self, failure: Failure, waited: float) -> bool:
        """Whether the failure is one an outage watch may count: not a timeout, unless the attempt
        waited as long as any ever will."""
        return failure.cause != "timeout" or waited >= self.longest


class Deadlines:
    """A run's deadlines, one per limit, by the limit's name."""

    def __init__(self, base: float):
        self._base = base
        self._deadlines: dict[str, Deadline] = {}

    def of(self, name: str) -> Deadline:
        deadline = self._deadlines.get(name)
        if deadline is None:
            deadline = self._deadlines[name] = Deadline(self._base)
        return deadline


@dataclass
class Unconfirmed:
    """Attempts that got no usable answer but may have been billed, and their worst-case cost
    (None once one has no price)."""

    attempts: int = 0
    timed_out: int = 0
    worst_usd: float | None = 0.0

    def add(self, failure: Failure, worst_usd: float | None) -> None:
        self.attempts += 1
        self.timed_out += failure.cause == "timeout"
        self.worst_usd = None if self.worst_usd is None or worst_usd is None else self.worst_usd + worst_usd


def unconfirmed_line(attempts: int, timed_out: int, worst_usd: float | None) -> str:
    """The summary's sentence on attempts that may have been billed without an answer."""
    other = attempts - timed_out
    what = " and ".join(
        part
        for part in (
            f"{count(timed_out, 'attempt')} timed out" if timed_out else "",
            f"{count(other, 'attempt')} {'was' if other == 1 else 'were'} cut off or unreadable" if other else "",
        )
        if part
    )
    cost = "an unknown amount (no price known)" if worst_usd is None else f"up to ${worst_usd:.6f}"
    return (
        f"{what}: the server may have done the work and billed it, {cost} at worst, "
        "which the cost below does not include"
    )
