"""The state directory: its default name, the messages when it cannot be used (read-only, or else),
and the lock that lets one run of a job at a time work in it."""

from __future__ import annotations

import errno
import fcntl
import os
import re
from pathlib import Path
from typing import Any

from batchgpt.errors import LockedError, StateError

STATE_DIR = ".batchgpt"  # the default state directory's name, beside the job file
DB_NAME = "state.db"  # the store's file in it


_REFUSED = (errno.EROFS, errno.EACCES, errno.EPERM)


def unusable_directory(directory: Path, exc: OSError) -> str:
    if exc.errno in _REFUSED:
        return read_only(directory, exc.errno)
    return f"cannot use the state directory {directory}: {exc.strerror or exc} (--state DIR puts it elsewhere)"


def read_only(directory: Path, code: int = errno.EACCES, store: Path | None = None) -> str:
    """The message for a state folder (or, with `store`, its state.db) that this process may not
    write, naming it and what to do: "unusable" sent users to move a sound store aside."""
    folder = directory.absolute()
    why = "a read-only file system" if code == errno.EROFS else "no write permission for this user"
    if store is not None:
        where, target = f"the state store {store.absolute()} is read-only ({why})", store.absolute()
    else:
        target = next((p for p in (folder, *folder.parents) if p.exists()), folder)
        where = f"the state folder {folder} is read-only ({why})"
        if target != folder:
            where = f"cannot make the state folder {folder}: {target} is read-only ({why})"
    copy = " (a copy of this one keeps its answers)" if (folder / DB_NAME).exists() else ""
    return f"{where}. Give the run a folder it can write with --state DIR{copy}, or make {target} writable"


def writable(directory: Path, store: Path | None) -> None:
    """StateError naming the state folder, or the `store` in it, where this process may not write
    them. The folder is needed to read too: SQLite keeps a store's shared memory beside it."""
    if not os.access(directory, os.W_OK):
        raise StateError(read_only(directory, errno.EROFS if _on_read_only_fs(directory) else errno.EACCES))
    if store is not None and store.exists() and not os.access(store, os.W_OK):
        raise StateError(read_only(directory, errno.EROFS if _on_read_only_fs(store) else errno.EACCES, store))


def _on_read_only_fs(path: Path) -> bool:
    return bool(os.statvfs(path).f_flag & os.ST_RDONLY)


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
