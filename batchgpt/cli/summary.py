"""A run's last lines: what failed and why, what waits in open batches, where the results went,
and one `summary` event holding every figure."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from batchgpt.words import command, count

from .output import _tell


def _print_summary(summary: Any, job: Path, state_dir: Path | None = None, base_url: str | None = None) -> None:
    """The run's last lines, each an event of its log; the last, `summary`, holds every figure (a
    log shipper or a cron wrapper reads the last line). Its hints are commands to paste from any
    folder (cron's mail is read elsewhere): the job file's absolute path, and the --state and
    --base-url this run was given."""
    if summary.failed:
        permanent = summary.failed - summary.failed_transient
        parts = []
        if summary.failed_transient:
            parts.append(
                f"{summary.failed_transient:,} for a passing reason (rate limits, server errors, timeouts, "
                "connections): a plain rerun sends them again"
            )
        if permanent:
            parts.append(
                f"{permanent:,} for a reason in the request (such as a 400): they stay failed unless you "
                "rerun with --retry-failed"
            )
        _tell(f"failed: {'; '.join(parts)}", "failed")
    if summary.online_items:
        _tell(f"{count(summary.online_items, 'item')} the Batch API does not take (speech, transcription) ran online")
    if summary.submitted or summary.batches_open:
        again = command("run", job, "--batch", state=state_dir, base_url=base_url)
        _tell(
            f"{count(summary.submitted, 'item')} waiting in {count(summary.batches_open, 'open batch')}: "
            f"submitted, not finished. `{again}` again (from cron, say every 30 minutes) collects them; "
            f"`{command('batches', job, state=state_dir)}` lists them",
            "waiting",
            command=again,
        )
    elif summary.exported:
        # absolute, as the hints are: a cron log is read from another folder
        _tell(f"results: {summary.results.absolute()}", "written", path=summary.results.absolute())
        _tell(f"report:  {summary.report.absolute()}", "written", path=summary.report.absolute())
        _tell(f"page:    {_page(summary.report)}", "written", path=_page(summary.report))
    else:
        again = command("export", summary.job, "--run", summary.run_number, state=summary.state_dir)
        _tell(f"results not written (stopped at once): `{again}` writes them", "not written", command=again)
    if summary.stopped:
        _tell(f"stopped early: {summary.stopped}", "stopped", logging.WARNING)
    if summary.unconfirmed:
        from batchgpt.slow import unconfirmed_line

        line = unconfirmed_line(summary.unconfirmed, summary.timed_out, summary.unconfirmed_usd)
        _tell(line, "unconfirmed", logging.WARNING)
    written = summary.exported and not (summary.submitted or summary.batches_open)
    fields: dict[str, Any] = dict(summary.__dict__)
    if written:
        fields["html"] = str(_page(summary.report))  # the page written beside the report
    _tell(_summary_line(summary), "summary", **fields)


def _page(report: Path) -> Path:
    from batchgpt.htmlreport import beside

    return beside(report).absolute()


def _summary_line(summary: Any) -> str:
    def dollars(value: float | None) -> str:
        return "unknown (see the warnings)" if value is None else f"${value:.6f}"

    refused = f" ({summary.refused:,} refused by rate limits and waited out)" if summary.refused else ""
    return (
        f"{count(summary.items, 'item')}: {summary.ok:,} ok, {summary.failed:,} failed, "
        f"{summary.skipped:,} skipped ({summary.reused:,} answered by earlier runs); "
        f"{count(summary.sent, 'request')} sent in {summary.elapsed_s:.1f} s{refused}; "
        f"{summary.prompt_tokens:,} prompt + {summary.completion_tokens:,} completion tokens (the job's); "
        f"cost {dollars(summary.spent_usd)} this run, {dollars(summary.cost_usd)} for the job's answers"
    )
