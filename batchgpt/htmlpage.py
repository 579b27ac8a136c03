"""What the HTML run report shows, laid out: totals, this run's cost and the job's, cost by task and
model, throughput and latency over time, retries and rate-limit waits (and what happened to each
retried request: why each attempt was tried again, then how it ended), errors by kind with
examples, the slowest items. `RunReport` holds the figures (htmlreport.gather reads them from
the store); `render` makes the page, self-contained: no script, no CDN, no font, and its
Content-Security-Policy forbids all of them, so it opens offline, and anything that slipped in
anyway would be blocked rather than run. Its charts and tables are htmlcharts.py's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby

from .htmlcharts import (
    BOTTOM,
    CSS,
    LEFT,
    PLOT_H,
    PLOT_W,
    TOP,
    Raw,
    duration,
    esc,
    grid,
    hbars,
    html_table,
    legend,
    nice,
    section,
    slice_span,
    svg,
    time_axis,
    usd,
    when,
)
from .records import ErrorGroups, SlowItem, Timeline, shortened
from .store import RunInfo, RunTotals
from .version import __version__
from .words import count

COST_BARS = 20  # bars in the cost chart (the table below it lists every group)
ENDINGS = {"ok": "ok", "error": "failed", "skipped": "not answered"}  # how a retried request ended
HTTP_MEANINGS = {  # what the statuses retried mean, said beside them
    "408": "request timeout",
    "409": "conflict",
    "429": "rate limit",
    "500": "server error",
    "502": "bad gateway",
    "503": "overloaded",
    "504": "gateway timeout",
}
RATE_LIMITED = ("HTTP 429", "HTTP 503")  # retries that were waits for a limit or an overloaded server, not failures
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
    items_run: (
        int  # the number of the run that holds the job's items now: `run`'s, or a later run's that took them over
    )
    totals: RunTotals  # the job's items as they stand now, as the results file and report have them
    spent_usd: float | None  # what this run's answers cost
    costs: tuple[CostRow, ...]
    timeline: Timeline
    retries: tuple[tuple[str, int], ...]  # retried attempts by cause, most first
    errors: ErrorGroups
    skipped: ErrorGroups
    slowest: tuple[SlowItem, ...]
    generated: float  # epoch seconds
    histories: ErrorGroups = ErrorGroups(0, 0, ())  # retried requests by what happened (Store.retry_groups)


def render(report: RunReport) -> str:
    """The whole page as one HTML string."""
    run = report.run
    title = f"{run.job}: run {run.number}"
    sections = [
        f"<header><h1>{esc(title)}</h1>{_about(report)}</header>",
        _cards(report),
        section("Cost by task and model", _costs(report)),
        section("Throughput", _throughput(report.timeline)),
        section("Latency", _latency(report.timeline)),
        section("Retries and rate-limit waits", _retries(report)),
        section("Errors by kind", _groups(report.errors, "error", "No errors.")),
    ]
    if report.skipped.total:
        sections.append(section("Skipped, by reason", _groups(report.skipped, "skipped item", "")))
    sections.append(section("Slowest items", _slowest(report.slowest)))
    sections.append(_footer(report))
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">\n'
        # nothing may load or run: the page is whole offline, and injected markup could do nothing
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc('batchgpt ' + title)}</title>\n<style>{CSS}</style></head>\n<body>\n"
        + "\n".join(sections)
        + "\n</body></html>\n"
    )


def _about(report: RunReport) -> str:
    run, timeline = report.run, report.timeline
    parts = [f"started {when(run.started)}"]
    if run.finished is not None:
        parts.append(f"took {duration(run.finished - run.started)}")
    elif timeline.last is not None:
        parts.append(f"last answer after {duration(timeline.last - run.started)}")
    if run.exit_code is not None:
        parts.append(f"exit code {run.exit_code} ({EXIT_MEANINGS.get(run.exit_code, 'see the log')})")
    lines = [f'<p class="meta">{esc("; ".join(parts))}</p>']
    if run.stopped:
        lines.append(f'<p class="meta">stopped early: {esc(run.stopped)}</p>')
    if report.items_run != run.number:
        lines.append(
            f'<p class="meta">run {report.items_run} has taken its items over since: the counts and the costs '
            "by task and model are the items as that run left them</p>"
        )
    if run.job_path:
        lines.append(f'<p class="meta">job file: <code>{esc(run.job_path)}</code></p>')
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
        ("cost this run", usd(report.spent_usd), "what this run's answers cost", ""),
        ("cost of the job", usd(totals.cost_usd), "every answer the job's items hold", ""),
        ("answers this run", f"{timeline.answers:,}", _rate(timeline, report.run.started), ""),
        ("requests sent", f"{report.run.sent or 0:,}", f"{sum(n for _, n in report.retries):,} retried", ""),
    ]
    if totals.submitted:
        cards.insert(4, ("submitted", f"{totals.submitted:,}", "waiting in open batches", ""))
    return (
        '<section class="cards">'
        + "".join(
            f'<div class="card {kind}" data-figure="{esc(label)}"><span class="label">{esc(label)}</span>'
            f'<span class="value">{esc(value)}</span><span class="note">{esc(note)}</span></div>'
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
    bars = [(_group_name(r), r.cost_usd, usd(r.cost_usd)) for r in priced]
    chart = hbars(bars, "cost", "the job's cost by task and model") if bars else ""
    if len(report.costs) > COST_BARS:
        chart += f'<p class="meta">the {COST_BARS} costliest of {len(report.costs):,} groups; all are below</p>'
    totals = report.totals
    rows = [
        _cost_cells(r.task, r.model, r.mode, r.requests, r.succeeded, r.failed, r.skipped, r.tokens)
        + [usd(r.cost_usd), usd(r.cost_usd_this_run)]
        for r in report.costs
    ]
    tokens = totals.prompt_tokens + totals.completion_tokens
    rows.append(
        _cost_cells("TOTAL", "", "", totals.items, totals.ok, totals.failed, totals.skipped, tokens)
        + [usd(totals.cost_usd), usd(report.spent_usd)]
    )
    head = ["task", "model", "mode", "requests", "ok", "failed", "skipped", "tokens", "cost (job)", "cost (this run)"]
    return chart + html_table(head, rows, numeric=range(3, 10))


def _cost_cells(task: str, model: str, mode: str, *counts: int) -> list[object]:
    return [task, model, mode, *(f"{n:,}" for n in counts)]


def _group_name(row: CostRow) -> str:
    return shortened(f"{row.task} · {row.model}" + (" (batch)" if row.mode == "batch" else ""), 44)


def _throughput(timeline: Timeline) -> str:
    if not timeline.slices:
        return '<p class="empty">This run received no answers.</p>'
    slices = timeline.slices
    span = slices[0].end_s - slices[0].start_s
    top = nice(max((s.ok + s.failed) / span for s in slices))
    step = PLOT_W / len(slices)
    parts = [grid(top, "/s"), legend([("ok", "ok"), ("failed", "failed")])]
    for n, s in enumerate(slices):
        x, w = LEFT + n * step, step * 0.85 if step >= 4 else step
        ok_h, failed_h = (s.ok / span / top * PLOT_H, s.failed / span / top * PLOT_H)
        tip = (
            f"{slice_span(s)}: {s.ok:,} ok, {s.failed:,} failed, {(s.ok + s.failed) / span:,.1f} answers/s, "
            f"{s.tokens:,} tokens"
        )
        parts.append(
            f"<g><title>{esc(tip)}</title>"
            f'<rect class="ok" x="{x:.1f}" y="{TOP + PLOT_H - ok_h:.1f}" width="{w:.1f}" height="{ok_h:.1f}"/>'
            f'<rect class="failed" x="{x:.1f}" y="{TOP + PLOT_H - ok_h - failed_h:.1f}" width="{w:.1f}" '
            f'height="{failed_h:.1f}"/></g>'
        )
    parts.append(time_axis(slices[-1].end_s))
    note = f'<p class="meta">answers a second, in {count(len(slices), "slice")} of {duration(span)}</p>'
    return svg(TOP + PLOT_H + BOTTOM, "".join(parts), "answers a second over time") + note


def _latency(timeline: Timeline) -> str:
    known = [s for s in timeline.slices if s.p95_s is not None]
    if not known:
        return '<p class="empty">No latencies recorded for this run\'s answers.</p>'
    top = nice(max(s.p95_s or 0.0 for s in known))
    step = PLOT_W / len(timeline.slices)
    parts = [grid(top, " s"), legend([("p50", "p50"), ("p95", "p95")], line=True)]
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
                f"{slice_span(s)}: p50 {duration(s.p50_s or 0.0)}, p95 {duration(s.p95_s)}, "
                f"max {duration(s.max_s or 0)}"
            )
            parts.append(
                f'<rect class="hover" x="{LEFT + n * step:.1f}" y="{TOP}" width="{step:.1f}" height="{PLOT_H}">'
                f"<title>{esc(tip)}</title></rect>"
            )
    parts.append(time_axis(timeline.slices[-1].end_s))
    note = '<p class="meta">seconds from the first attempt to the answer (retries and waits included), per slice</p>'
    return svg(TOP + PLOT_H + BOTTOM, "".join(parts), "latency percentiles over time") + note


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
    body = '<dl class="facts">' + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts) + "</dl>"
    if report.retries:
        body += hbars([(c, float(n), f"{n:,}") for c, n in report.retries], "retry", "retries by cause")
    else:
        body += '<p class="empty">No retries.</p>'
    return body + _histories(report.histories)


def _histories(groups: ErrorGroups) -> str:
    """The retried requests by what happened to them: why each attempt was tried again, then how
    it ended ('HTTP 429 (rate limit), timeout, then ok'), with a few of them named."""
    if not groups.total:
        return ""
    rows: list[list[object]] = []
    for kind in groups.shown:
        status, _, reasons = kind.kind.partition(" ")
        named = ", ".join(f"<code>{esc(shortened(x.id, 200))}</code>" for x in kind.examples)
        rows.append([story(status, json.loads(reasons)), f"{kind.count:,}", Raw(named)])
    table = html_table(["what happened", "requests", "for example"], rows, numeric=(1,))
    more = ""
    if groups.kinds > len(groups.shown):
        rest = groups.total - sum(k.count for k in groups.shown)
        more = f'<p class="meta">and {count(rest, "request")} more, retried in other ways</p>'
    said = f"{count(groups.total, 'request')} tried more than once, by why each attempt was tried again"
    return f'<p class="meta">{esc(said)}:</p>{table}{more}'


def story(status: str, reasons: Sequence[str]) -> str:
    """What happened to a request: why each attempt before the last was tried again, repeats
    counted, then how it ended: 'HTTP 429 (rate limit) ×2, timeout, then ok'. Its final status
    alone ('HTTP 200', 'ok') would hide why it took more than one attempt."""
    parts = []
    for reason, repeats in groupby(reasons):
        n = len(list(repeats))
        parts.append(_reason(reason) + (f" ×{n}" if n > 1 else ""))
    return ", ".join([*parts, f"then {ENDINGS.get(status, status)}"])


def _reason(reason: str) -> str:
    if reason == "connection":
        return "connection error"
    meaning = HTTP_MEANINGS.get(reason.removeprefix("HTTP ")) if reason.startswith("HTTP ") else None
    return f"{reason} ({meaning})" if meaning else reason


def _groups(groups: ErrorGroups, noun: str, empty: str) -> str:
    if not groups.total:
        return f'<p class="empty">{esc(empty)}</p>'
    rows: list[list[object]] = []
    for kind in groups.shown:
        examples = "".join(
            f"<li><code>{esc(shortened(x.id, 200))}</code> {esc(shortened(x.message, 500))}</li>" for x in kind.examples
        )
        rows.append([kind.kind, f"{kind.count:,}", f"{kind.count / groups.total:.1%}", Raw(f"<ul>{examples}</ul>")])
    table = html_table(["kind", "count", "share", "examples"], rows, numeric=(1, 2), wrap=(3,))
    more = ""
    if groups.kinds > len(groups.shown):
        rest = groups.total - sum(k.count for k in groups.shown)
        more = f'<p class="meta">and {rest:,} more in {count(groups.kinds - len(groups.shown), "other kind")}</p>'
    counted = f"{count(groups.total, noun)} of {count(groups.kinds, 'kind')}"
    return f'<p class="meta">{esc(counted)}</p>{table}{more}'


def _slowest(items: Sequence[SlowItem]) -> str:
    if not items:
        return '<p class="empty">No latencies recorded for this run\'s answers.</p>'
    rows: list[list[object]] = [
        [
            Raw(f"<code>{esc(shortened(i.id, 200))}</code>"),
            i.task,
            i.model,
            story(i.status, i.retried) if i.retried else i.status,
            duration(i.latency_s),
            f"{i.attempts:,}",
            shortened(i.error or "", 500),
        ]
        for i in items
    ]
    head = ["id", "task", "model", "status", "latency", "attempts", "error"]
    return html_table(head, rows, numeric=(4, 5), wrap=(0, 6))


def _footer(report: RunReport) -> str:
    return (
        f'<footer><p class="meta">batchgpt {esc(__version__)}, written {esc(when(report.generated))}. Counts, tokens '
        "and the job's cost are the job's items as they stand now (as in the results file); the charts, the "
        "retries and the slowest items are this run's own answers.</p></footer>"
    )
