"""The command line: a thin click layer over the library that maps errors to exit codes.

Exit codes: 0 all ok, 1 some items failed, 2 invalid job, usage or state, 3 stopped early (quota,
authentication, budget), 4 locked by another run, 5 batches still open, 6 a write failed after the
run began (a full disk; the answers are kept), 130/143 interrupted.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import logging
import os
import sys
import threading
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .errors import EXIT_INVALID, EXIT_SIGINT, BatchgptError, JobError, MissingKeyError
from .version import __version__
from .words import command, count

if TYPE_CHECKING:
    from .jobs import Overrides

_LOGGER = "batchgpt.cli"  # not __name__: run as `python -m batchgpt.cli` this module is __main__


def _tell(
    message: str, event: str = "message", level: int = logging.INFO, plain: str | None = None, **fields: Any
) -> None:
    """One line on stderr. A command that runs a job (run, cancel) logs it, so it is stamped, or
    JSON under --log-format json, like every other line of the run (cron keeps them in one log);
    another command prints `plain` (by default the message) for the person at the terminal."""
    context = click.get_current_context(silent=True)
    if context is not None and (context.find_root().obj or {}).get("logged"):
        from . import logs

        logs.event(logging.getLogger(_LOGGER), event, message, fields.pop("job", None), level, **fields)
    else:
        click.echo(message if plain is None else plain, err=True)


def _log_the_run(log_format: str) -> None:
    """From here on this command's lines go through the run's log (see _tell)."""
    from . import logs

    root = click.get_current_context().find_root()
    logs.setup(root.obj["verbose"], log_format)
    root.obj["logged"] = True


def _print_problems(problems: Any, suffix: str = "") -> None:
    for problem in problems:
        where = {"file": problem.file, "line": problem.line, "pointer": problem.pointer}
        _tell(str(problem), "problem", logging.ERROR, plain=str(problem), **where)
    found = f"{count(len(problems), 'problem')} found{suffix}"
    _tell(found, "invalid", logging.ERROR, plain=f"batchgpt: {found}")


def _errors_to_exit_codes(command: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except JobError as exc:
            _print_problems(exc.problems, "; nothing was sent")
            sys.exit(exc.exit_code)
        except BatchgptError as exc:
            _tell(str(exc), "error", logging.ERROR, plain=f"batchgpt: {exc}")
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            _tell("interrupted", "interrupted", logging.WARNING, plain="batchgpt: interrupted")
            sys.exit(EXIT_SIGINT)

    return wrapper


class _Main(click.Group):
    """batchgpt's commands. Under --log-format json a usage error (a bad option) is a JSON line
    too: click prints it as text, which a log shipper could not read."""

    def parse_args(self, context: click.Context, args: list[str]) -> list[str]:
        pairs = zip(args, [*args[1:], ""], strict=True)
        context.meta["json_logs"] = "--log-format=json" in args or ("--log-format", "json") in pairs
        return super().parse_args(context, args)

    def invoke(self, context: click.Context) -> Any:
        try:
            return super().invoke(context)
        except click.ClickException as exc:
            if not context.meta.get("json_logs"):
                raise
            from . import logs

            logs.setup(log_format="json")
            logs.event(logging.getLogger(_LOGGER), "usage", exc.format_message(), None, logging.ERROR)
            context.exit(exc.exit_code)


def _examples(*lines: str) -> str:
    """A command's examples for the end of its help, kept as written (click rewraps other text)."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


@click.group(
    cls=_Main,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=_examples(
        "batchgpt run jobs/translate.yaml --dry-run   # what it costs; nothing sent",
        "batchgpt run jobs/translate.yaml             # then for real",
        "batchgpt runs jobs/translate.yaml            # its past runs",
    ),
)
@click.version_option(__version__, prog_name="batchgpt")
@click.option("-v", "--verbose", is_flag=True, help="Log every retry.")
@click.pass_context
def main(context: click.Context, verbose: bool) -> None:
    """Run batches of prompts against OpenAI-compatible APIs from job files.

    `batchgpt COMMAND -h` shows a command's options and examples."""
    from . import logs

    # aio.run holds the cycle collector back while requests run; checking a job, exporting and the
    # page make small objects by the thousand too, nearly all freed by reference counting: at
    # gen0's usual 700 allocations it ran 150 times in a 20,000-item run (28 ms), at 20,000 it runs
    # 4 times (9 ms). The CLI owns the process; the library leaves the collector as its host set it.
    gc.set_threshold(20_000, 10, 10)
    context.obj = {"verbose": verbose}
    logs.setup(verbose)
    logs.JOB.set(None)  # named once this command has loaded its job


def _overrides(kwargs: dict[str, Any]) -> Overrides:
    from .jobs import Overrides  # noqa: F811  # imported here: a CLI that only asks --help loads no jobs code

    return Overrides(**{k: kwargs.pop(k) for k in list(kwargs) if k in Overrides.__dataclass_fields__})


_BUDGET_TYPE = click.FloatRange(min=0, min_open=True)
# What an estimate reads as a run does: where requests go, how fast, which mode (the endpoint's
# prices, the minutes, the batch files). The results file, retries and timeouts change nothing in
# an estimate, so `estimate` does not offer them.
_JOB_OPTIONS = [
    click.option("--base-url", metavar="URL", help="Any OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1."),
    click.option("--model", metavar="NAME", help="Model for items that set none (JSONL jobs)."),
    click.option("--concurrency", type=click.IntRange(1, 10000), help="Requests in flight at once."),
    click.option("--rpm", type=click.FloatRange(min=0, min_open=True), help="Requests per minute."),
    click.option("--tpm", type=click.FloatRange(min=0, min_open=True), help="Tokens per minute."),
]
_MODE_OPTIONS = [
    click.option(
        "--batch",
        "mode",
        flag_value="batch",
        default=None,
        help="Through the Batch API: half the price, answers within 24 h (run again to collect).",
    ),
    click.option("--online", "mode", flag_value="online", help="Send now, even if the job says `mode: batch`."),
]
_RUN_OPTIONS = [
    click.option("--out", metavar="PATH", help="Results file (.csv, .parquet, .jsonl)."),
    click.option("--report", metavar="PATH", help="Token and cost report (.csv, .parquet)."),
    *_JOB_OPTIONS,
    click.option("--max-retries", type=click.IntRange(0, 100), help="Retries per request."),
    click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help="Seconds per attempt."),
    click.option(
        "--budget",
        type=_BUDGET_TYPE,
        metavar="USD",
        help="Stop starting requests before the spend could pass this many dollars.",
    ),
    *_MODE_OPTIONS,
]
_ESTIMATE_OPTIONS = [
    click.option("--report", metavar="PATH", help="Also write the estimate to this file (.csv, .parquet)."),
    *_JOB_OPTIONS,
    click.option("--budget", type=_BUDGET_TYPE, metavar="USD", help="Say whether the job fits this many dollars."),
    *_MODE_OPTIONS,
]


_STATE_OPTION = click.option(
    "--state",
    "state_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The state folder (default: .batchgpt/ beside the job file; with no job file, in this folder).",
)


def _poll_option(meaning: str) -> Callable[..., Any]:
    return click.option(
        "--poll", type=click.FloatRange(min=0), default=60.0, show_default=True, metavar="SECONDS", help=meaning
    )


def _with(options: list[Callable[..., Any]]) -> Callable[..., Any]:
    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


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
@click.option(
    "--shared-limits",
    metavar="URL",
    callback=lambda _c, _p, v: _redis_url(v),
    help="Share one rate limit with every process on the same key through this Redis (redis://HOST:PORT/DB).",
)
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
    from . import aio, logs
    from .jobs import load
    from .lifecycle import RunOptions, arun_job

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
        summary = aio.run_stoppable(lambda stop: arun_job(loaded, options, stop))
    except MissingKeyError as exc:
        raise MissingKeyError(f"{exc} (or use --dry-run, which needs none)") from None
    _print_summary(summary, job, state_dir, base_url)
    sys.exit(summary.exit_code)


def _redis_url(value: str | None) -> str | None:
    if value is not None and not value.startswith(("redis://", "rediss://")):
        raise click.BadParameter("use a Redis URL: redis://HOST:PORT/DB", param_hint="--shared-limits")
    return value


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
        again = command("export", summary.run_id, state=summary.state_dir)
        _tell(f"results not written (stopped at once): `{again}` writes them", "not written", command=again)
    if summary.stopped:
        _tell(f"stopped early: {summary.stopped}", "stopped", logging.WARNING)
    if summary.unconfirmed:
        from .slow import unconfirmed_line

        line = unconfirmed_line(summary.unconfirmed, summary.timed_out, summary.unconfirmed_usd)
        _tell(line, "unconfirmed", logging.WARNING)
    written = summary.exported and not (summary.submitted or summary.batches_open)
    fields: dict[str, Any] = dict(summary.__dict__)
    if written:
        fields["html"] = str(_page(summary.report))  # the page written beside the report
    _tell(_summary_line(summary), "summary", **fields)


def _page(report: Path) -> Path:
    from .htmlreport import beside

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


def _state_dir(state: Path | None, job: Path | None) -> Path:
    """The one rule for every command: --state DIR, else .batchgpt/ beside the job file, else (a
    command given no job file) .batchgpt/ in this folder."""
    from .store import STATE_DIR

    if state is not None:
        return state
    return (job.parent if job is not None else Path.cwd()) / STATE_DIR


def _job_file(ref: str) -> Path | None:
    """A reference to runs that names a job file (one that exists, or by its suffix), as every
    other command takes it; None for a run number or a job name."""
    path = Path(ref)
    if ref.isdigit() or not (path.is_file() or path.suffix.lower() in (".yaml", ".yml", ".json", ".jsonl")):
        return None
    return path


def _run_ref(ref: str, state_dir: Path | None) -> tuple[Path, str | Path]:
    """What a JOB|RUN argument names: the state folder to look in, and the job file or the run."""
    job = _job_file(ref)
    return _state_dir(state_dir, job), job or ref


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
    from .api import list_runs

    directory = _state_dir(state_dir, job)
    rows = list_runs(directory, job, limit)
    if not rows:
        of = "" if job is None else f" of job {str(job)!r}"
        hint = f" (to see run {job}: batchgpt report {job})" if job is not None and str(job).isdigit() else ""
        click.echo(f"no runs{of} recorded in {directory}{hint}", err=True)
        return
    _print_table(
        rows,
        list(rows[0]),
        title=f"runs in {directory}",
        fold=["retries"],
        drop=["seconds", "tokens", "skipped", "items", "job_cost_usd", "started", "endpoint"],
        key=["run"],
    )


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
    from .api import list_batches

    directory = _state_dir(state_dir, job)
    if adopt or lost:
        from .batch.resolve import resolve

        if job is None:
            raise click.UsageError("--adopt and --lost take the job file: batchgpt batches JOB --lost INTENT")
        for done in resolve(directory, job, adopt, lost):
            click.echo(done, err=True)
    rows = list_batches(directory, job, every)
    if not rows:
        click.echo(f"no {'' if every else 'open '}batches recorded in {directory}", err=True)
        return
    _print_table(rows, list(rows[0]), title=f"batches in {directory}", drop=["run", "created", "model", "ends", "job"])


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
    from . import aio, logs
    from .jobs import Overrides, load
    from .lifecycle import RunOptions, arun_job

    _log_the_run("text")
    loaded = load(job, Overrides(base_url=base_url))
    logs.JOB.set(loaded.name)
    options = RunOptions(state_dir=state_dir, poll=poll)
    summary = aio.run_stoppable(lambda stop: arun_job(loaded, options, stop, cancel=True))
    _print_summary(summary, job, state_dir, base_url)
    sys.exit(summary.exit_code)


@main.command(
    "export",
    short_help="Write a run's results and report again from the store.",
    epilog=_examples(
        "batchgpt export jobs/translate.yaml",
        "batchgpt export jobs/translate.yaml --out faq.parquet",
        "batchgpt export 12 --state jobs/.batchgpt",
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
@_errors_to_exit_codes
def export_command(
    run_ref: str, state_dir: Path | None, out: Path | None, report_path: Path | None, base_url: str | None
) -> None:
    """Write the results and report of a run again from the store, as its job stands now: JOB's
    latest run (a job file), or RUN (a run number, or a job name for its latest run) in --state;
    with --base-url, the job's latest run against that endpoint."""
    from .api import export_run
    from .htmlreport import beside

    info, results, report_file = export_run(*_run_ref(run_ref, state_dir), out, report_path, base_url)
    click.echo(
        f"run {info.id} of {info.job}: results {results}, report {report_file} (page {beside(report_file)})", err=True
    )


@main.command(
    "report",
    short_help="Write a run's HTML report (totals, cost, charts, errors).",
    epilog=_examples(
        "batchgpt report jobs/translate.yaml",
        "batchgpt report jobs/translate.yaml --html nightly.html",
        "batchgpt report 12 --state jobs/.batchgpt",
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
@_errors_to_exit_codes
def report_command(run_ref: str, state_dir: Path | None, html_path: Path | None) -> None:
    """Write the HTML report of a run: JOB's latest run (a job file), or RUN (a run number, or a job
    name for its latest run) in --state. Totals, cost by task and model, throughput and latency over
    time, retries, errors by kind, the slowest items; it opens offline (one file, no script)."""
    from .api import html_report

    info, page = html_report(*_run_ref(run_ref, state_dir), html_path)
    click.echo(f"run {info.id} of {info.job}: page {page}", err=True)


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
    from . import logs
    from .estimate import COLUMNS, budget_verdict, dry_run
    from .jobs import REPORT_SUFFIXES
    from .tables import write_table

    report_path = kwargs.pop("report", None)
    kwargs.pop("out", None)
    loaded, rows = dry_run(job, _overrides(kwargs))
    logs.JOB.set(loaded.name)
    _print_table(
        rows,
        COLUMNS,
        title=f"{loaded.name}: estimate for {count(loaded.count, 'item')} (nothing sent)",
        # On a narrow terminal the notes go under the table, then what matters least goes: the
        # counts behind the costs, then the cost of the other mode.
        fold=["notes"],
        drop=["max_completion_tokens", "prompt_tokens"]
        + (["cost_usd_expected"] if loaded.mode == "batch" else ["cost_usd_batch"]),
        key=["task", "model"],
        more=" (--report FILE writes every column)",
    )
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
    from .batch.plan import PLAN_COLUMNS, plan

    parts, online = plan(job)
    if parts:
        title = f"batch mode: {count(len(parts), 'file')} for the Batch API (cost_usd_batch above)"
        _print_table(parts, PLAN_COLUMNS, title=title, drop=["inputs", "megabytes", "endpoint"])
    if online:
        _tell(f"{count(online, 'item')} of types the Batch API does not take (speech, transcription) run online")
    worsts = [part["cost_usd_max"] for part in parts]
    return None if online or None in worsts else sum(worsts)


def _print_table(rows: list[dict[str, Any]], columns: list[str], title: str, **fitting: Any) -> None:
    from .screen import print_table

    print_table(rows, columns, title, **fitting)


@main.command(
    short_help="Check job files; print every problem at its line.",
    epilog=_examples("batchgpt validate jobs/*.yaml", "batchgpt validate jobs/lines.jsonl --model gpt-4o-mini"),
)
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", metavar="NAME", help="Model for items that set none (JSONL jobs), as for run.")
@_errors_to_exit_codes
def validate(files: tuple[Path, ...], model: str | None) -> None:
    """Check job files; print every problem as FILE:LINE: message (at /pointer)."""
    from .api import validate as validate_all

    problems = validate_all(*files, model=model)
    if problems:
        _print_problems(problems)
        sys.exit(EXIT_INVALID)
    click.echo(f"{count(len(files), 'job file')} valid", err=True)


@main.command(
    short_help="Show an endpoint's remaining balance, where it tells.",
    epilog=_examples("batchgpt balance jobs/translate.yaml", "batchgpt balance --base-url https://proxy.example/v1"),
)
@click.argument("job", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--base-url", metavar="URL", help="The endpoint (default: the job's, else $OPENAI_BASE_URL).")
@_errors_to_exit_codes
def balance(job: Path | None, base_url: str | None) -> None:
    """The remaining balance and usage, where the endpoint keeps the dashboard's billing routes:
    relays (one-api, new-api) do, OpenAI's API does not answer them for API keys."""
    from . import aio
    from .balance import absent, shown
    from .client import fetch_balance
    from .jobs import Overrides, load
    from .provider import api_key, provider_from

    provider = load(job, Overrides(base_url=base_url)).provider if job is not None else provider_from({}, base_url)
    answer = aio.run(fetch_balance(provider, api_key(provider)))
    if isinstance(answer, str):
        click.echo(f"batchgpt: {absent(answer)}", err=True)
        sys.exit(1)
    click.echo(shown(answer))


@main.command(
    "mock-server",
    short_help="Serve a local OpenAI-compatible API to rehearse on.",
    epilog=_examples(
        "batchgpt mock-server --port 8000",
        "batchgpt mock-server --rpm 600 --window 1 --fault 503:0.1",
        "batchgpt mock-server --fault 400,match=BAD --fault 500:first=2",
    ),
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--latency", default=0.0, show_default=True, type=float, help="Seconds before each answer.")
@click.option("--rpm", type=float, help="Requests per minute per model before 429s.")
@click.option("--tpm", type=float, help="Tokens per minute per model before 429s.")
@click.option(
    "--window",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds of the per-minute limits a burst may take (the API enforces over shorter periods).",
)
@click.option("--no-limit-headers", is_flag=True, help="Send no x-ratelimit-* headers, as many proxies.")
@click.option("--no-retry-after", is_flag=True, help="Send no retry-after with rate-limit 429s.")
@click.option("--capacity", type=click.IntRange(min=1), help="Requests in flight before 503 'overloaded'.")
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="KIND[:RATE|:first=N|:for=S][,match=TEXT][,over=N]",
    help="Inject a fault: 500, 503, 429, 429-no-retry-after, quota, 401, 400, drop, hang, malformed, "
    "echo-headers, 307, 301, usage-strings, usage-negative, no-usage, no-done, split-emoji, ignore-stream. "
    "Repeatable. '503:0.1' fails 10%; '500:first=2' fails each request's first two attempts; "
    "'429:for=20' refuses everything for 20 s from the first request; 'hang:over=4' holds what arrives "
    "while more than 4 are in flight, then answers (a queuing relay).",
)
@click.option("--seed", default=0, type=int, help="Seed for fault rates.")
@click.option("--api-key", envvar="MOCK_API_KEY", help="Require this key (401 otherwise).")
@click.option(
    "--billing",
    default="100:0",
    show_default=True,
    metavar="LIMIT:USED",
    help="What the billing routes report, in USD; 'none' serves none (404).",
)
@click.option(
    "--batch-delay", default=0.0, show_default=True, type=click.FloatRange(min=0), help="Seconds a batch takes."
)
@click.option(
    "--batch-expire",
    type=click.FloatRange(0, 1),
    metavar="SHARE",
    help="Batches expire with this share of their lines answered (the rest: batch_expired).",
)
@click.option("--batch-invalid", metavar="TEXT", help="Batch lines holding TEXT fail the batch's validation.")
@_errors_to_exit_codes
def mock_server(
    host: str,
    port: int,
    latency: float,
    rpm: float | None,
    tpm: float | None,
    window: float,
    no_limit_headers: bool,
    no_retry_after: bool,
    capacity: int | None,
    faults: tuple[str, ...],
    seed: int,
    api_key: str | None,
    billing: str,
    batch_delay: float,
    batch_expire: float | None,
    batch_invalid: str | None,
) -> None:
    """An OpenAI-compatible server for rehearsing jobs offline and for free."""
    from .mockserver import Config, Fault, MockServer

    try:
        parsed = [Fault.parse(f) for f in faults]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--fault") from None
    try:
        limits = None if billing == "none" else tuple(float(v) for v in billing.split(":"))
        assert limits is None or len(limits) == 2
    except (ValueError, AssertionError):
        raise click.BadParameter("use LIMIT:USED in dollars, e.g. 100:12.5, or none", param_hint="--billing") from None
    config = Config(
        api_key=api_key,
        latency=latency,
        rpm=rpm,
        tpm=tpm,
        window=window,
        limit_headers=not no_limit_headers,
        retry_after=not no_retry_after,
        capacity=capacity,
        faults=parsed,
        seed=seed,
        record=False,
        billing=limits,
        batch_delay=batch_delay,
        batch_expire=batch_expire,
        batch_invalid=batch_invalid,
    )
    click.echo(f"batchgpt mock server on http://{host}:{port}/v1 (Ctrl-C stops it)", err=True)
    MockServer(config).serve_forever(port, host)


def _verbose(context: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        from . import logs

        context.find_root().obj["verbose"] = True
        logs.setup(True)  # `run` sets its format afterwards, verbose too


# -v after the command works as before it (`batchgpt run job.yaml -v`): people add it last.
for _command in main.commands.values():
    _command.params.append(
        click.Option(["-v", "--verbose"], is_flag=True, expose_value=False, callback=_verbose, help="Log every retry.")
    )


def entry() -> None:
    """The console script: main(), then out of the process without the interpreter's teardown,
    which frees every object one by one (30 ms after a 20,000-item run). What an exit must do is
    still done: exit handlers (logging's flushes), and the output flushed. A process that still
    has threads ends the usual way, so that they finish."""
    try:
        main()
    except SystemExit as exc:  # click ends every command with one
        if threading.active_count() > 1:
            raise
        code = exc.code
    else:  # pragma: no cover - click's standalone mode always exits
        code = 0
    if code is not None and not isinstance(code, int):  # sys.exit("message"), as Python says it
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):  # None where the descriptor was closed (`>&-`, a daemon)
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (`| head`), a closed stream
            if stream is not None:
                stream.flush()
    os._exit(code or 0)


if __name__ == "__main__":  # pragma: no cover
    entry()
