"""Reading a YAML or JSON job file within bounds, and the limits on what any source may hold.

The file is read whole, by a safe loader (yamldoc.py) that gives only what JSON can carry and
refuses a file past MAX_YAML_BYTES, MAX_YAML_NODES or MAX_DEPTH before building its tree. Each
value JSON cannot carry is reported at its line and left out; the line of every key and value is
kept for the problems found later.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchgpt.schema import JsonPath

from .problems import Problems, reason

# A YAML or JSON job is read whole, at some 650 bytes of memory a node from text to validated
# job: the node bound keeps the worst accepted one near 130 MB and 2 s, and refuses a bigger one
# while composing, before its tree exists; the byte bound refuses a huge file before reading it.
# Bigger batches belong in JSONL or items_from, which are streamed.
MAX_YAML_BYTES = 16 * 2**20
MAX_YAML_NODES = 200_000
MAX_YAML_EXPANDED = 2_000_000  # nodes counted once per alias that reaches them: an alias bomb stops here
MAX_DEPTH = 100  # levels of nesting; orjson writes at most 254, and deeper structures recurse in Python
STREAMED = "put the items in a JSONL job or an items_from file (both are streamed)"


@dataclass(frozen=True)
class Parsed:
    """A job file read: its document, the line of every key and value, the values left out."""

    document: Any
    lines: dict[JsonPath, int]
    blanks: list[JsonPath]  # where a value JSON cannot carry was left out (as None)


def read_document(path: Path, problems: Problems) -> Parsed | None:
    """The document, with the line of every key and value; None when it cannot be read at all.
    Values JSON cannot carry are reported here and left as None for the checks that follow."""
    text = _yaml_text(path, problems)
    if text is None:
        return None
    from . import yamldoc  # PyYAML: imported for YAML and JSON jobs only (10 ms a JSONL run does without)

    return yamldoc.parse(text, path.suffix.lower() == ".json", problems)


def _yaml_text(path: Path, problems: Problems) -> str | None:
    try:
        size = path.stat().st_size
        if size > MAX_YAML_BYTES:
            problems.add(
                f"the file is {size / 2**20:.1f} MiB; YAML and JSON jobs are read whole "
                f"into memory and limited to {MAX_YAML_BYTES / 2**20:g} MiB: {STREAMED}"
            )
            return None
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        problems.add(f"cannot read the job file: {reason(exc)}")
        return None
