"""paceshow: the pace is logged when it changes, not every second the watch looks (issue 28, item 12)."""

from __future__ import annotations

import io
import logging

import pytest

from batchgpt.online.paceshow import PaceShow
from batchgpt.outage import Outage
from batchgpt.pacer import Pace
from batchgpt.progress import Progress


class Paces:
    """A Pacing that tells what the test sets."""

    def __init__(self) -> None:
        self.now: list[Pace] = []

    def paces(self) -> list[Pace]:
        return self.now


def pace(rate: float | None, source: str = "headers") -> Pace:
    return Pace("gpt-4o-mini at http://127.0.0.1/v1", rate, None, source, 0.0, 1, None)


def test_an_unchanged_pace_is_logged_once_and_each_change_once(caplog: pytest.LogCaptureFixture) -> None:
    paces = Paces()
    with Progress("t", 10, bar=False, stream=io.StringIO()) as progress:
        show = PaceShow(paces, Outage(60, lambda: 0.0), progress)  # type: ignore[arg-type]
        with caplog.at_level(logging.DEBUG, logger="batchgpt"):
            for rate in (0.245, 0.245, 0.245, 0.245, 0.5, 0.5, 0.245):
                paces.now = [pace(rate)]
                show.show(0)
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("pace of")]
    assert len([m for m in said if "0.245 req/s" in m]) == 2  # at first, and when it came back
    assert len([m for m in said if "0.5 req/s" in m]) == 1  # it was printed every second before
