"""The commands that run a job: `run` (online or through the Batch API) and `cancel`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from batchgpt.errors import MissingKeyError

from .estimate import _estimate
from .group import _errors_to_exit_codes, _examples, main
from .options import _RUN_OPTIONS, _STATE_OPTION, _overrides, _poll_option, _with
from .output import _log_the_run
from .summary import _print_summary


@main.command(
    short_help="Validate a job, send it, write its results and cost report.",
    epilog=_examples(
        "batchgpt run jobs/translate.yaml --dry-run",
        "batchgpt run jobs/translate.yaml",
        "batchgpt run jobs/translate.yaml --base-url http://127.0.0.1:8000/v1",
        "batchgpt run jobs/translate.yaml --batch --wait --poll 60",
        "batchgpt run jobs/translate.yaml --log-format json >> translate.log 2>&1",
    ),
)
@click.argument("job", type=click.Path(dir_okay=False, path_type=Path))
@_with(_RUN_OPTIONS)
@_STATE_OPTION
@click.option("--fresh", is_flag=True, help="Forget earlier answers and send every item again.")
@click.option(
    "--retry-failed", is_flag=True, help="Also send again the items that failed for a permanent reason (4xx)."
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    help="Every line on stderr: text with a time, or one JSON object a line.",
)
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a terminal).")
@click.option("--dry-run", is_flag=True, help="Estimate tokens, cost and time; send nothing, need no key.")
@click.option("--wait", is_flag=True, help="Batch mode: poll until every batch has ended, then write the results.")
@_poll_option("Batch mode: seconds between polls with --wait.")
@_errors_to_exit_codes
def run(
    job: Path,
    state_dir: Path | None,
    fresh: bool,
    retry_failed: bool,
    log_format: str,
    progress: bool | None,
    dry_run: bool,
    wait: bool,
    poll: float,
    **kwargs: Any,
) -> None:
    """Validate JOB, then run it: results and a token and cost report are written at the end.

    In batch mode (--batch, or `mode: batch` in the job) the first run submits the job to the
    Batch API and exits 5; later runs collect what has ended, submit what is left, and write the
    results once every item is final."""
    from batchgpt import logs
    from batchgpt.cli.loop import run_stoppable
    from batchgpt.jobs import load
    from batchgpt.lifecycle import RunOptions, arun_job

    _log_the_run(log_format)
    if progress and log_format == "json":
        raise click.UsageError("a progress bar is no JSON: leave out --progress, or log as text")
    if dry_run:
        _estimate(job, kwargs)
        return
    base_url = kwargs.get("base_url")  # the summary's hints repeat it: later runs must reach the same endpoint
    loaded = load(job, _overrides(kwargs))
    logs.JOB.set(loaded.name)
    options = RunOptions(
        state_dir=state_dir,
        fresh=fresh,
        retry_failed=retry_failed,
        progress=progress,
        log_format=log_format,
        wait=wait,
        poll=poll,
    )
    try:
        summary = run_stoppable(lambda stop: arun_job(loaded, options, stop))
    except MissingKeyError as exc:
        raise MissingKeyError(f"{exc} (or use --dry-run, which needs none)") from None
    _print_summary(summary, job, state_dir, base_url)
    sys.exit(summary.exit_code)


@main.command(
    short_help="Cancel a job's open batches, collect what they finished.",
    epilog=_examples("batchgpt cancel jobs/label-batch.yaml", "batchgpt cancel jobs/label-batch.yaml --poll 10"),
)
@click.argument("job", type=click.Path(dir_okay=False, path_type=Path))
@_STATE_OPTION
@_poll_option("Seconds between polls while the batches are cancelling.")
@click.option("--base-url", metavar="URL", help="The endpoint, when the run that submitted the job named it so.")
@_errors_to_exit_codes
def cancel(job: Path, state_dir: Path | None, poll: float, base_url: str | None) -> None:
    """Cancel JOB's open batches, wait until they are cancelled, collect what they finished and
    write the results (unfinished items are `skipped`; a later run submits them again)."""
    from batchgpt import logs
    from batchgpt.cli.loop import run_stoppable
    from batchgpt.jobs import Overrides, load
    from batchgpt.lifecycle import RunOptions, arun_job

    _log_the_run("text")
    loaded = load(job, Overrides(base_url=base_url))
    logs.JOB.set(loaded.name)
    options = RunOptions(state_dir=state_dir, poll=poll)
    summary = run_stoppable(lambda stop: arun_job(loaded, options, stop, cancel=True))
    _print_summary(summary, job, state_dir, base_url)
    sys.exit(summary.exit_code)
