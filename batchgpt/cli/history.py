"""The commands that read the state store: `runs`, `batches`, `export` and `report`."""

from __future__ import annotations

from pathlib import Path

import click

from . import ranks
from .group import _errors_to_exit_codes, _examples, main
from .options import _STATE_OPTION, _run_ref, _state_dir
from .output import _print_table

# Each job numbers its own runs (1, 2, 3, as `runs` lists them): several jobs may share a store.
_RUN_OPTION = click.option(
    "--run", type=click.IntRange(min=1), metavar="N", help="The job's run N (as `batchgpt runs` numbers them)."
)


@main.command(
    short_help="List past runs: items, tokens, cost, exit code.",
    epilog=_examples("batchgpt runs jobs/translate.yaml", "batchgpt runs --state jobs/.batchgpt --limit 5"),
)
@click.argument("job", required=False, type=click.Path(dir_okay=False, path_type=Path))
@_STATE_OPTION
@click.option("--limit", default=20, show_default=True, help="How many runs, newest first.")
@_errors_to_exit_codes
def runs(job: Path | None, state_dir: Path | None, limit: int) -> None:
    """List past runs: job, start, duration, items ok/failed, tokens, cost, exit code."""
    from batchgpt.api import list_runs

    directory = _state_dir(state_dir, job)
    rows = list_runs(directory, job, limit)
    if not rows:
        of = "" if job is None else f" of job {str(job)!r}"
        hint = f" (to see run {job}: batchgpt report {job})" if job is not None and str(job).isdigit() else ""
        click.echo(f"no runs{of} recorded in {directory}{hint}", err=True)
        return
    _print_table(rows, list(rows[0]), f"runs in {directory}", ranks.runs(rows))


@main.command(
    short_help="List a job's Batch API batches and their status.",
    epilog=_examples(
        "batchgpt batches jobs/label-batch.yaml",
        "batchgpt batches jobs/label-batch.yaml --all",
        "batchgpt batches jobs/label-batch.yaml --adopt 3f2a9c01=batch_abc123",
        "batchgpt batches jobs/label-batch.yaml --lost 3f2a9c01",
    ),
)
@click.argument("job", required=False, type=click.Path(dir_okay=False, path_type=Path))
@_STATE_OPTION
@click.option("--all", "every", is_flag=True, help="Also the batches already collected.")
@click.option(
    "--adopt",
    multiple=True,
    metavar="INTENT=BATCH_ID",
    help="The batch a run could not tell was created (exit 7; its warning names INTENT) is BATCH_ID.",
)
@click.option(
    "--lost", multiple=True, metavar="INTENT", help="No batch was created for INTENT: the next run submits its items."
)
@_errors_to_exit_codes
def batches(
    job: Path | None, state_dir: Path | None, every: bool, adopt: tuple[str, ...], lost: tuple[str, ...]
) -> None:
    """List Batch API batches (of JOB, or of every job here): id, status, counts, created, ends.

    Statuses are as the last run found them; `batchgpt run JOB --batch` polls them afresh.
    --adopt and --lost settle a batch whose creation a run could not confirm (exit 7)."""
    from batchgpt.api import list_batches

    directory = _state_dir(state_dir, job)
    if adopt or lost:
        from batchgpt.batch.resolve import resolve

        if job is None:
            raise click.UsageError("--adopt and --lost take the job file: batchgpt batches JOB --lost INTENT")
        for done in resolve(directory, job, adopt, lost):
            click.echo(done, err=True)
    rows = list_batches(directory, job, every)
    if not rows:
        click.echo(f"no {'' if every else 'open '}batches recorded in {directory}", err=True)
        return
    _print_table(rows, list(rows[0]), f"batches in {directory}", ranks.batches(rows))


@main.command(
    "export",
    short_help="Write a run's results and report again from the store.",
    epilog=_examples(
        "batchgpt export jobs/translate.yaml",
        "batchgpt export jobs/translate.yaml --out faq.parquet",
        "batchgpt export jobs/translate.yaml --run 12",
    ),
)
@click.argument("run_ref", metavar="JOB|RUN")
@_STATE_OPTION
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Results file (default: the run's own).")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Report file (default: the run's own).",
)
@click.option(
    "--base-url",
    metavar="URL",
    help="The answers of the job's latest run against this endpoint (each endpoint's are kept apart); "
    "written beside the job's files, named for the endpoint, unless --out and --report say where.",
)
@click.option(
    "--bom", is_flag=True, help="Write CSV files with a byte-order mark, as Excel needs for UTF-8 (output.bom)."
)
@_RUN_OPTION
@_errors_to_exit_codes
def export_command(
    run_ref: str,
    state_dir: Path | None,
    out: Path | None,
    report_path: Path | None,
    base_url: str | None,
    bom: bool,
    run: int | None,
) -> None:
    """Write the results and report of a run again from the store, as its job stands now: JOB's
    latest run (a job file), or RUN (a run number, or a job name for its latest run) in --state;
    with --run N, the job's run N; with --base-url, the job's latest run against that endpoint."""
    from batchgpt.api import export_run
    from batchgpt.htmlreport import beside

    info, results, report_file = export_run(*_run_ref(run_ref, state_dir), out, report_path, base_url, bom, run)
    click.echo(
        f"run {info.number} of {info.job}: results {results}, report {report_file} (page {beside(report_file)})",
        err=True,
    )


@main.command(
    "report",
    short_help="Write a run's HTML report (totals, cost, charts, errors).",
    epilog=_examples(
        "batchgpt report jobs/translate.yaml",
        "batchgpt report jobs/translate.yaml --html nightly.html",
        "batchgpt report jobs/translate.yaml --run 12",
    ),
)
@click.argument("run_ref", metavar="JOB|RUN")
@_STATE_OPTION
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the page (default: beside the run's report, as <report stem>.html).",
)
@_RUN_OPTION
@_errors_to_exit_codes
def report_command(run_ref: str, state_dir: Path | None, html_path: Path | None, run: int | None) -> None:
    """Write the HTML report of a run: JOB's latest run (a job file), or RUN (a run number, or a job
    name for its latest run) in --state; with --run N, the job's run N. Totals, cost by task and
    model, throughput and latency over time, retries, errors by kind, the slowest items; it opens
    offline (one file, no script)."""
    from batchgpt.api import html_report

    info, page = html_report(*_run_ref(run_ref, state_dir), html_path, run)
    click.echo(f"run {info.number} of {info.job}: page {page}", err=True)
