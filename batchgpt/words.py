"""How counts and commands are written for people: '1 item', '2,000 items', and commands that work
pasted from any folder.

One helper for every count a person reads (the summary, log lines, table titles, hints), so none
says '1 requests' or '2000 items'. Commands in hints name absolute paths, because a hint printed
by cron or by a run started elsewhere is pasted from whatever folder its reader is in.
"""

from __future__ import annotations

import shlex
from pathlib import Path


def plural(noun: str) -> str:
    """English's regular plural: item -> items, batch -> batches, retry -> retries."""
    if noun.endswith(("s", "x", "z", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in ("a", "e", "i", "o", "u", ""):
        return noun[:-1] + "ies"
    return noun + "s"


def count(n: int, noun: str, many: str | None = None) -> str:
    """'1 item', '2,000 items', '0 batches': thousands separated, the noun singular only for
    one. `many` is the plural where the regular one is wrong."""
    return f"{n:,} {noun if n == 1 else many or plural(noun)}"


def command(*words: str | int | Path, **options: str | Path | None) -> str:
    """A batchgpt command line to paste anywhere: paths made absolute and every word quoted for the
    shell; each option given (`state=...` is `--state ...`) follows the words, one not given is
    left out."""
    parts = [*words]
    for name, value in options.items():
        if value is not None:
            parts += [f"--{name.replace('_', '-')}", value]
    return " ".join(["batchgpt", *(shlex.quote(str(_absolute(part))) for part in parts)])


def _absolute(word: str | int | Path) -> str | int | Path:
    return word.absolute() if isinstance(word, Path) else word
