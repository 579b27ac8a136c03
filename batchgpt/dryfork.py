"""The forked dry run: a big JSONL job checked and estimated in two processes at once, one per half
of its lines, with the same figures and problems as one walk over them (estimate.py asks; this
module says None where a fork does not pay or is not safe, and estimate.py walks the job itself).

Kept by issue 25's measure (bench/dryrun.py): on a quiet machine it took a 1,000,000-item dry
run from 22.6 s to 11.5 s, and one process cannot walk a million items in 10 s. On a machine at
load 8-17 the paired medians were 46.1 s against 54.2 s wall for 200,000 items (4 rounds) at the
same CPU (16.2 s, 16.1 s), and two 1,000,000-item pairs (410 s, 407 s against 550 s, 235 s) were
within the noise: with the cores busy the second process gains less.
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
from .jobs import MAX_PROBLEMS, ItemCheck, Job, Problems, Span, requests

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

# A JSONL job this big is checked and estimated in two processes (halves): below it, starting the
# second one costs more than it saves.
SPLIT_BYTES = 4 << 20


@dataclass(frozen=True)
class _Part:
    """What a forked process found in its half of a job."""

    groups: list[Group]
    problems: Problems
    seen: bytes  # the ids' hashes (ItemCheck.seen), as an array of int64
    offline: bool
    unloaded: list[str]  # encodings it could not load: the parent says so, once


def halves(job: Job, check: ItemCheck, estimator: Estimator) -> list[Group] | None:
    """The groups of a big JSONL job, checked and estimated in two processes at once, one per half
    of its lines: the same figures and problems as one walk, in about half the time on two cores.
    None where that does not pay (a small job) or cannot be done safely: no fork (not Linux), a
    parent with threads (a fork copies their locks, held or not), or a daemonic process (which
    may have no children)."""
    if job.fmt != "jsonl" or job.path is None or sys.platform != "linux" or threading.active_count() > 1:
        return None
    size = job.path.stat().st_size
    if size < SPLIT_BYTES:
        return None
    import multiprocessing  # here: a run, which imports this module too, forks nothing (4 ms)

    if multiprocessing.current_process().daemon:
        return None
    halves = _split(job.path, size)
    if halves is None:
        return None
    first, second = halves
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_estimate_part, args=(job, second, estimator, receiver, sender), daemon=True)
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
    and all the problems within MAX_PROBLEMS. Its ids are counted in when they do."""
    if check.problems.count + part.problems.count > MAX_PROBLEMS:
        return False
    seen = array("q", part.seen)
    if not check.seen.isdisjoint(seen):
        return False
    check.elsewhere += len(seen)  # no walk follows: its ids need not join the set
    return True


def _estimate_part(job: Job, span: Span, estimator: Estimator, receiver: Connection, sender: Connection) -> None:
    """In the forked process: check and estimate `span`, and send what was found (None on failure,
    and the parent walks the span itself)."""
    # The parent's end of the pipe, closed here: once the parent is gone (killed, say), a send
    # fails at once instead of waiting forever for a reader, and this process ends.
    receiver.close()
    logging.disable(logging.WARNING)  # what is worth saying, the parent says once (see _Part.unloaded)
    try:
        check = ItemCheck(Problems(str(job.path)))
        groups = sums(requests(job, check, span, sendable=False), estimator)
        counter = estimator.counter
        sender.send(_Part(groups, check.problems, array("q", check.seen).tobytes(), counter.offline, counter.unloaded))
    except BaseException:  # noqa: BLE001 - the parent's own walk of the span reports what went wrong
        with contextlib.suppress(OSError):  # the parent is gone
            sender.send(None)
    finally:
        sender.close()


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
