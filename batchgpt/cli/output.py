"""The lines a command writes on stderr: logged events under `run` and `cancel`, plain text
elsewhere; problems at their lines; tables fitted to the terminal."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import click

from batchgpt.words import count

if TYPE_CHECKING:
    from batchgpt.screen import Ranking

_LOGGER = "batchgpt.cli"  # one logger for the whole command line, whichever module writes


def _tell(
    message: str, event: str = "message", level: int = logging.INFO, plain: str | None = None, **fields: Any
) -> None:
    """One line on stderr. A command that runs a job (run, cancel) logs it, so it is stamped, or
    JSON under --log-format json, like every other line of the run (cron keeps them in one log);
    another command prints `plain` (by default the message) for the person at the terminal."""
    context = click.get_current_context(silent=True)
    if context is not None and (context.find_root().obj or {}).get("logged"):
        from batchgpt import logs

        logs.event(logging.getLogger(_LOGGER), event, message, fields.pop("job", None), level, **fields)
    else:
        click.echo(message if plain is None else plain, err=True)


def _log_the_run(log_format: str) -> None:
    """From here on this command's lines go through the run's log (see _tell)."""
    from batchgpt import logs

    root = click.get_current_context().find_root()
    logs.setup(root.obj["verbose"], log_format)
    root.obj["logged"] = True


def _print_problems(problems: Any, suffix: str = "") -> None:
    for problem in problems:
        where = {"file": problem.file, "line": problem.line, "pointer": problem.pointer}
        _tell(str(problem), "problem", logging.ERROR, plain=str(problem), **where)
    found = f"{count(len(problems), 'problem')} found{suffix}"
    _tell(found, "invalid", logging.ERROR, plain=f"batchgpt: {found}")


def _print_table(rows: list[dict[str, Any]], columns: list[str], title: str, ranking: Ranking) -> None:
    from batchgpt.screen import print_table

    print_table(rows, columns, title, ranking)
