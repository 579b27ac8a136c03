"""The state directory: its default name, the message when it cannot be used, and the lock that
lets one run of a job at a time work in it."""

from __future__ import annotations

import fcntl
import os
import re
from pathlib import Path
from typing import Any

from batchgpt.errors import LockedError, StateError

STATE_DIR = ".batchgpt"  # the default state directory's name, beside the job file


def unusable_directory(directory: Path, exc: OSError) -> str:
    return f"cannot use the state directory {directory}: {exc.strerror or exc} (--state DIR puts it elsewhere)"


class JobLock:
    """One run of a job at a time. flock() dies with its process, so a stale lock file from a
    killed run never blocks; the file holds the owner's pid only to name it in the message."""

    def __init__(self, directory: Path, job: str):
        self.path = directory / f"{re.sub(r'[^A-Za-z0-9._-]', '_', job)}.lock"
        self.job = job
        self._file: Any = None

    def __enter__(self) -> JobLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.path, "a+", encoding="utf-8")
        except OSError as exc:
            raise StateError(unusable_directory(self.path.parent, exc)) from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise LockedError(f"job {self.job!r} is already running (process {owner} holds {self.path})") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
