"""The pace an online run goes at, told: on the bar and in each progress line, and in the log
when it changes for a reason (the server's headers, backing off after 429s, a pause it asked for);
and, once a run, a warning when a server asked for a wait longer than the run obeys."""

from __future__ import annotations

import logging

from batchgpt.outage import Outage
from batchgpt.pacing import Pace, Pacing
from batchgpt.progress import Progress
from batchgpt.retry import MAX_SERVER_DELAY, ServerWait
from batchgpt.words import count

log = logging.getLogger(__name__)

WATCH_S = 1.0  # how often the outage watch and the pace display look
SHOWN_PAUSE_S = 0.5  # shorter rate-limit pauses are pacing, not news


class PaceShow:
    def __init__(self, pacing: Pacing, outage: Outage, progress: Progress):
        self.pacing = pacing
        self.outage = outage
        self.progress = progress
        self._told: dict[str, tuple[str, int | None, bool]] = {}  # pacer: what the log last said of it
        self._capped_told = False
        self._described: dict[str, str] = {}  # pacer: its pace as the debug log last said it

    def show(self, refused: int) -> None:
        """The pace on the bar and in each progress line; a log line when it changes for a reason."""
        paces = self.pacing.paces()
        shown = [describe(p) for p in paces if p.rate or p.paused_for >= SHOWN_PAUSE_S or p.window]
        silent = self.outage.silent_for()
        if silent is not None and silent >= WATCH_S:
            shown.append(f"no answer for {silent:.0f} s (the run stops at {self.outage.seconds:g} s)")
        if refused:
            shown.append(f"{refused:,} refused (429/503)")
        self.progress.pace("; ".join(shown))
        capped = next((p for p in paces if p.capped is not None), None)
        if capped is not None and capped.capped is not None and not self._capped_told:
            self._capped_told = True
            self.progress.log("capped", capped_line(capped.name, capped.capped), logging.WARNING)
        for pace in paces:
            described = describe(pace, long=True)
            if self._described.get(pace.name) != described:  # -v: a line when it changes, not each second
                self._described[pace.name] = described
                log.debug("pace of %s: %s", pace.name, described)
            state = (pace.source, pace.window, pace.paused_for >= WATCH_S)
            if self._told.get(pace.name, ("unlimited", None, False)) != state:
                self._told[pace.name] = state
                self.progress.log("pace", message=f"{pace.name}: {describe(pace, long=True)}")


def describe(pace: Pace, long: bool = False) -> str:
    """'9.8 req/s (headers)', or in the log 'pacing at 9.8 req/s, from the server's x-ratelimit headers'."""
    if pace.paused_for >= SHOWN_PAUSE_S:
        return f"waiting {pace.paused_for:.1f} s for the rate limit, as the server asked"
    rate = f"{pace.rate:.3g} req/s" if pace.rate else "no request limit"
    if pace.token_rate:
        rate += f", {pace.token_rate:,.0f} tokens/s"
    if not long:
        return f"{rate} ({pace.source})"
    why = {
        "told": "as the job says",
        "headers": "from the server's x-ratelimit headers",
        "backing off": "backing off after 429s",
        "unlimited": "no limit known",
    }[pace.source]
    window = "" if pace.window is None else f", at most {pace.window} in flight (the server is overloaded or slow)"
    return f"pacing at {rate}, {why}{window}"


def capped_line(name: str, wait: ServerWait) -> str:
    """The warning for a server-told wait cut short: what was asked, what is waited, and why."""
    if wait.seconds < MAX_SERVER_DELAY:
        why = f"limits.patience is {wait.seconds:g} s: a limit that refuses everything longer than that fails its items"
    else:
        why = f"no server-told wait longer than {MAX_SERVER_DELAY:g} s is obeyed (nor past limits.patience)"
    asked = f"the server's {wait.header} asked to wait {span(wait.asked)}"
    return f"{name}: {asked}; waiting {wait.seconds:g} s instead, as {why}"


def span(seconds: float) -> str:
    """'300 s', '86,400 s (about 1 day)', '1,136,073,600 s (about 36 years)'."""
    for unit, length in (("year", 365.25 * 86400), ("day", 86400.0)):
        if seconds >= length:
            return f"{seconds:,.0f} s (about {count(round(seconds / length), unit)})"
    return f"{seconds:,.0f} s"
