"""Progress: a rich bar on a terminal, a log line every few seconds anywhere else.

Cron mails whatever a job prints, so off a terminal there is no bar and no colour, only a line
every `interval` seconds and the summary. Lines go through logging (logs.py decides their look,
text or JSON); with the bar on they print above it. NO_COLOR is honoured by rich itself.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, TextIO

from . import logs
from .records import Result

log = logging.getLogger(__name__)

LOG_INTERVAL = 5.0


class Progress:
    def __init__(
        self,
        job: str,
        total: int,
        bar: bool | None = None,
        stream: TextIO | None = None,
        interval: float = LOG_INTERVAL,
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
        self.started = time.monotonic()
        self._last_log = self.started
        self._rich: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if self.bar:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeRemainingColumn,
            )
            from rich.progress import (
                Progress as RichProgress,
            )

            self._rich = RichProgress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[stats]}"),
                console=Console(file=self.stream),
                transient=False,
            )
            self._rich.start()
            self._task = self._rich.add_task(self.job, total=self.total, stats="")
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
        elapsed = time.monotonic() - self.started
        return (self.done - self.reused) / elapsed if elapsed > 0 else 0.0

    def _refresh(self) -> None:
        if self._rich is not None:
            stats = f"{self._rate():.1f} req/s  {self.tokens:,} tokens  ${self.cost:.4f}  {self.failed:,} failed"
            if self.pace_text:
                stats += f"  pace: {self.pace_text}"
            self._rich.update(self._task, completed=self.done, stats=stats)
            return
        now = time.monotonic()
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
