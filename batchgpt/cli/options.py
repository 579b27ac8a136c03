"""Options several commands share, and what their arguments mean: the job-setting overrides,
--state and where a run's state is found, --poll."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from batchgpt.jobs import Overrides


def _overrides(kwargs: dict[str, Any]) -> Overrides:
    from batchgpt.jobs import Overrides  # noqa: F811  # imported here: a CLI that only asks --help loads no jobs code

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


def _redis_url(value: str | None) -> str | None:
    if value is not None and not value.startswith(("redis://", "rediss://")):
        raise click.BadParameter("use a Redis URL: redis://HOST:PORT/DB", param_hint="--shared-limits")
    return value


def _state_dir(state: Path | None, job: Path | None) -> Path:
    """The one rule for every command: --state DIR, else .batchgpt/ beside the job file, else (a
    command given no job file) .batchgpt/ in this folder."""
    from batchgpt.store import STATE_DIR

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
