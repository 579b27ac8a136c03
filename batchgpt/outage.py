"""Outage watch: has every endpoint of a run stopped answering for long enough to stop trying?

When every attempt run-wide has failed with a connection error or a 5xx for `seconds`, and
nothing answered in that time, the run stops starting requests instead of spending hours
failing: its unanswered items are `skipped` and a plain rerun sends them. Any answer below 500
(a 429 or a 400 included) shows an endpoint is up and ends a spell. A timeout is slowness, not
an outage (slow.py): it neither starts nor ends a spell, unless it came at the longest wait a
request is given. A spell starts when its first failing attempt started, so a server that never
answers is found as soon as such a timeout comes back.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .records import Failure


class Outage:
    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic):
        self.seconds = seconds
        self._clock = clock
        self._since: float | None = None  # when the first failing attempt of the current spell started
        self._last_answer = float("-inf")
        self._last_error = ""

    def answered(self) -> None:
        """An endpoint answered (anything below 500): whatever failed before was not an outage."""
        self._since = None
        self._last_answer = self._clock()

    def failed(self, started: float, failure: Failure, endpoint: str) -> None:
        """An attempt that started at `started` got no useful answer and looks like an outage's
        (slow.Deadline.hopeless). A spell begins no earlier than the last answer: one slow failure
        among answers is no outage."""
        begins = max(started, self._last_answer)
        if self._since is None or begins < self._since:
            self._since = begins
        self._last_error = f"{endpoint}: {failure.describe()}"

    def silent_since(self, moment: float) -> bool:
        """Nothing has answered since `moment`: an item failing since then may be a victim of an
        outage rather than the cause of its own failures, so it is held, not failed."""
        return self._last_answer < moment

    def silent_for(self) -> float | None:
        """Seconds since the current spell began; None when the last attempt was answered."""
        return None if self._since is None else self._clock() - self._since

    def verdict(self) -> str | None:
        """Why the run should stop, once the spell has lasted `seconds`; None until then."""
        if self._since is None or self._clock() - self._since < self.seconds:
            return None
        return (
            f"no answer from the endpoint for {self.seconds:g} s (last error: {self._last_error}); "
            "unanswered items are skipped, and a plain rerun sends them"
        )
