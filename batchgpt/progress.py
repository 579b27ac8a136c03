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
RATE_WINDOW_S = 30.0  # the time left is reckoned at the pace of the last half minute...
SHORT_WINDOW_S = 10.0  # ...or of the last ten seconds when that is slower (a burst has ended)
SHORT_MIN = 3  # answers the short window needs to count: fewer is noise on a slow job


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
        # this run's answers a second: [second, count], the last RATE_WINDOW_S of them (a few
        # dozen pairs however fast the run: a million items must not mean a million timestamps)
        self._answered: deque[list[int]] = deque()
        self._rich: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if self.bar:
            from . import bar  # rich is loaded only to draw a bar

            self._rich, self._task = bar.start(self.job, self.total, self.elapsed_s, self.remaining_s, self.stream)
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
        second = int(self._clock())
        if self._answered and self._answered[-1][0] == second:
            self._answered[-1][1] += 1
        else:
            self._answered.append([second, 1])
            while second - self._answered[0][0] > RATE_WINDOW_S:
                self._answered.popleft()
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

        The pace is the items this run finished over the last RATE_WINDOW_S, counted up to now,
        or over the last SHORT_WINDOW_S when that is slower. Items answered by earlier runs took
        no time and would make it look fast (rich's own estimate counted them, one by one, and a
        rerun's ETA came out a fraction of the real one); a stall must slow the estimate, which a
        rate measured only between answers never does; and a burst at the start (a rate limit's
        credit spent at once) must not stand for the pace once it has ended."""
        if self.done >= self.total:
            return 0.0
        now = self._clock()
        rates = []
        for window, least in ((RATE_WINDOW_S, 1), (SHORT_WINDOW_S, SHORT_MIN)):
            span = min(window, now - self.started)
            answered = sum(n for second, n in self._answered if second + 1 > now - span) if span >= 1.0 else 0
            if answered >= least:
                rates.append(answered / span)
        if not rates:
            return None
        return max(self.total - self.done, 0) / min(rates)

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
                spent_usd=round(self.cost, 6),  # this run's, as the summary's spent_usd (its cost_usd is the job's)
                pace=self.pace_text,
            )

    def log(self, event: str, message: str = "", level: int = logging.INFO, **fields: Any) -> None:
        """One event of the run's log, as text or JSON as logs.setup chose."""
        if event == "progress":
            message = (
                f"{fields['done']:,}/{fields['total']:,} done ({fields['ok']:,} ok, {fields['failed']:,} failed), "
                f"{fields['rate']} req/s, {fields['tokens']:,} tokens, ${fields['spent_usd']:.4f} spent"
                + (f"; pace {fields['pace']}" if fields.get("pace") else "")
            )
        logs.event(log, event, message or event, self.job, level, **fields)
