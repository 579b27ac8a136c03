"""The seam between a run's lifecycle (lifecycle.py) and what executes its items: a backend.

The lifecycle locks the job, opens its state, begins the run, runs the backend, and then closes
the run's accounts and writes its results. A backend only executes: the online engine
(online/engine.py) sends each request as a call; the Batch API runner (batch/runner.py) submits
files, polls and collects. A new backend (another provider's native batch API, say) implements
this protocol in its own package, and wiring.wire builds it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .store import RunTotals


@dataclass(frozen=True)
class Ending:
    """How a backend's part of a run ended. `pending`: the exit code while items still wait
    elsewhere (open batches), when no results are written yet; `fields`: more of the summary."""

    stopped: str | None
    pending: int | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)


class Backend(Protocol):
    @property
    def mode(self) -> str:
        """What the run's first log line calls it: online, batch, cancel."""

    @property
    def sent(self) -> int:
        """Calls made to the API (each counted once, retries included)."""

    @property
    def refused(self) -> int:
        """429 and 503 answers waited out."""

    @property
    def retries(self) -> Counter[str]:
        """Retried calls by cause (HTTP 429, timeout ...), kept in the run's row."""

    @property
    def stopped(self) -> str | None:
        """Why it stopped early, if it did: items not answered are recorded as not answered for it."""

    async def run(self) -> None:
        """Execute: record each item's result in the store as it comes. Cancelling it ends the
        work in flight at once (what was recorded is committed)."""

    def stop(self, reason: str) -> None:
        """Start no new work; what is in flight may finish."""

    def wind_up(self, hard: bool) -> None:
        """After `run` ended (or was cancelled; `hard`: by a stop that writes nothing), record what
        it left: items it never reached. Called in a worker thread."""

    def ending(self, totals: RunTotals) -> Ending:
        """How it ended, once the run's items are counted."""
