"""A Batch API file's content written to disk as it arrives: split into lines in linear time (a
200 MB line is one line, not 200 copies of a growing one), each line stripped of secrets, a line
past the answer cap dropped and replaced by a line that names its item and the cap, and nothing
read past the file's own cap (bodies.py). client.download streams the content through it.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable

import orjson

from .bodies import TOO_LARGE_KEY, Cut, Lines, LongLine, TooLarge
from .redact import Redactor


async def write_lines(
    chunks: AsyncIterable[bytes], write: Callable[[bytes], object], limit: int, cap: int, redact: Redactor
) -> Cut | None:
    """Write the lines of a file's content, up to `limit` bytes of it, each line up to `cap`;
    a Cut when the content went on past `limit` (the line the cut falls in is not written)."""
    lines = Lines(cap)
    total = 0
    async for chunk in chunks:
        total += len(chunk)
        if total > limit:
            for line in lines.feed(chunk[: len(chunk) - (total - limit)]):
                write(clean_line(line, cap, redact) + b"\n")
            return Cut(limit)
        for line in lines.feed(chunk):
            write(clean_line(line, cap, redact) + b"\n")
    write(clean_line(lines.end(), cap, redact))
    return None


def clean_line(line: bytes | LongLine, cap: int, redact: Redactor) -> bytes:
    """A JSON line without secrets, also those JSON escapes hide (as in answers online). A line
    past `cap`, dropped as it came, becomes a line naming its custom_id (as its start gives it)
    and the cap, for the batch's reader to record it as too large (batch/files.py)."""
    if isinstance(line, LongLine):
        custom_id = line.custom_id()
        said = str(TooLarge(cap))
        return orjson.dumps({"custom_id": custom_id and redact.text(custom_id), TOO_LARGE_KEY: said})
    line = redact.raw(line)
    if redact.escaped(line):
        try:
            return orjson.dumps(redact.tree(orjson.loads(line)))
        except orjson.JSONDecodeError:
            pass  # not JSON: read as a broken line downstream
    return line
