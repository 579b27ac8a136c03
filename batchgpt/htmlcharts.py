"""The HTML page's building blocks: escaping, tables, inline SVG charts, how figures are written
(durations, dollars, times) and the page's CSS. It knows nothing of runs: htmlpage.py lays the
run's figures out with these. The page fits a phone (375 CSS pixels) without scrolling sideways:
each table scrolls in its own box, long words wrap, and the charts scale to the page's width.

Every value that comes from data goes through `esc` (html.escape): answers and errors are
untrusted. Markup built here is a `Raw` string, which `cell` passes through unescaped.
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Iterable, Sequence

from .records import TimeSlice

# The chart's drawing area, in the SVG's own units (it scales to the page's width).
WIDTH, LEFT, RIGHT, TOP, BOTTOM, PLOT_H = 960, 64, 16, 16, 34, 180
PLOT_W = WIDTH - LEFT - RIGHT


class Raw(str):
    """Markup built here (already escaped), which `cell` passes through; any other str is escaped."""


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def cell(value: object) -> str:
    return value if isinstance(value, Raw) else esc(value)


def section(heading: str, body: str) -> str:
    return f"<section><h2>{esc(heading)}</h2>\n{body}\n</section>"


def html_table(
    head: Sequence[str], rows: Iterable[Sequence[object]], numeric: Iterable[int] = (), wrap: Iterable[int] = ()
) -> str:
    """A table; `numeric` columns are right-aligned, `wrap` columns (long ids, messages) break anywhere."""
    right, long = set(numeric), set(wrap)
    cls = [' class="n"' if n in right else ' class="wrap"' if n in long else "" for n in range(len(head))]
    header = "".join(f"<th{cls[n]}>{esc(h)}</th>" for n, h in enumerate(head))
    body = "".join("<tr>" + "".join(f"<td{cls[n]}>{cell(v)}</td>" for n, v in enumerate(row)) + "</tr>" for row in rows)
    # in a box of its own that scrolls sideways: a table wider than a phone never widens the page
    return f'<div class="scroll"><table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table></div>'


def svg(height: float, body: str, label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height:.0f}" role="img" '
        f'aria-label="{esc(label)}">{body}</svg>'
    )


def hbars(bars: Sequence[tuple[str, float | None, str]], colour: str, label: str) -> str:
    """Horizontal bars, one a row: (name, value, shown value); a None value draws no bar."""
    row, name_w, value_w = 24, 300, 120
    span = WIDTH - name_w - value_w - 8
    top = max((v for _, v, _ in bars if v), default=0.0) or 1.0
    parts = []
    for n, (name, value, shown) in enumerate(bars):
        y = 6 + n * row
        w = (value or 0.0) / top * span
        parts.append(
            f"<g><title>{esc(name)}: {esc(shown)}</title>"
            f'<text x="{name_w - 8}" y="{y + 15}" text-anchor="end">{esc(name)}</text>'
            f'<rect class="{colour}" x="{name_w}" y="{y + 3}" width="{w:.1f}" height="{row - 8}"/>'
            f'<text x="{name_w + w + 6:.1f}" y="{y + 15}">{esc(shown)}</text></g>'
        )
    return svg(12 + len(bars) * row, "".join(parts), label)


def grid(top: float, unit: str) -> str:
    """Horizontal lines at 0, half and the top of the scale, labelled."""
    parts = []
    for share in (0.0, 0.5, 1.0):
        y = TOP + PLOT_H - share * PLOT_H
        kind = "axis" if share == 0 else "grid"
        parts.append(
            f'<line class="{kind}" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{esc(number(top * share) + unit)}</text>'
        )
    return "".join(parts)


def time_axis(end_s: float) -> str:
    y = TOP + PLOT_H + 18
    labels = [(LEFT, "start", "0 s"), (LEFT + PLOT_W / 2, "middle", duration(end_s / 2))]
    labels.append((WIDTH - RIGHT, "end", duration(end_s)))
    return "".join(f'<text x="{x:.1f}" y="{y}" text-anchor="{a}">{esc(t)}</text>' for x, a, t in labels)


def legend(entries: Sequence[tuple[str, str]], line: bool = False) -> str:
    parts = []
    for n, (cls, name) in enumerate(entries):
        x = WIDTH - RIGHT - 150 + n * 75
        mark = (
            f'<line class="line {cls}" x1="{x}" y1="{TOP - 6}" x2="{x + 14}" y2="{TOP - 6}"/>'
            if line
            else f'<rect class="{cls}" x="{x}" y="{TOP - 12}" width="12" height="12"/>'
        )
        parts.append(f'{mark}<text x="{x + 18}" y="{TOP - 2}">{esc(name)}</text>')
    return "".join(parts)


def nice(value: float) -> float:
    """The top of a chart's scale: 1, 2, 2.5 or 5 times a power of ten, at least `value`."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 2.5, 5, 10) if value <= step * power * (1 + 1e-9))


def number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 or value == int(value) else f"{value:.3g}"


def slice_span(s: TimeSlice) -> str:
    return f"{duration(s.start_s)} to {duration(s.end_s)}"


def duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def usd(value: float | None) -> str:
    return "unknown" if value is None else f"${value:,.6f}"


def when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(epoch))


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;background:#fff;
margin:0 auto;max-width:1000px;padding:24px}
h1{font-size:22px;margin:0 0 4px;overflow-wrap:anywhere}
h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
.meta{color:#57606a;margin:2px 0;overflow-wrap:anywhere}
.empty{color:#57606a;font-style:italic}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(140px,1fr));gap:10px;margin-top:16px}
.card{border:1px solid #d0d7de;border-radius:6px;padding:8px 12px;min-width:0;overflow-wrap:anywhere}
.card span{display:block}
.card .label{color:#57606a;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card .value{font-size:20px;font-weight:600}
.card .note{color:#57606a;font-size:12px}
.card.bad .value{color:#c62828}
.scroll{overflow-x:auto;margin:8px 0}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid #eaeef2;padding:4px 8px;text-align:left;vertical-align:top;overflow-wrap:break-word}
.wrap{overflow-wrap:anywhere;min-width:14em}
th{background:#f6f8fa}
.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td ul{margin:0;padding-left:16px}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;background:#f6f8fa;padding:0 3px;border-radius:3px}
dl.facts{display:grid;grid-template-columns:minmax(0,max-content) auto;gap:2px 16px;margin:8px 0}
dl.facts dt{color:#57606a}
dl.facts dd{margin:0;font-variant-numeric:tabular-nums}
svg{display:block;width:100%;height:auto;margin:8px 0}
svg text{font:12px system-ui,sans-serif;fill:#57606a}
.ok{fill:#2e7d32}
.failed{fill:#c62828}
.cost{fill:#6a1b9a}
.retry{fill:#8d6e63}
.line{fill:none;stroke-width:2.5;stroke-linejoin:round}
.p50{stroke:#1565c0}
.p95{stroke:#ef6c00}
.hover{fill:transparent}
.grid{stroke:#eaeef2}
.axis{stroke:#8c959f}
@media (max-width:600px){body{padding:12px}h1{font-size:19px}}
"""
