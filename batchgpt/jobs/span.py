"""Part of a job's items, for a walk over that part only (a dry run walks two parts at once,
dryfork.py): of a JSONL job a range of its lines, of a globbed job a run of its matched files."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """Of a JSONL job, its lines from byte `start` (where a line starts) up to byte `end`, the
    first of them numbered `first_line`, so a part reports the lines the whole file would. Of a
    job whose one task takes its items from a glob, `files`: those of its matched files (in path
    order) from index `start`, so a part names and numbers its items as the whole job would."""

    start: int = 0
    end: int | None = None
    first_line: int = 1
    files: tuple[str, ...] | None = None


WHOLE = Span()
