"""Writing output files safely: the one place results, reports, estimates and media reach the disk.

Every file is written to a temporary beside its destination and renamed into place, so a reader
(or a cron job downstream) never sees half a file and a failed write leaves the old file whole.
The temporary is created exclusively (O_EXCL, O_NOFOLLOW), so nothing planted at its name, such
as a symlink, can redirect the write. Its name says who made it (host and process), so one left
by a killed run is removed later without ever touching another live run's file or anyone else's.

This module also owns the pre-flight check that an output can be written before a run pays for
anything, and the messages for outputs that cannot be written: they name the output, never the
temporary. It must not import pandas or pyarrow (tablefiles.py owns those).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

from .errors import OutputError

PREFIX = ".batchgpt-"
SUFFIX = ".tmp"
# Tells this machine's temporaries from those of another machine sharing the folder, whose
# process ids mean nothing here.
HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
_NAME_KEPT = 80  # characters of the destination's name kept in a temporary's name, for a reader
_OURS = re.compile(
    r"\.batchgpt-(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-[0-9a-f]{8}\..*\.tmp(-wal|-shm|-journal)?", re.DOTALL
)
_DRAWS = 16
_swept: set[Path] = set()  # folders already cleaned by this process


def temporary_name(target: Path, pid: int | None = None) -> str:
    """A fresh temporary's name for `target`: who made it, a random part, then the target's name."""
    pid = os.getpid() if pid is None else pid
    return f"{PREFIX}{HOST}-{pid}-{secrets.token_hex(4)}.{target.name[:_NAME_KEPT]}{SUFFIX}"


@contextmanager
def atomic_write(path: Path, mode: str = "w") -> Iterator[IO[Any]]:
    """A handle on a temporary beside `path`, renamed onto `path` once the block ends without error.

    Any OSError (the disk full, the folder gone read-only) is an OutputError naming `path`."""
    _make_folder(path)
    try:
        _sweep_once(path.parent)
        fd, temporary = create_temporary(path)
    except OSError as exc:
        raise OutputError(_describe(path, exc)) from None
    try:
        with _open(fd, mode) as handle:
            yield handle
            handle.flush()
            # fsync before the rename: else a crash can leave an empty file under the final name,
            # and some filesystems report a full disk only here.
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        raise OutputError(_describe(path, exc)) from None
    finally:
        with suppress(OSError):  # gone already after the rename; a later sweep gets what stays
            temporary.unlink(missing_ok=True)


def write_bytes(path: Path, data: bytes) -> None:
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def check_writable(path: Path) -> None:
    """Pre-flight: raise OutputError, naming `path`, when a file cannot be written there. Makes its
    folder, as the write would, and removes temporaries that killed runs left for this file."""
    try:
        is_folder = path.is_dir()
    except OSError as exc:
        raise OutputError(_describe(path, exc)) from None
    if is_folder:
        raise OutputError(f"cannot write {path}: it is a folder")
    _make_folder(path)
    check_folder(path.parent, path)
    sweep(path.parent, legacy_of=path.name)


def check_folder(folder: Path, shown: Path | None = None) -> None:
    """Pre-flight for a folder that files will be written into (it need not exist yet)."""
    shown = shown or folder
    if not folder.exists():
        folder = folder.parent  # made when the first file arrives: its parent must take it
    elif not folder.is_dir():
        raise OutputError(f"cannot write {shown}: {folder} is not a folder")
    try:
        fd, probe = create_temporary(folder / "probe")
    except OSError as exc:
        raise OutputError(_describe(shown, exc)) from None
    os.close(fd)
    with suppress(OSError):  # a leftover probe is swept like any temporary
        probe.unlink()


def _describe(path: Path, exc: OSError) -> str:
    """What went wrong writing `path`, without the temporary's name that the OSError may carry."""
    return f"cannot write {path}: {exc.strerror or exc}"


def sweep(folder: Path, legacy_of: str | None = None) -> None:
    """Remove temporaries that dead processes of this machine left in `folder`, and nothing else.

    `legacy_of`: also those that earlier versions left for that file (`.<name>.<pid>.tmp`)."""
    legacy = re.compile(re.escape(f".{legacy_of}.") + r"(?P<pid>\d+)\.tmp") if legacy_of else None
    try:
        names = os.listdir(folder)
    except OSError:
        return  # a folder that cannot be listed is reported by the write that follows, if any
    for name in names:
        if _left_behind(name, legacy):
            with suppress(OSError):
                (folder / name).unlink()


def _left_behind(name: str, legacy: re.Pattern[str] | None) -> bool:
    ours = _OURS.fullmatch(name)
    if ours is not None and ours["host"] == HOST:
        return not _alive(int(ours["pid"]))
    old = legacy.fullmatch(name) if legacy is not None else None
    return old is not None and not _alive(int(old["pid"]))


def _alive(pid: int) -> bool:
    if pid <= 0 or pid == os.getpid():
        return True  # our own are in use; a strange pid is left alone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's process: alive
    return True


def _sweep_once(folder: Path) -> None:
    if folder not in _swept:
        sweep(folder)
        _swept.add(folder)


def _make_folder(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        where = exc.filename or path.parent
        # mkdir's "File exists" means a file stands where the folder should be
        reason = "a file is in the way" if isinstance(exc, FileExistsError) else exc.strerror or exc
        raise OutputError(f"cannot write {path}: its folder {where} cannot be made ({reason})") from None


def create_temporary(path: Path) -> tuple[int, Path]:
    """Create a new, empty temporary beside `path`: exclusively, and without following a symlink.
    os.open rather than mkstemp so the file gets the usual permissions (0666 less the umask), as
    the results file always had, not mkstemp's owner-only 0600."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(_DRAWS - 1):
        temporary = path.with_name(temporary_name(path))
        try:
            return os.open(temporary, flags, 0o666), temporary
        except FileExistsError:
            continue  # 32 random bits met an existing name (or a planted one): draw again
    temporary = path.with_name(temporary_name(path))
    return os.open(temporary, flags, 0o666), temporary


def _open(fd: int, mode: str) -> IO[Any]:
    try:
        if "b" in mode:
            return open(fd, mode)
        return open(fd, mode, encoding="utf-8", newline="")
    except BaseException:
        os.close(fd)
        raise
