"""The errors batchgpt raises on purpose, and the exit code each one maps to.

Anything else escaping to the CLI is a bug and shows a traceback; these never do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

EXIT_OK = 0
EXIT_FAILED_ITEMS = 1
EXIT_INVALID = 2
EXIT_STOPPED = 3
EXIT_LOCKED = 4
# 5 is batch mode's: batches submitted and not finished (batches.EXIT_SUBMITTED); 7 too: whether a batch
# was created cannot be told (batches.EXIT_UNRESOLVED)
EXIT_IO = 6  # a write failed (a full disk, a read-only folder) after the run began: answers are kept
EXIT_SIGINT = 130


NO_POINTER = "-"  # a problem with the file as a whole (syntax, size, reading)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a job, located as precisely as the input allows."""

    file: str
    line: int | None
    message: str
    pointer: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        at = "" if self.pointer == NO_POINTER else f" (at {self.pointer or '/'})"
        return f"{where}: {self.message}{at}"


class BatchgptError(Exception):
    exit_code = EXIT_INVALID


class JobError(BatchgptError):
    """The job is invalid: nothing was sent."""

    exit_code = EXIT_INVALID

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]):
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class UsageError(BatchgptError):
    """A bad option or a missing setting outside any job file (such as the API key)."""

    exit_code = EXIT_INVALID


class MissingKeyError(UsageError):
    """No API key where the endpoint needs one. The message says which variable to set; only
    `batchgpt run` adds that --dry-run needs none, as only it has that option."""


class StateError(BatchgptError):
    """The state directory is missing, unwritable or corrupt."""

    exit_code = EXIT_INVALID


class LockedError(BatchgptError):
    exit_code = EXIT_LOCKED


class OutputError(BatchgptError):
    """The results or the report could not be written; the answers are in the store."""

    exit_code = EXIT_IO


class StoreWriteError(StateError):
    """The state store could not be written during a run (a full disk): what it committed before
    is kept, and a rerun sends only what is missing."""

    exit_code = EXIT_IO


def store_write_error(directory: Path, exc: BaseException) -> StoreWriteError:
    """The error for an SQLite write that failed mid-run, saying so plainly when the disk is full."""
    if disk_full(exc):
        return StoreWriteError(
            f"the disk is full: cannot write the run state in {directory} ({exc}). The answers it holds are "
            "kept: free some space, then run again to send only the rest"
        )
    return StoreWriteError(
        f"cannot write the run state in {directory}: {exc}. The answers it holds are kept: run again to send "
        "only the rest"
    )


def disk_full(exc: BaseException) -> bool:
    """Whether SQLite failed for want of space (SQLITE_FULL; Python 3.10 only says it in words)."""
    return getattr(exc, "sqlite_errorname", None) == "SQLITE_FULL" or "database or disk is full" in str(exc)
