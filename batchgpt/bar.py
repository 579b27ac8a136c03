"""The progress bar on a terminal (rich), imported only when a bar is drawn. It knows nothing of
progress.py, which draws it: the figures it shows are passed in.

Two lines, so the figures never crowd each other out of an 80-column terminal: the job, the bar,
the count and the time (elapsed and left), each column at its full width with the bar taking
what is left; then the rates, tokens, cost and pace, which wrap rather than push the count off.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TextIO

from rich.console import Console, RenderableType
from rich.progress import BarColumn, ProgressColumn, Task, TaskID, TextColumn
from rich.progress import Progress as RichProgress
from rich.table import Column
from rich.text import Text

NAME_WIDTH = 20  # a longer job name is cut with '…' on the bar (the log lines name it whole)


def clock(seconds: float) -> str:
    """'0:01:40', as a person reads a duration."""
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02}:{whole % 60:02}"


class _Count(ProgressColumn):
    """'224/2,000' (rich's own count has no thousands separators)."""

    def render(self, task: Task) -> Text:
        return Text(f"{int(task.completed):,}/{int(task.total or 0):,}", style="progress.download")


class _Time(ProgressColumn):
    """'0:00:12 elapsed, 0:01:40 left': labelled, the time left at the run's recent pace."""

    def __init__(self, elapsed: Callable[[], float], remaining: Callable[[], float | None]) -> None:
        super().__init__()
        self.elapsed, self.remaining = elapsed, remaining

    def render(self, task: Task) -> Text:
        left = self.remaining()
        shown = "?" if left is None else clock(left)
        return Text(f"{clock(self.elapsed())} elapsed, {shown} left", style="progress.remaining")


class _TwoLines(RichProgress):
    def get_renderables(self) -> Iterable[RenderableType]:
        yield self.make_tasks_table(self.tasks)
        for task in self.tasks:
            yield Text(str(task.fields.get("stats", "")))


def start(
    job: str,
    total: int,
    elapsed: Callable[[], float],
    remaining: Callable[[], float | None],
    stream: TextIO,
) -> tuple[RichProgress, TaskID]:
    """A started bar for `job`'s `total` items, drawn on `stream`, and its task. The times come
    from `elapsed` and `remaining` (progress.Progress's), asked each time the bar is drawn."""
    bar = _TwoLines(
        TextColumn(
            "{task.description}",
            style="bold",
            markup=False,  # a job name is shown as written
            table_column=Column(max_width=NAME_WIDTH, no_wrap=True, overflow="ellipsis"),
        ),
        BarColumn(bar_width=None, table_column=Column(ratio=1)),
        _Count(),
        _Time(elapsed, remaining),
        console=Console(file=stream),
        expand=True,  # the bar's column takes the width the others leave
        transient=False,
    )
    bar.start()
    return bar, bar.add_task(job, total=total, stats="")
