"""How much of what a server sends is read: every body up to a cap (`limits.max_answer_mb` for an
answer or a line of a batch file, `limits.max_batch_file_mb` for a whole batch file), in chunks,
decoded (gzip, deflate) in bounded steps, and split into lines in time linear in its length.

A gzip answer of 0.6 MB can inflate to 600 MB: a body is never decoded whole and then measured,
but read until it passes its cap and then dropped, so memory stays within the cap whatever the
server sends. What an oversized answer means (billed, not read) is the caller's (client.py).
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from dataclasses import dataclass

from .records import Limits

MIB = 2**20
ANSWER_SETTING = "limits.max_answer_mb"
FILE_SETTING = "limits.max_batch_file_mb"
STEP = 1 << 20  # bytes decoded at a time: the most a decoder adds before the cap is looked at
FEED = 1 << 16  # compressed bytes given to a decoder at a time
MAX_MEMBERS = 1024  # gzip members in one body, as aiohttp allows: each is a decoder of its own
HEAD = 4096  # the start of a line kept when the rest is dropped: where a batch line names its custom_id
TOO_LARGE_KEY = "batchgpt_too_large"  # what a download writes in place of a line past the cap (batch/files.py)
_CUSTOM_ID = re.compile(rb'"custom_id"\s*:\s*"((?:[^"\\]|\\.){1,512})"')


class TooLarge(Exception):
    """A body past its cap: not read to its end."""

    def __init__(self, cap: int, setting: str = ANSWER_SETTING):
        super().__init__(f"larger than {setting} ({size(cap)})")
        self.cap = cap
        self.setting = setting


def mebibytes(mb: float | None = None) -> int:
    """A cap in bytes, of `mb` MiB (by default, limits.max_answer_mb's default)."""
    return round((Limits().max_answer_mb if mb is None else mb) * MIB)


def size(cap: int) -> str:
    """A cap as the setting says it: in MiB."""
    return f"{round(cap / MIB, 4):g} MiB"


async def read_capped(chunks: AsyncIterable[bytes], cap: int) -> bytes:
    """The whole body, or TooLarge as soon as it passes `cap` bytes (the rest is never read)."""
    parts: list[bytes] = []
    total = 0
    async for chunk in chunks:
        total += len(chunk)
        if total > cap:
            raise TooLarge(cap)
        parts.append(chunk)
    return b"".join(parts)


async def capped_lines(chunks: AsyncIterable[bytes], cap: int) -> AsyncIterator[bytes]:
    """The lines of a body (a stream of server-sent events) as they arrive, however long each is;
    TooLarge once the body passes `cap` bytes."""
    lines = Lines()
    total = 0
    async for chunk in chunks:
        total += len(chunk)
        if total > cap:
            raise TooLarge(cap)
        for line in lines.feed(chunk):
            assert isinstance(line, bytes)  # a line has no cap of its own here: only the body has
            yield line
    rest = lines.end()
    assert isinstance(rest, bytes)
    if rest:
        yield rest


@dataclass(frozen=True)
class LongLine:
    """A line past its cap, dropped but for its start."""

    head: bytes
    size: int

    def custom_id(self) -> str | None:
        """The custom_id a batch file's line names near its start, if it does."""
        found = _CUSTOM_ID.search(self.head)
        try:
            named = json.loads(b'"' + found.group(1) + b'"') if found else None
        except ValueError:  # an escape JSON has not, or not UTF-8
            return None
        return named if isinstance(named, str) else None


class Lines:
    """Splits chunks into lines, each byte copied once: a line that spans chunks is joined when its
    end arrives, never grown a chunk at a time (which is quadratic in its length). A line past
    `cap` bytes is dropped as it arrives, but for its HEAD, and comes out as a LongLine."""

    def __init__(self, cap: int | None = None):
        self._cap = cap
        self._pending: list[bytes] = []
        self._size = 0  # of the line being read, dropped parts included

    def feed(self, chunk: bytes) -> Iterator[bytes | LongLine]:
        """The lines `chunk` ends (without their line break)."""
        start = 0
        end = chunk.find(b"\n")
        while end != -1:
            yield self._line(chunk[start:end])
            start = end + 1
            end = chunk.find(b"\n", start)
        if start < len(chunk):
            self._add(chunk[start:] if start else chunk)

    def end(self) -> bytes | LongLine:
        """What follows the last line break (b"" when the body ended with one)."""
        return self._line(b"")

    def _add(self, piece: bytes) -> None:
        before = self._size
        self._size += len(piece)
        if self._cap is None or self._size <= self._cap:
            self._pending.append(piece)
        elif before <= self._cap:  # the line just passed its cap: its start is all that is kept of it
            self._pending = [b"".join([*self._pending, piece[:HEAD]])[:HEAD]]

    def _line(self, tail: bytes) -> bytes | LongLine:
        self._add(tail)
        pending, total = self._pending, self._size
        self._pending, self._size = [], 0
        if self._cap is not None and total > self._cap:
            return LongLine(pending[0][:HEAD] if pending else b"", total)
        return pending[0] if len(pending) == 1 else b"".join(pending)


def decode(body: bytes, encoding: str, cap: int) -> bytes:
    """The body as sent before a Content-Encoding (none is asked for, but a gateway may use one),
    as aiohttp decodes it: an empty body as it is, an unknown coding passed on, br and zstd refused
    (aiohttp needs packages batchgpt does not install for them). Decoded a step at a time:
    TooLarge as soon as the decoded body passes `cap`; zlib.error, EOFError or ValueError for a
    body that is not in its coding."""
    encoding = encoding.strip().lower()
    if not body or encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "x-gzip"):
        return _inflate(body, 16 + zlib.MAX_WBITS, cap, members=True)
    if encoding == "deflate":
        try:
            return _inflate(body, zlib.MAX_WBITS, cap)
        except zlib.error:  # some servers send deflate without its zlib header
            return _inflate(body, -zlib.MAX_WBITS, cap)
    if encoding in ("br", "zstd"):
        raise ValueError(f"Content-Encoding {encoding!r}")
    return body


def _inflate(data: bytes, wbits: int, cap: int, members: bool = False) -> bytes:
    """zlib-decode `data`, given to the decoder FEED bytes at a time and taken from it STEP bytes at
    a time, so that no step copies more than those (the decoder copies what it has not used yet);
    with `members`, every gzip member in turn, as a multi-member gzip stream holds several."""
    out: list[bytes] = []
    total, count = 0, 1
    view = memoryview(data)
    pending: bytes | memoryview = view[:FEED]
    offset = FEED
    decoder = zlib.decompressobj(wbits)
    while True:
        room = min(STEP, cap + 1 - total)
        piece = decoder.decompress(pending, room)
        total += len(piece)
        if total > cap:
            raise TooLarge(cap)
        out.append(piece)
        pending = decoder.unconsumed_tail
        if decoder.eof:
            pending = decoder.unused_data
            if not members or _zeros(pending, data, offset):  # trailing zeros, as gzip.decompress allows
                return b"".join(out)
            count += 1
            if count > MAX_MEMBERS:
                raise ValueError(f"more than {MAX_MEMBERS} gzip members")
            decoder = zlib.decompressobj(wbits)
        elif not pending and len(piece) < room:  # all it was given is decoded: it needs more
            if offset >= len(data):
                raise EOFError("the compressed body ends before its end-of-stream marker")
            pending, offset = view[offset : offset + FEED], offset + FEED


def _zeros(pending: bytes, data: bytes, offset: int) -> bool:
    """Whether nothing but zero bytes is left of `data`, which the decoder holds from `pending` on."""
    return pending.count(0) == len(pending) and data.count(0, offset) == max(0, len(data) - offset)


@dataclass(frozen=True)
class Cut:
    """A download that stopped at its cap: what was written before it is whole lines."""

    cap: int
    setting: str = FILE_SETTING

    def describe(self) -> str:
        return f"larger than {self.setting} ({size(self.cap)})"
