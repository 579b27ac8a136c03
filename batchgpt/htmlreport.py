"""The HTML run report: one self-contained page a person opens after a run (the only HTML module).

It owns the page: what it shows (totals, this run's cost and the job's, cost by task and model,
throughput and latency over time, retries and rate-limit waits, errors by kind with examples, the
slowest items), its inline SVG charts and its CSS. The page loads nothing: no script, no CDN, no
font, and its Content-Security-Policy forbids all of them, so it opens offline, and anything that
slipped in anyway would be blocked rather than run. Every value that comes from data (ids, error
messages, task and model names) goes through html.escape: answers and errors are untrusted.

Its size does not grow with the job: the time series has at most MAX_POINTS slices and every
table a fixed number of rows. The sums behind them are the store's (SQL over the rows, streamed),
so a 1,000,000-item run costs no more memory here than a small one.
"""

from __future__ import annotations

import html
import json
import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import OutputError
from .files import atomic_write
from .records import ErrorGroups, SlowItem, Timeline, TimeSlice, shortened
from .store import RunInfo, RunTotals, Store
from .version import __version__
from .words import count

log = logging.getLogger(__name__)
MAX_POINTS = 120  # slices of the time series: enough to see a rate limit bite, few enough to stay small
ERROR_KINDS = 12  # kinds of error shown; the rest are counted
EXAMPLES = 3  # items shown for each kind
SLOWEST = 10
COST_BARS = 20  # bars in the cost chart (the table below it lists every group)
FOREVER = 1e18  # the end of a run still going: every answer from its start on is its own
RATE_LIMITED = ("HTTP 429", "HTTP 503")  # retries that were waits for a limit or an overloaded server, not failures
NO_GROUPS = ErrorGroups(0, 0, ())  # a run with no failed (or skipped) items: nothing to look up
EXIT_MEANINGS = {
    0: "every item ok",
    1: "some items failed",
    2: "invalid job or usage",
    3: "stopped early",
    4: "already running",
    5: "batches still open",
    130: "interrupted (SIGINT)",
    143: "interrupted (SIGTERM)",
}

# The chart's drawing area, in the SVG's own units (it scales to the page's width).
WIDTH, LEFT, RIGHT, TOP, BOTTOM, PLOT_H = 960, 64, 16, 16, 34, 180
PLOT_W = WIDTH - LEFT - RIGHT


@dataclass(frozen=True)
class Sums:
    """A run's totals and report groups (store.totals, store.groups), as a run that has just
    ended has added them up already."""

    totals: RunTotals
    groups: list[dict[str, Any]]


@dataclass(frozen=True)
class CostRow:
    """One task, model and mode of the run, as the CSV report has it."""

    task: str
    model: str
    mode: str
    requests: int
    succeeded: int
    failed: int
    skipped: int
    tokens: int
    cost_usd: float | None  # the job's: every answer the rows hold; None: unknown (no price)
    cost_usd_this_run: float | None


@dataclass(frozen=True)
class RunReport:
    """Everything the page shows, read from the store by gather()."""

    run: RunInfo
    items_run: int  # the run that holds the job's items now: `run`, or a later run that took them over
    totals: RunTotals  # the job's items as they stand now, as the results file and report have them
    spent_usd: float | None  # what this run's answers cost
    costs: tuple[CostRow, ...]
    timeline: Timeline
    retries: tuple[tuple[str, int], ...]  # retried attempts by cause, most first
    errors: ErrorGroups
    skipped: ErrorGroups
    slowest: tuple[SlowItem, ...]
    generated: float  # epoch seconds


def beside(report: Path) -> Path:
    """Where a run's page goes: beside its report, named after it (out/t-report.csv: out/t-report.html)."""
    return report.with_suffix(".html")


def gather(store: Store, run: RunInfo, sums: Sums | None = None) -> RunReport:
    """The page's figures for `run`, all added up by the store. Counts, tokens and the job's cost
    are those of the job's items as they stand now (a later run may have taken them over), as
    `batchgpt export` writes them; the time series and the slowest items are this run's answers.
    `sums`: the run's totals and report groups, when the caller has just added them up."""
    items_run = store.latest_run_of(run.job, run.id)
    if sums is None or items_run != run.id:
        sums = Sums(store.totals(run.job, items_run), store.groups(run.job, items_run))
    totals = sums.totals
    until = run.finished if run.finished is not None else FOREVER
    retries = json.loads(run.retries) if run.retries else {}
    return RunReport(
        run=run,
        items_run=items_run,
        totals=totals,
        # a finished run (or one taken over by a later one) keeps what it spent in its own row
        spent_usd=totals.spent_usd if items_run == run.id and run.finished is None else run.spent_usd,
        costs=tuple(_cost_row(group) for group in sums.groups),
        timeline=store.timeline(run.job, items_run, run.started, until, MAX_POINTS),
        retries=tuple(sorted(((str(k), int(v)) for k, v in retries.items()), key=lambda kv: (-kv[1], kv[0]))),
        errors=_error_groups(store, run.job, items_run, "error") if totals.failed else NO_GROUPS,
        skipped=_error_groups(store, run.job, items_run, "skipped") if totals.skipped else NO_GROUPS,
        slowest=tuple(store.slowest(run.job, items_run, run.started, until, SLOWEST)),
        generated=time.time(),
    )


def _error_groups(store: Store, job: str, run_id: int, status: str) -> ErrorGroups:
    return store.error_groups(job, run_id, status, ERROR_KINDS, EXAMPLES)


def _cost_row(group: Mapping[str, Any]) -> CostRow:
    """A report row (store.groups, records.GROUP_COLUMNS) as the page shows it."""
    return CostRow(
        task=group["task"],
        model=group["model"],
        mode=group["mode"],
        requests=group["requests"],
        succeeded=group["succeeded"] or 0,
        failed=group["failed"] or 0,
        skipped=group["skipped"] or 0,
        tokens=(group["prompt_tokens"] or 0) + (group["completion_tokens"] or 0),
        cost_usd=group["cost_usd"],
        cost_usd_this_run=group["cost_usd_this_run"],
    )


def write(path: Path, report: RunReport) -> None:
    """Write the page (atomically, as every output: never half a page)."""
    with atomic_write(path) as handle:
        handle.write(render(report))


def write_beside(store: Store, run_id: int, report_path: Path, sums: Sums | None = None) -> None:
    """A run's page beside its report, once the run is finished (so the page has its exit code and
    why it stopped). The results and report are written by then: a page that cannot be written is
    a warning, not a failed run."""
    run = store.run(run_id)
    if run is None:  # a run begun in this store always has its row
        return
    try:
        write(beside(report_path), gather(store, run, sums))
    except OutputError as exc:
        log.warning("the HTML page was not written: %s", exc)


def render(report: RunReport) -> str:
    """The whole page as one HTML string."""
    run = report.run
    title = f"{run.job}: run {run.id}"
    sections = [
        f"<header><h1>{_e(title)}</h1>{_about(report)}</header>",
        _cards(report),
        _section("Cost by task and model", _costs(report)),
        _section("Throughput", _throughput(report.timeline)),
        _section("Latency", _latency(report.timeline)),
        _section("Retries and rate-limit waits", _retries(report)),
        _section("Errors by kind", _groups(report.errors, "error", "No errors.")),
    ]
    if report.skipped.total:
        sections.append(_section("Skipped, by reason", _groups(report.skipped, "skipped item", "")))
    sections.append(_section("Slowest items", _slowest(report.slowest)))
    sections.append(_footer(report))
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">\n'
        # nothing may load or run: the page is whole offline, and injected markup could do nothing
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e('batchgpt ' + title)}</title>\n<style>{CSS}</style></head>\n<body>\n"
        + "\n".join(sections)
        + "\n</body></html>\n"
    )


class _Raw(str):
    """Markup built here (already escaped), which _cell passes through; any other str is escaped."""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _cell(value: object) -> str:
    return value if isinstance(value, _Raw) else _e(value)


def _section(heading: str, body: str) -> str:
    return f"<section><h2>{_e(heading)}</h2>\n{body}\n</section>"


def _about(report: RunReport) -> str:
    run, timeline = report.run, report.timeline
    parts = [f"started {_when(run.started)}"]
    if run.finished is not None:
        parts.append(f"took {_duration(run.finished - run.started)}")
    elif timeline.last is not None:
        parts.append(f"last answer after {_duration(timeline.last - run.started)}")
    if run.exit_code is not None:
        parts.append(f"exit code {run.exit_code} ({EXIT_MEANINGS.get(run.exit_code, 'see the log')})")
    lines = [f'<p class="meta">{_e("; ".join(parts))}</p>']
    if run.stopped:
        lines.append(f'<p class="meta">stopped early: {_e(run.stopped)}</p>')
    if report.items_run != run.id:
        lines.append(
            f'<p class="meta">run {report.items_run} has taken its items over since: the counts and the costs '
            "by task and model are the items as that run left them</p>"
        )
    if run.job_path:
        lines.append(f'<p class="meta">job file: <code>{_e(run.job_path)}</code></p>')
    return "".join(lines)


def _cards(report: RunReport) -> str:
    totals, timeline = report.totals, report.timeline
    tokens = totals.prompt_tokens + totals.completion_tokens
    cards = [
        ("items", f"{totals.items:,}", "", ""),
        ("ok", f"{totals.ok:,}", "", ""),
        ("failed", f"{totals.failed:,}", f"{totals.failed_transient:,} for a passing reason", _bad(totals.failed)),
        ("skipped", f"{totals.skipped:,}", "not answered", _bad(totals.skipped)),
        ("tokens", f"{tokens:,}", f"{totals.prompt_tokens:,} prompt + {totals.completion_tokens:,} completion", ""),
        ("cost this run", _usd(report.spent_usd), "what this run's answers cost", ""),
        ("cost of the job", _usd(totals.cost_usd), "every answer the job's items hold", ""),
        ("answers this run", f"{timeline.answers:,}", _rate(timeline, report.run.started), ""),
        ("requests sent", f"{report.run.sent or 0:,}", f"{sum(n for _, n in report.retries):,} retried", ""),
    ]
    if totals.submitted:
        cards.insert(4, ("submitted", f"{totals.submitted:,}", "waiting in open batches", ""))
    return (
        '<section class="cards">'
        + "".join(
            f'<div class="card {kind}" data-figure="{_e(label)}"><span class="label">{_e(label)}</span>'
            f'<span class="value">{_e(value)}</span><span class="note">{_e(note)}</span></div>'
            for label, value, note, kind in cards
        )
        + "</section>"
    )


def _bad(count: int) -> str:
    return "bad" if count else ""


def _rate(timeline: Timeline, started: float) -> str:
    if timeline.last is None or timeline.last <= started:
        return ""
    return f"{timeline.answers / (timeline.last - started):,.1f} answers/s"


def _costs(report: RunReport) -> str:
    priced = sorted(report.costs, key=lambda r: -(r.cost_usd or 0.0))[:COST_BARS]
    bars = [(_group_name(r), r.cost_usd, _usd(r.cost_usd)) for r in priced]
    chart = _hbars(bars, "cost", "the job's cost by task and model") if bars else ""
    if len(report.costs) > COST_BARS:
        chart += f'<p class="meta">the {COST_BARS} costliest of {len(report.costs):,} groups; all are below</p>'
    totals = report.totals
    rows = [
        _cost_cells(r.task, r.model, r.mode, r.requests, r.succeeded, r.failed, r.skipped, r.tokens)
        + [_usd(r.cost_usd), _usd(r.cost_usd_this_run)]
        for r in report.costs
    ]
    tokens = totals.prompt_tokens + totals.completion_tokens
    rows.append(
        _cost_cells("TOTAL", "", "", totals.items, totals.ok, totals.failed, totals.skipped, tokens)
        + [_usd(totals.cost_usd), _usd(report.spent_usd)]
    )
    head = ["task", "model", "mode", "requests", "ok", "failed", "skipped", "tokens", "cost (job)", "cost (this run)"]
    return chart + _table(head, rows, numeric=range(3, 10))


def _cost_cells(task: str, model: str, mode: str, *counts: int) -> list[object]:
    return [task, model, mode, *(f"{n:,}" for n in counts)]


def _group_name(row: CostRow) -> str:
    return shortened(f"{row.task} · {row.model}" + (" (batch)" if row.mode == "batch" else ""), 44)


def _throughput(timeline: Timeline) -> str:
    if not timeline.slices:
        return '<p class="empty">This run received no answers.</p>'
    slices = timeline.slices
    span = slices[0].end_s - slices[0].start_s
    top = _nice(max((s.ok + s.failed) / span for s in slices))
    step = PLOT_W / len(slices)
    parts = [_grid(top, "/s"), _legend([("ok", "ok"), ("failed", "failed")])]
    for n, s in enumerate(slices):
        x, w = LEFT + n * step, step * 0.85 if step >= 4 else step
        ok_h, failed_h = (s.ok / span / top * PLOT_H, s.failed / span / top * PLOT_H)
        tip = (
            f"{_span(s)}: {s.ok:,} ok, {s.failed:,} failed, {(s.ok + s.failed) / span:,.1f} answers/s, "
            f"{s.tokens:,} tokens"
        )
        parts.append(
            f"<g><title>{_e(tip)}</title>"
            f'<rect class="ok" x="{x:.1f}" y="{TOP + PLOT_H - ok_h:.1f}" width="{w:.1f}" height="{ok_h:.1f}"/>'
            f'<rect class="failed" x="{x:.1f}" y="{TOP + PLOT_H - ok_h - failed_h:.1f}" width="{w:.1f}" '
            f'height="{failed_h:.1f}"/></g>'
        )
    parts.append(_time_axis(slices[-1].end_s))
    note = f'<p class="meta">answers a second, in {count(len(slices), "slice")} of {_duration(span)}</p>'
    return _svg(TOP + PLOT_H + BOTTOM, "".join(parts), "answers a second over time") + note


def _latency(timeline: Timeline) -> str:
    known = [s for s in timeline.slices if s.p95_s is not None]
    if not known:
        return '<p class="empty">No latencies recorded for this run\'s answers.</p>'
    top = _nice(max(s.p95_s or 0.0 for s in known))
    step = PLOT_W / len(timeline.slices)
    parts = [_grid(top, " s"), _legend([("p50", "p50"), ("p95", "p95")], line=True)]
    for name in ("p95", "p50"):  # the median on top: with one answer a slice they are the same line
        points = " ".join(
            f"{LEFT + (n + 0.5) * step:.1f},{TOP + PLOT_H - (getattr(s, name + '_s') or 0.0) / top * PLOT_H:.1f}"
            for n, s in enumerate(timeline.slices)
            if getattr(s, name + "_s") is not None
        )
        parts.append(f'<polyline class="line {name}" points="{points}"/>')
    for n, s in enumerate(timeline.slices):  # a hover target per slice, for its exact figures
        if s.p95_s is not None:
            tip = (
                f"{_span(s)}: p50 {_duration(s.p50_s or 0.0)}, p95 {_duration(s.p95_s)}, max {_duration(s.max_s or 0)}"
            )
            parts.append(
                f'<rect class="hover" x="{LEFT + n * step:.1f}" y="{TOP}" width="{step:.1f}" height="{PLOT_H}">'
                f"<title>{_e(tip)}</title></rect>"
            )
    parts.append(_time_axis(timeline.slices[-1].end_s))
    note = '<p class="meta">seconds from the first attempt to the answer (retries and waits included), per slice</p>'
    return _svg(TOP + PLOT_H + BOTTOM, "".join(parts), "latency percentiles over time") + note


def _retries(report: RunReport) -> str:
    waits = sum(n for cause, n in report.retries if cause in RATE_LIMITED)
    timeline = report.timeline
    facts = [
        ("requests sent", f"{report.run.sent or 0:,}"),
        ("retried attempts", f"{sum(n for _, n in report.retries):,}"),
        ("rate-limit waits (429, 503 waited out)", f"{waits:,}"),
        ("answers that took more than one attempt", f"{timeline.retried:,}"),
        ("attempts beyond the first", f"{timeline.extra_attempts:,}"),
    ]
    body = '<dl class="facts">' + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts) + "</dl>"
    if report.retries:
        body += _hbars([(c, float(n), f"{n:,}") for c, n in report.retries], "retry", "retries by cause")
    else:
        body += '<p class="empty">No retries.</p>'
    return body


def _groups(groups: ErrorGroups, noun: str, empty: str) -> str:
    if not groups.total:
        return f'<p class="empty">{_e(empty)}</p>'
    rows: list[list[object]] = []
    for kind in groups.shown:
        examples = "".join(
            f"<li><code>{_e(shortened(x.id, 200))}</code> {_e(shortened(x.message, 500))}</li>" for x in kind.examples
        )
        rows.append([kind.kind, f"{kind.count:,}", f"{kind.count / groups.total:.1%}", _Raw(f"<ul>{examples}</ul>")])
    table = _table(["kind", "count", "share", "examples"], rows, numeric=(1, 2), wrap=(3,))
    more = ""
    if groups.kinds > len(groups.shown):
        rest = groups.total - sum(k.count for k in groups.shown)
        more = f'<p class="meta">and {rest:,} more in {count(groups.kinds - len(groups.shown), "other kind")}</p>'
    counted = f"{count(groups.total, noun)} of {count(groups.kinds, 'kind')}"
    return f'<p class="meta">{_e(counted)}</p>{table}{more}'


def _slowest(items: Sequence[SlowItem]) -> str:
    if not items:
        return '<p class="empty">No latencies recorded for this run\'s answers.</p>'
    rows: list[list[object]] = [
        [
            _Raw(f"<code>{_e(shortened(i.id, 200))}</code>"),
            i.task,
            i.model,
            i.status,
            _duration(i.latency_s),
            f"{i.attempts:,}",
            shortened(i.error or "", 500),
        ]
        for i in items
    ]
    head = ["id", "task", "model", "status", "latency", "attempts", "error"]
    return _table(head, rows, numeric=(4, 5), wrap=(0, 6))


def _footer(report: RunReport) -> str:
    return (
        f'<footer><p class="meta">batchgpt {_e(__version__)}, written {_e(_when(report.generated))}. Counts, tokens '
        "and the job's cost are the job's items as they stand now (as in the results file); the charts, the "
        "retries and the slowest items are this run's own answers.</p></footer>"
    )


# ------------------------------------------------------------------ tables and charts


def _table(
    head: Sequence[str], rows: Iterable[Sequence[object]], numeric: Iterable[int] = (), wrap: Iterable[int] = ()
) -> str:
    """A table; `numeric` columns are right-aligned, `wrap` columns (long ids, messages) break anywhere."""
    right, long = set(numeric), set(wrap)
    cls = [' class="n"' if n in right else ' class="wrap"' if n in long else "" for n in range(len(head))]
    header = "".join(f"<th{cls[n]}>{_e(h)}</th>" for n, h in enumerate(head))
    body = "".join(
        "<tr>" + "".join(f"<td{cls[n]}>{_cell(v)}</td>" for n, v in enumerate(row)) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"


def _svg(height: float, body: str, label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height:.0f}" role="img" '
        f'aria-label="{_e(label)}">{body}</svg>'
    )


def _hbars(bars: Sequence[tuple[str, float | None, str]], colour: str, label: str) -> str:
    """Horizontal bars, one a row: (name, value, shown value); a None value draws no bar."""
    row, name_w, value_w = 24, 300, 120
    span = WIDTH - name_w - value_w - 8
    top = max((v for _, v, _ in bars if v), default=0.0) or 1.0
    parts = []
    for n, (name, value, shown) in enumerate(bars):
        y = 6 + n * row
        w = (value or 0.0) / top * span
        parts.append(
            f"<g><title>{_e(name)}: {_e(shown)}</title>"
            f'<text x="{name_w - 8}" y="{y + 15}" text-anchor="end">{_e(name)}</text>'
            f'<rect class="{colour}" x="{name_w}" y="{y + 3}" width="{w:.1f}" height="{row - 8}"/>'
            f'<text x="{name_w + w + 6:.1f}" y="{y + 15}">{_e(shown)}</text></g>'
        )
    return _svg(12 + len(bars) * row, "".join(parts), label)


def _grid(top: float, unit: str) -> str:
    """Horizontal lines at 0, half and the top of the scale, labelled."""
    parts = []
    for share in (0.0, 0.5, 1.0):
        y = TOP + PLOT_H - share * PLOT_H
        kind = "axis" if share == 0 else "grid"
        parts.append(
            f'<line class="{kind}" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_e(_number(top * share) + unit)}</text>'
        )
    return "".join(parts)


def _time_axis(end_s: float) -> str:
    y = TOP + PLOT_H + 18
    labels = [(LEFT, "start", "0 s"), (LEFT + PLOT_W / 2, "middle", _duration(end_s / 2))]
    labels.append((WIDTH - RIGHT, "end", _duration(end_s)))
    return "".join(f'<text x="{x:.1f}" y="{y}" text-anchor="{a}">{_e(t)}</text>' for x, a, t in labels)


def _legend(entries: Sequence[tuple[str, str]], line: bool = False) -> str:
    parts = []
    for n, (cls, name) in enumerate(entries):
        x = WIDTH - RIGHT - 150 + n * 75
        mark = (
            f'<line class="line {cls}" x1="{x}" y1="{TOP - 6}" x2="{x + 14}" y2="{TOP - 6}"/>'
            if line
            else f'<rect class="{cls}" x="{x}" y="{TOP - 12}" width="12" height="12"/>'
        )
        parts.append(f'{mark}<text x="{x + 18}" y="{TOP - 2}">{_e(name)}</text>')
    return "".join(parts)


def _nice(value: float) -> float:
    """The top of a chart's scale: 1, 2, 2.5 or 5 times a power of ten, at least `value`."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 2.5, 5, 10) if value <= step * power * (1 + 1e-9))


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 or value == int(value) else f"{value:.3g}"


def _span(s: TimeSlice) -> str:
    return f"{_duration(s.start_s)} to {_duration(s.end_s)}"


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def _usd(value: float | None) -> str:
    return "unknown" if value is None else f"${value:,.6f}"


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(epoch))


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;background:#fff;
margin:0 auto;max-width:1000px;padding:24px}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
.meta{color:#57606a;margin:2px 0}
.empty{color:#57606a;font-style:italic}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:10px;margin-top:16px}
.card{border:1px solid #d0d7de;border-radius:6px;padding:8px 12px}
.card span{display:block}
.card .label{color:#57606a;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card .value{font-size:20px;font-weight:600}
.card .note{color:#57606a;font-size:12px}
.card.bad .value{color:#c62828}
table{border-collapse:collapse;width:100%;font-size:13px;margin:8px 0}
th,td{border-bottom:1px solid #eaeef2;padding:4px 8px;text-align:left;vertical-align:top;overflow-wrap:break-word}
.wrap{overflow-wrap:anywhere;min-width:14em}
th{background:#f6f8fa}
.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td ul{margin:0;padding-left:16px}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;background:#f6f8fa;padding:0 3px;border-radius:3px}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:2px 16px;margin:8px 0}
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
"""
