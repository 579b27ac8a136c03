"""Tables for people: the dry run, the batch plan, past runs and batches, fitted to the terminal.

A table wider than the terminal wraps every row into an unreadable grid, so on a terminal (or
wherever COLUMNS is set) a table is fitted to its width: headers wrap onto several lines, text
columns (the notes) move under the table, and then columns are left out by the table's `Ranking`,
least important first: its optional columns, then (once long names have wrapped) its needed ones,
never the first. What was left out, and where to see it, is said under the table. Off a terminal
(a pipe, a cron log) the table is printed whole.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

GAP = 2  # characters between two columns
KEY_MIN = 14  # the narrowest a key column (task, model) is folded to
NOTE_MIN = 24  # a text column narrower than this wraps into a word a line: move it under the table instead


@dataclass(frozen=True)
class Ranking:
    """A table's columns by importance, each tuple most important first. On a narrow terminal the
    `fold` columns (free text) move under the table first, then `optional` columns are left out,
    least important first; then the `names` (task, model: they name a row) wrap, and only then do
    `needed` columns go, least important first, never the first of them. A column ranked nowhere
    goes before any ranked one. `more` says where the whole table can be seen."""

    needed: tuple[str, ...]
    optional: tuple[str, ...] = ()
    fold: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    more: str = ""

    @property
    def ranked(self) -> tuple[str, ...]:
        return (*self.needed, *self.optional, *self.fold)


@dataclass
class Layout:
    """Which columns a table shows and how wide, and which it folds under itself or leaves out."""

    widths: dict[str, int]  # shown columns, in order, and their widths
    folded: list[str] = field(default_factory=list)  # text columns printed under the table
    dropped: list[str] = field(default_factory=list)  # columns left out

    @property
    def total(self) -> int:
        return sum(self.widths.values()) + GAP * (len(self.widths) - 1)


def header(column: str) -> str:
    return column.replace("_", " ")


def cell(column: str, value: Any) -> str:
    """A value as a table shows it: thousands separated, costs to the millionth of a dollar, an
    unknown cost as '?'."""
    if value is None:
        return "?" if column.startswith(("cost", "max_")) else ""
    if isinstance(value, float):
        return f"{value:.6f}" if "cost" in column or column.endswith("_usd") else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def fit(cells: Mapping[str, Sequence[str]], width: int | None, ranking: Ranking) -> Layout:
    """The layout of a table whose columns hold `cells` in `width` characters (None: unlimited).
    Numbers never wrap, headers wrap at spaces, and columns give way as `ranking` says."""
    natural = {c: max([len(header(c)), *map(len, values)]) for c, values in cells.items()}
    if width is None:
        return Layout(dict(natural))
    fold = [c for c in ranking.fold if c in cells]
    least = {c: _least(c, values, c in fold) for c, values in cells.items()}
    layout = Layout({c: least[c] for c in cells})
    unranked = [c for c in reversed(list(cells)) if c not in ranking.ranked]
    for column in [*fold, *unranked, *reversed(ranking.optional), None, *reversed(ranking.needed[1:])]:
        if layout.total <= width:
            break
        if column is None:  # before any needed figure goes, a long task or model name wraps
            for name in (n for n in ranking.names if n in layout.widths):
                layout.widths[name] = min(layout.widths[name], max(KEY_MIN, *map(len, header(name).split())))
        elif column in layout.widths:
            del layout.widths[column]
            (layout.folded if column in fold else layout.dropped).append(column)
    # The room left goes first to the columns that need least to stop wrapping their header.
    room = width - layout.total
    for column in sorted(layout.widths, key=lambda c: natural[c] - layout.widths[c]):
        more = min(max(room, 0), natural[column] - layout.widths[column])
        layout.widths[column] += more
        room -= more
    return layout


def _least(column: str, values: Sequence[str], text: bool) -> int:
    words = [len(word) for word in header(column).split()]
    if not text:
        return max([*words, *map(len, values)])
    longest = max([*words, *(len(word) for value in values for word in value.split())])
    return max(longest, min(NOTE_MIN, max([len(header(column)), *map(len, values)])))


def terminal_width() -> int | None:
    """The width to fit: the terminal's, or COLUMNS where it is set; None (the whole table) off a
    terminal, where nothing wraps a line and a log keeps every column."""
    from rich.console import Console

    console = Console()
    return console.width if console.is_terminal or os.environ.get("COLUMNS", "").isdigit() else None


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], title: str, ranking: Ranking) -> None:
    """Print a table fitted to the terminal. A folded column's values follow the table, each
    named by the row's `names` columns; the line under it says what was left out and where to
    see it (`ranking.more`)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    width = terminal_width()
    cells = {c: [cell(c, row.get(c)) for row in rows] for c in columns}
    layout = fit(cells, width, ranking)
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), pad_edge=False, show_edge=False)
    for column, size in layout.widths.items():
        numeric = all(isinstance(row.get(column), (int, float, type(None))) for row in rows)
        table.add_column(header(column), width=size, justify="right" if numeric else "left", overflow="fold")
    for n in range(len(rows)):
        table.add_row(*(broken(cells[c][n], size) for c, size in layout.widths.items()))
    # Names and notes are shown as written (markup=False): a task called "[red]" is no colour.
    console = Console(width=width or layout.total, markup=False, highlight=False)
    lines = [title]
    for column in layout.folded:
        for n, row in enumerate(rows):
            if cells[column][n]:
                named = " ".join(str(row.get(k)) for k in ranking.names if row.get(k)) or str(n + 1)
                lines.append(f"{header(column)} ({named}): {cells[column][n]}")
    if layout.dropped:
        left = ", ".join(header(c) for c in layout.dropped)
        lines.append(f"left out to fit {width} columns: {left}{ranking.more}")
    # Off a terminal nothing is wrapped: a log keeps each line whole.
    console.print(lines[0], soft_wrap=width is None)
    console.print(table)
    for line in lines[1:]:
        console.print(line, soft_wrap=width is None)


def broken(value: str, width: int) -> str:
    """A value too wide for its column, broken into lines after a '-', '/', '.', '_' or space
    (gpt-3.5-turbo- / instruct), so a name wraps where it reads, never inside a word; only a
    part longer than the whole column is folded by characters."""
    if len(value) <= width:
        return value
    lines = [""]
    for part in re.findall(r"[^-/._ ]*[-/._ ]|[^-/._ ]+", value):
        if lines[-1] and len(lines[-1]) + len(part.rstrip()) > width:
            lines.append("")
        lines[-1] += part
    return "\n".join(line.rstrip() for line in lines)
