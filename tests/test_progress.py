"""Progress off a terminal: the log lines cron and CI see, in text and JSON, and what they count.

The lines go through logging; logs.setup points them at a StringIO here, as the CLI points them at stderr."""

from __future__ import annotations

import io
import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from batchgpt import logs
from batchgpt.progress import Progress
from batchgpt.records import Result

# `[\d.]+` for the rate: it depends on the clock, everything else on the line does not.
PROGRESS_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (?P<job>\S+): "
    r"(?P<done>\d+)/(?P<total>\d+) done \((?P<ok>\d+) ok, (?P<failed>\d+) failed\), "
    r"[\d.]+ req/s, (?P<tokens>[\d,]+) tokens, \$(?P<cost>\d+\.\d{4}) spent(?:; pace (?P<pace>.+))?$"
)


def result(
    status: str = "ok", prompt: int | None = 10, completion: int | None = 5, cost: float | None = 0.001
) -> Result:
    return Result(
        seq=0,
        id="a",
        task="t",
        type="chat",
        model="m",
        status=status,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost_usd=cost,
    )


def progress(log_format: str = "text", interval: float = 0, total: int = 4) -> tuple[Progress, io.StringIO]:
    stream = io.StringIO()
    logs.setup(log_format=log_format, stream=stream)
    return Progress("nightly", total, bar=False, interval=interval), stream


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines(stream)]


def test_each_update_logs_a_text_line_when_the_interval_has_passed() -> None:
    bar, stream = progress()
    bar.update(result())
    bar.update(result("error", prompt=7, completion=None, cost=None))
    first, second = (PROGRESS_LINE.match(line) for line in lines(stream))
    assert first and second, lines(stream)
    assert first.group("job", "done", "total", "ok", "failed", "tokens", "cost") == (
        "nightly",
        "1",
        "4",
        "1",
        "0",
        "15",
        "0.0010",
    )
    assert second.group("done", "ok", "failed", "tokens", "cost") == ("2", "1", "1", "22", "0.0010")
    assert first.group("pace") is None


def test_thousands_of_tokens_are_grouped() -> None:
    bar, stream = progress()
    bar.update(result(prompt=12_000, completion=345))
    match = PROGRESS_LINE.match(lines(stream)[0])
    assert match and match.group("tokens") == "12,345"


def test_nothing_is_logged_before_the_interval() -> None:
    bar, stream = progress(interval=3600)
    bar.update(result())
    bar.reuse(2)
    bar.pace("9.8 req/s (headers)")
    assert stream.getvalue() == ""
    assert (bar.done, bar.ok, bar.reused) == (3, 1, 2)


def test_counts_of_ok_failed_skipped_and_reused() -> None:
    bar, stream = progress(total=6)
    bar.reuse(2)
    for status in ("ok", "error", "skipped", "ok"):
        bar.update(result(status))
    assert (bar.done, bar.ok, bar.failed, bar.reused) == (6, 2, 1, 2)
    assert bar.tokens == 60 and round(bar.cost, 6) == 0.004
    last = PROGRESS_LINE.match(lines(stream)[-1])
    assert last and last.group("done", "total", "ok", "failed") == ("6", "6", "2", "1")
    # Reused items are done without being sent: the first line already counts them.
    reused = PROGRESS_LINE.match(lines(stream)[0])
    assert reused and reused.group("done", "ok") == ("2", "0")


def test_the_pace_is_shown_once_set() -> None:
    bar, stream = progress()
    bar.pace("9.8 req/s (headers)")
    bar.update(result())
    bar.pace("waiting 20.0 s for the rate limit")
    paces = [m.group("pace") for m in map(PROGRESS_LINE.match, lines(stream)) if m]
    assert paces == ["9.8 req/s (headers)", "9.8 req/s (headers)", "waiting 20.0 s for the rate limit"]


def test_json_progress_lines() -> None:
    bar, stream = progress("json")
    bar.reuse()
    bar.pace("9.8 req/s (told)")
    bar.update(result("error", prompt=3, completion=None, cost=0.5))
    records = json_lines(stream)
    assert [r["event"] for r in records] == ["progress"] * 3
    last = records[-1]
    assert isinstance(last["time"], float) and isinstance(last["rate"], (int, float))
    assert {k: last[k] for k in ("job", "done", "total", "ok", "failed", "tokens", "spent_usd", "pace")} == {
        "job": "nightly",
        "done": 2,
        "total": 4,
        "ok": 0,
        "failed": 1,
        "tokens": 3,
        "spent_usd": 0.5,
        "pace": "9.8 req/s (told)",
    }
    assert records[0]["pace"] == ""


def test_log_events_in_text_say_when_and_for_which_job() -> None:
    bar, stream = progress(interval=3600)
    bar.log("retry", "item a: HTTP 500, retrying in 0.5 s", attempt=2)
    bar.log("paused")
    bar.log("stopping", "stopping: budget reached", logging.WARNING)
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d "
    expected = [
        "nightly: item a: HTTP 500, retrying in 0.5 s",
        "nightly: paused",
        "nightly: warning: stopping: budget reached",
    ]
    assert [re.sub(f"^{stamp}", "", line) for line in lines(stream)] == expected
    assert all(re.match(stamp, line) for line in lines(stream))


def test_log_events_in_json_keep_text_and_show_any_value() -> None:
    bar, stream = progress("json", interval=3600)
    bar.log("retry", "élément 猫: HTTP 500", attempt=2)
    bar.log("written", path=Path("out/r.csv"))
    assert "猫" in stream.getvalue()  # not \u escapes: logs are read by people too
    retry, written = json_lines(stream)
    assert {k: v for k, v in retry.items() if k != "time"} == {
        "level": "info",
        "job": "nightly",
        "event": "retry",
        "message": "élément 猫: HTTP 500",
        "attempt": 2,
    }
    assert written["event"] == "written" and written["path"] == str(Path("out/r.csv"))


def test_no_bar_off_a_terminal_and_nothing_written_on_entry_or_exit() -> None:
    stream = io.StringIO()
    with Progress("nightly", 1, stream=stream, interval=3600) as bar:
        assert bar.bar is False
    assert stream.getvalue() == ""


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def drawn(stream: io.StringIO) -> list[str]:
    """The bar's last frame as the terminal shows it (escape codes taken out)."""
    frames = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", stream.getvalue()).replace("\r", "\n")
    return [line for line in frames.splitlines() if line.strip()][-3:]


def test_the_bar_keeps_its_count_and_labelled_times_whole_in_80_columns(monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    now = [0.0]
    stream = Terminal()
    with Progress("nightly-translation-of-the-faq", 2_000_000, stream=stream, clock=lambda: now[0]) as bar:
        bar.pace("9.8 req/s (headers); waiting 20.0 s for the rate limit; 1,234 refused (429/503)")
        for _ in range(224):
            now[0] += 0.1
            bar.update(result())
    lines = drawn(stream)
    assert all(len(line) <= 80 for line in lines), lines
    first = lines[0]
    assert " 224/2,000,000 0:00:22 elapsed, 55:32:57 left" in first and first.startswith("nightly-translation"), first
    assert "1,234 refused" in " ".join(lines[1:])  # the pace wraps onto the next line, never over the count


def test_the_time_left_is_at_the_recent_pace_of_answered_items() -> None:
    now = [0.0]
    bar = Progress("nightly", 100, bar=False, interval=3600, clock=lambda: now[0])
    assert bar.remaining_s() is None  # no pace yet
    bar.reuse(50)  # answered by an earlier run: done at once, taking no time
    for _ in range(10):
        now[0] += 1.0
        bar.update(result())
    # 40 left at one a second; counting the 50 reused ones as pace (as rich did) said 6.7 s
    assert bar.remaining_s() == 40.0
    now[0] += 20.0  # a stall: nothing answered for 20 s slows the estimate
    assert bar.remaining_s() == 40 * 30 / 10
    now[0] += 31.0  # nothing answered in the last half minute: no pace to reckon with
    assert bar.remaining_s() is None
    bar.reuse(40)
    assert bar.remaining_s() == 0.0  # all done: nothing left, pace or not


def test_a_burst_that_has_ended_does_not_stand_for_the_pace() -> None:
    now = [0.0]
    bar = Progress("nightly", 2000, bar=False, interval=3600, clock=lambda: now[0])
    for _ in range(60):  # a rate limit's credit: 60 answers in the first 0.6 s
        now[0] += 0.01
        bar.update(result())
    for _ in range(20):  # then one a second, the limit's pace
        now[0] += 1.0
        bar.update(result())
    assert bar.remaining_s() == pytest.approx(1920, rel=0.1)  # rich said 501 s, a quarter of it
