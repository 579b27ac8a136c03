"""The forked dry run: a big JSONL job checked and estimated in two processes at once, one per half
of its lines (a big globbed job, one per half of its files), with the same figures and problems as
one walk over them (estimate.py asks; this module says None where a fork does not pay or is not
safe, and estimate.py walks the job itself).

Kept by issue 25's measure (bench/dryrun.py): on a quiet machine it took a 1,000,000-item dry
run from 22.6 s to 11.5 s, and one process cannot walk a million items in 10 s. On a machine at
load 8-17 the paired medians were 46.1 s against 54.2 s wall for 200,000 items (4 rounds) at the
same CPU (16.2 s, 16.1 s), and two 1,000,000-item pairs (410 s, 407 s against 550 s, 235 s) were
within the noise: with the cores busy the second process gains less. Issue 26's gate, a dry run
of 100,000 globbed images (bench/images.py), split by its files: 7.4 s against 13.1 s wall (paired
medians of 3, ratio 0.52) on a quiet machine; with another job's install holding a core, 17.3 s
against 13.3 s (the second process gets no core of its own, and the two cost more CPU than one).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .bounds import Estimator
from .drytable import Group, merged, sums
from .jobs import MAX_PROBLEMS, ItemCheck, Job, Problems, Span, matched_files, requests
from .schema import JsonPath

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

# A JSONL job this big is checked and estimated in two processes (halves): below it, starting the
# second one costs more than it saves.
SPLIT_BYTES = 4 << 20
# A globbed job of this many files is split too: each costs about 0.15 ms, the fork tens of ms.
SPLIT_FILES = 2000


@dataclass(frozen=True)
class _Part:
    """What a forked process found in its half of a job."""

    groups: list[Group]
    problems: Problems
    seen: bytes  # the ids' hashes (ItemCheck.seen), as an array of int64
    offline: bool
    unloaded: list[str]  # encodings it could not load: the parent says so, once
    said: set[tuple[JsonPath, str]]  # its task-level problems (ItemCheck.said), said once per walk


def halves(job: Job, check: ItemCheck, estimator: Estimator) -> list[Group] | None:
    """The groups of a big JSONL job, checked and estimated in two processes at once, one per half
    of its lines (of a big globbed job, of its files): the same figures and problems as one
    walk, in about half the time on two cores.
    None where that does not pay (a small job) or cannot be done safely: no fork (not Linux), a
    parent with threads (a fork copies their locks, held or not), or a daemonic process (which
    may have no children)."""
    if sys.platform != "linux" or threading.active_count() > 1:
        return None
    parts = _lines_halved(job) if job.fmt == "jsonl" else _files_halved(job)
    if parts is None:
        return None
    import multiprocessing  # here: a run, which imports this module too, forks nothing (4 ms)

    if multiprocessing.current_process().daemon:
        return None
    first, second = parts
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(
        target=_estimate_part, args=(job, second, estimator, check.problems.fresh(), receiver, sender), daemon=True
    )
    child.start()
    sender.close()
    try:
        groups = sums(requests(job, check, first, sendable=False), estimator)
        part = None if check.problems.full else _received(receiver)
    finally:
        child.kill()
        child.join()
        receiver.close()
    if check.stopped:  # past MAX_PROBLEMS in the first half: one walk ends there too
        return groups
    if part is None or not _adds_up(check, part):
        # Its process died, or an id of its half is in this one too, or the two halves' problems
        # pass MAX_PROBLEMS together (one walk would have stopped): walk that half here, going on
        # from this one, exactly as one walk goes.
        return merged(groups, sums(requests(job, check, second, sendable=False), estimator))
    check.problems.merge(part.problems)
    check.said |= part.said
    estimator.counter.offline |= part.offline
    for name in part.unloaded:
        estimator.counter.encoding(name)  # its warning, said here once (the other process kept quiet)
    return merged(groups, part.groups)


def _received(receiver: Connection) -> _Part | None:
    try:
        part: _Part | None = receiver.recv()
    except EOFError:  # the process died before it sent anything
        return None
    return part


def _adds_up(check: ItemCheck, part: _Part) -> bool:
    """Whether the second half's findings add to the first's as one walk's would: no id in both,
    no task-level problem said in both (one walk says it once), and all the problems within
    MAX_PROBLEMS. Its ids are counted in when they do."""
    if check.problems.count + part.problems.count > MAX_PROBLEMS or not check.said.isdisjoint(part.said):
        return False
    seen = array("q", part.seen)
    if not check.seen.isdisjoint(seen):
        return False
    check.elsewhere += len(seen)  # no walk follows: its ids need not join the set
    return True


def _estimate_part(
    job: Job, span: Span, estimator: Estimator, problems: Problems, receiver: Connection, sender: Connection
) -> None:
    """In the forked process: check and estimate `span`, and send what was found (None on failure,
    and the parent walks the span itself)."""
    # The parent's end of the pipe, closed here: once the parent is gone (killed, say), a send
    # fails at once instead of waiting forever for a reader, and this process ends.
    receiver.close()
    logging.disable(logging.WARNING)  # what is worth saying, the parent says once (see _Part.unloaded)
    try:
        check = ItemCheck(problems)
        groups = sums(requests(job, check, span, sendable=False), estimator)
        counter = estimator.counter
        seen = array("q", check.seen).tobytes()
        sender.send(_Part(groups, check.problems, seen, counter.offline, counter.unloaded, check.said))
    except BaseException:  # noqa: BLE001 - the parent's own walk of the span reports what went wrong
        with contextlib.suppress(OSError):  # the parent is gone
            sender.send(None)
    finally:
        sender.close()


def _lines_halved(job: Job) -> tuple[Span, Span] | None:
    if job.path is None:
        return None
    size = job.path.stat().st_size
    return None if size < SPLIT_BYTES else _split(job.path, size)


def _files_halved(job: Job) -> tuple[Span, Span] | None:
    """The halves of a job whose one task takes its items from a glob, and nothing else; matched
    once here, each process walks its half of the list."""
    if len(job.tasks) != 1:
        return None
    task = job.tasks[0]
    if task.items_glob is None or task.items or task.items_from is not None:
        return None
    files = matched_files(task)
    if len(files) < max(2, SPLIT_FILES):
        return None
    middle = len(files) // 2
    return Span(0, files=tuple(files[:middle])), Span(middle, files=tuple(files[middle:]))


def _split(path: Path, size: int) -> tuple[Span, Span] | None:
    """The halves of a JSONL file, split where a line starts, each with its first line's number;
    None when the first half has a line ending in a lone CR (counting those is not worth it)."""
    with path.open("rb") as handle:
        handle.seek(size // 2)
        handle.readline()
        middle = handle.tell()
        handle.seek(0)
        lines, left = 0, middle
        while left > 0 and (chunk := handle.read(min(1 << 20, left))):
            if b"\r" in chunk and chunk.count(b"\r") != chunk.count(b"\r\n"):
                return None
            lines += chunk.count(b"\n")
            left -= len(chunk)
    return Span(0, middle), Span(middle, None, lines + 1)
