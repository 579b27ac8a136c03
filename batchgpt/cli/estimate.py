"""The `estimate` command (and `run --dry-run`): tokens, cost and time, nothing sent; in batch
mode, the batch files a run would make."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click

from batchgpt.words import count

from . import ranks
from .group import _errors_to_exit_codes, _examples, main
from .options import _ESTIMATE_OPTIONS, _overrides, _with
from .output import _print_table, _tell


@main.command(
    short_help="Estimate tokens, cost and time; send nothing, need no key.",
    epilog=_examples(
        "batchgpt estimate jobs/translate.yaml",
        "batchgpt estimate jobs/translate.yaml --budget 0.01 --batch",
        "batchgpt estimate jobs/lines.jsonl --model gpt-4.1 --report estimate.csv",
    ),
)
@click.argument("job", type=click.Path(dir_okay=False, path_type=Path))
@_with(_ESTIMATE_OPTIONS)
@_errors_to_exit_codes
def estimate(job: Path, **kwargs: Any) -> None:
    """Estimate JOB's tokens, cost and duration without sending anything (same as run --dry-run).

    With --report PATH (.csv or .parquet) the table is also written to a file."""
    _estimate(job, kwargs)


def _estimate(job: Path, kwargs: dict[str, Any]) -> None:
    from batchgpt import logs
    from batchgpt.estimate import COLUMNS, budget_verdict, dry_run
    from batchgpt.jobs import REPORT_SUFFIXES
    from batchgpt.tables import write_table

    report_path = kwargs.pop("report", None)
    kwargs.pop("out", None)
    loaded, rows = dry_run(job, _overrides(kwargs))
    logs.JOB.set(loaded.name)
    title = f"{loaded.name}: estimate for {count(loaded.count, 'item')} (nothing sent)"
    _print_table(rows, COLUMNS, title, ranks.dry_run(loaded.mode))
    # the TOTAL adds up the priced rows: a budget is bounded only when every row is
    total = {k: None if any(r[k] is None for r in rows[:-1]) else v for k, v in rows[-1].items()}
    worst, expected = total["cost_usd_max"], total["cost_usd_expected"]
    if loaded.mode == "batch":
        files_worst = _print_plan(loaded)
        # A batch run's budget holds each file's worst case at the batch price; items sent online
        # (speech, transcription) are bounded by the online worst case instead, a higher bound.
        worst, expected = (files_worst if files_worst is not None else worst), total["cost_usd_batch"]
    if loaded.budget_usd is not None:
        over, verdict = budget_verdict(loaded.budget_usd, worst, expected)
        _tell(verdict, "budget", logging.WARNING if over else logging.INFO, plain=f"{'warning: ' * over}{verdict}")
    if report_path:
        path = Path(report_path)
        if path.suffix.lower() not in REPORT_SUFFIXES:
            raise click.BadParameter(f"use a {' or '.join(REPORT_SUFFIXES)} file", param_hint="--report")
        write_table(path, rows, COLUMNS)
        _tell(f"estimate written to {path}", "written", path=path)


def _print_plan(job: Any) -> float | None:
    """The batch files a batch run would make; their worst case together when every item goes in
    one (None when some go online or have no price)."""
    from batchgpt.batch.plan import PLAN_COLUMNS, plan

    parts, online = plan(job)
    if parts:
        title = f"batch mode: {count(len(parts), 'file')} for the Batch API (cost_usd_batch above)"
        _print_table(parts, PLAN_COLUMNS, title, ranks.PLAN)
    if online:
        _tell(f"{count(online, 'item')} of types the Batch API does not take (speech, transcription) run online")
    worsts = [part["cost_usd_max"] for part in parts]
    return None if online or None in worsts else sum(worsts)
