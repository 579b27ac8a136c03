"""Reading a YAML or JSON job file within bounds.

The file is read whole, by a safe loader (yamldoc.py) that gives only what JSON can carry and
refuses a file past the bounds of bounds.py (bytes, nodes, depth) before building its tree, or
one that is not text (notext.py) at the line and column of its first bad byte. Each
value JSON cannot carry is reported at its line and left out; the line of every key and value is
kept for the problems found later.
"""

from __future__ import annotations

from pathlib import Path

from batchgpt import notext

from .bounds import MAX_YAML_BYTES, STREAMED, Parsed
from .problems import Problems, reason


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
        text = notext.decoded(path.read_bytes())
    except OSError as exc:
        problems.add(f"cannot read the job file: {reason(exc)}")
        return None
    found = notext.find(text, notext.NOT_YAML)  # at its line and column: YAML would say the byte offset
    if found is not None:
        problems.add(found.message, line=found.line)
        return None
    return text
