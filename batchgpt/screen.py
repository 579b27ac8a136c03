"""Tables for people: the dry run, the batch plan, past runs and batches, fitted to the terminal.

A table wider than the terminal wraps every row into an unreadable grid, so on a terminal (or
wherever COLUMNS is set) a table is fitted to its width: headers wrap onto several lines, text
columns (the notes) move under the table, and then the columns the caller names as least needed
are left out, each step only while the table still does not fit. What was left out is said under
the table. Off a terminal (a pipe, a cron log) the table is printed whole.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

GAP = 2  # characters between two columns
KEY_MIN = 14  # the narrowest a key column (task, model) is folded to
NOTE_MIN = 24  # a text column narrower than this wraps into a word a line: move it under the table instead


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


def fit(
    cells: Mapping[str, Sequence[str]],
    width: int | None,
    drop: Sequence[str] = (),
    fold: Sequence[str] = (),
    keep: Sequence[str] = (),
) -> Layout:
    """The layout of a table whose columns hold `cells` in `width` characters (None: unlimited).
    Numbers never wrap, headers wrap at spaces, `fold` columns (free text) wrap down to NOTE_MIN
    and then move under the table, and `drop` columns are left out in that order; on a terminal
    narrower still, the last columns but the first and those in `keep` go too."""
    natural = {c: max([len(header(c)), *map(len, values)]) for c, values in cells.items()}
    if width is None:
        return Layout(dict(natural))
    least = {c: _least(c, values, c in fold) for c, values in cells.items()}
    layout = Layout({c: least[c] for c in cells})
    rest = [c for c in reversed(list(cells)[1:]) if c not in (*fold, *drop, *keep)]
    for column in [*fold, *drop, None, *rest]:
        if layout.total <= width:
            break
        if column is None:  # before any figure goes, a long task or model name wraps
            for key in (k for k in keep if k in layout.widths):
                layout.widths[key] = min(layout.widths[key], max(KEY_MIN, *map(len, header(key).split())))
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


def print_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    title: str,
    drop: Sequence[str] = (),
    fold: Sequence[str] = (),
    key: Sequence[str] = (),
    more: str = "",
) -> None:
    """Print a table fitted to the terminal. A folded column's values follow the table, each
    named by the row's `key` columns; `more` says where the columns left out can be seen."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    width = terminal_width()
    cells = {c: [cell(c, row.get(c)) for row in rows] for c in columns}
    layout = fit(cells, width, drop, fold, key)
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), pad_edge=False, show_edge=False)
    for column, size in layout.widths.items():
        numeric = all(isinstance(row.get(column), (int, float, type(None))) for row in rows)
        table.add_column(header(column), width=size, justify="right" if numeric else "left", overflow="fold")
    for n in range(len(rows)):
        table.add_row(*(cells[c][n] for c in layout.widths))
    # Names and notes are shown as written (markup=False): a task called "[red]" is no colour.
    console = Console(width=width or layout.total, markup=False, highlight=False)
    lines = [title]
    for column in layout.folded:
        for n, row in enumerate(rows):
            if cells[column][n]:
                named = " ".join(str(row.get(k)) for k in key if row.get(k)) or str(n + 1)
                lines.append(f"{header(column)} ({named}): {cells[column][n]}")
    if layout.dropped:
        lines.append(f"left out to fit {width} columns: {', '.join(header(c) for c in layout.dropped)}{more}")
    # Off a terminal nothing is wrapped: a log keeps each line whole.
    console.print(lines[0], soft_wrap=width is None)
    console.print(table)
    for line in lines[1:]:
        console.print(line, soft_wrap=width is None)
