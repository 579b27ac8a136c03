"""Progress: a rich bar on a terminal, a log line every few seconds anywhere else.

Cron mails whatever a job prints, so off a terminal there is no bar and no colour, only a line
every `interval` seconds and the summary. Lines go through logging (logs.py decides their look,
text or JSON); with the bar on they print above it. NO_COLOR is honoured by rich itself.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TextIO

from . import logs
from .records import Result

log = logging.getLogger(__name__)

LOG_INTERVAL = 5.0
RATE_WINDOW_S = 30.0  # the time left is reckoned at the pace of the last half minute


class Progress:
    def __init__(
        self,
        job: str,
        total: int,
        bar: bool | None = None,
        stream: TextIO | None = None,
        interval: float = LOG_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.job = job
        self.total = total
        self.stream = stream or sys.stderr  # where the bar is drawn
        self.bar = self.stream.isatty() if bar is None else bar
        self.interval = interval
        self.done = self.ok = self.failed = self.reused = 0
        self.tokens = 0
        self.cost = 0.0
        self.pace_text = ""  # how fast requests may go, and why (set by the engine's pacers)
        self._clock = clock
        self.started = clock()
        self._last_log = self.started
        self._answered: deque[float] = deque()  # when this run's items finished, within RATE_WINDOW_S
        self._rich: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if self.bar:
            from . import bar  # rich is loaded only to draw a bar

            self._rich, self._task = bar.start(self, self.stream)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._rich is not None:
            self._rich.stop()

    def reuse(self, count: int = 1) -> None:
        """Items answered by an earlier run, counted as done without being sent."""
        self.done += count
        self.reused += count
        self._refresh()

    def update(self, result: Result) -> None:
        self.done += 1
        self._answered.append(self._clock())
        if result.status == "ok":
            self.ok += 1
        elif result.status == "error":
            self.failed += 1
        self.tokens += (result.prompt_tokens or 0) + (result.completion_tokens or 0)
        self.cost += result.cost_usd or 0.0
        self._refresh()

    def pace(self, text: str) -> None:
        """What paces the run now: '9.8 req/s (headers)', 'waiting 20.0 s for the rate limit'."""
        self.pace_text = text
        self._refresh()

    def _rate(self) -> float:
        elapsed = self.elapsed_s()
        return (self.done - self.reused) / elapsed if elapsed > 0 else 0.0

    def elapsed_s(self) -> float:
        return self._clock() - self.started

    def remaining_s(self) -> float | None:
        """Seconds until every item is done at the recent pace, or None before there is one.

        The pace is the items this run finished over the last RATE_WINDOW_S, counted up to now:
        items answered by earlier runs took no time and would make it look fast (rich's own
        estimate counted them, and a rerun's ETA came out a fraction of the real one), and a
        burst that ended (a rate limit's credit spent) or a stall must slow the estimate down,
        which a rate measured between finishes alone never does."""
        now = self._clock()
        while self._answered and self._answered[0] < now - RATE_WINDOW_S:
            self._answered.popleft()
        span = min(RATE_WINDOW_S, now - self.started)
        if not self._answered or span < 1.0:
            return None
        return max(self.total - self.done, 0) * span / len(self._answered)

    def _refresh(self) -> None:
        if self._rich is not None:
            stats = f"{self._rate():.1f} req/s  {self.tokens:,} tokens  ${self.cost:.4f}  {self.failed:,} failed"
            if self.pace_text:
                stats += f"  pace: {self.pace_text}"
            self._rich.update(self._task, completed=self.done, stats=stats)
            return
        now = self._clock()
        if now - self._last_log >= self.interval:
            self._last_log = now
            self.log(
                "progress",
                done=self.done,
                total=self.total,
                ok=self.ok,
                failed=self.failed,
                rate=round(self._rate(), 2),
                tokens=self.tokens,
                cost_usd=round(self.cost, 6),
                pace=self.pace_text,
            )

    def log(self, event: str, message: str = "", level: int = logging.INFO, **fields: Any) -> None:
        """One event of the run's log, as text or JSON as logs.setup chose."""
        if event == "progress":
            message = (
                f"{fields['done']:,}/{fields['total']:,} done ({fields['ok']:,} ok, {fields['failed']:,} failed), "
                f"{fields['rate']} req/s, {fields['tokens']:,} tokens, ${fields['cost_usd']:.4f}"
                + (f"; pace {fields['pace']}" if fields.get("pace") else "")
            )
        logs.event(log, event, message or event, self.job, level, **fields)
