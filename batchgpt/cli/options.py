"""Options several commands share, and what their arguments mean: the job-setting overrides,
--state and where a run's state is found, --poll."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from batchgpt.jobs import Overrides


def _overrides(kwargs: dict[str, Any]) -> Overrides:
    from batchgpt.jobs import Overrides  # noqa: F811  # imported here: a CLI that only asks --help loads no jobs code

    return Overrides(**{k: kwargs.pop(k) for k in list(kwargs) if k in Overrides.__dataclass_fields__})


def _setting_options(command: str) -> list[Callable[..., Any]]:
    """The options of `command` ("run" or "estimate") that override the job's settings, each made
    from its declaration in the job schema (batchgpt.settings): flag, type and bounds, help."""
    from batchgpt.settings import overrides

    made: list[Callable[..., Any]] = []
    for setting in overrides():
        option = setting.option
        assert option is not None
        if command == "estimate" and not option.estimate:
            continue
        meaning = option.estimate if command == "estimate" and isinstance(option.estimate, str) else setting.description
        for n, (value, said) in enumerate(option.flags.items()):  # a choice: a flag for each value
            made.append(
                click.option(
                    f"--{value}", option.name, flag_value=value, help=said, **({"default": None} if n == 0 else {})
                )
            )
        if setting.schema.get("type") == "boolean":  # a switch: on when given, else as the job says
            made.append(click.option(option.flag, option.name, is_flag=True, default=None, help=meaning))
        elif not option.flags:
            check = _CHECKS.get(option.name)
            made.append(
                click.option(
                    option.flag,
                    option.name,
                    type=_click_type(setting.schema),
                    metavar=option.metavar,
                    help=meaning,
                    callback=(lambda _c, _p, v, check=check: check(v)) if check else None,
                )
            )
    return made


def _click_type(schema: Mapping[str, Any]) -> click.IntRange | click.FloatRange | None:
    """The click type that takes what the schema takes (its bounds); None for text."""
    low = schema.get("exclusiveMinimum", schema.get("minimum"))
    high = schema.get("maximum")
    if schema.get("type") == "integer":
        return click.IntRange(low, high)
    if schema.get("type") == "number":
        return click.FloatRange(low, high, min_open="exclusiveMinimum" in schema)
    return None


def _redis_url(value: str | None) -> str | None:
    if value is not None and not value.startswith(("redis://", "rediss://")):
        raise click.BadParameter("use a Redis URL: redis://HOST:PORT/DB", param_hint="--shared-limits")
    return value


# A check beyond the type, with a message a person can act on, by the option's name.
_CHECKS: dict[str, Callable[[Any], Any]] = {"shared_limits": _redis_url}
# What an estimate reads as a run does: where requests go, how fast, which mode (the endpoint's
# prices, the minutes, the batch files). The results file, retries and timeouts change nothing in
# an estimate, so `estimate` does not offer them (their `x-option` leaves out `estimate`).
_RUN_OPTIONS = _setting_options("run")
_ESTIMATE_OPTIONS = [
    click.option("--report", metavar="PATH", help="Also write the estimate to this file (.csv, .parquet)."),
    *_setting_options("estimate"),
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
