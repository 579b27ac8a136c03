"""Attached files on their way into a body: each checked against what the job's check saw before
the body starts, streamed as base64 a chunk at a time, and kept encoded when used again.

A body with attachments (attachments.py) is never assembled whole: a 20 MB photo would be held as
its bytes, their base64, the joined body and the transport's copy of it. `Encodings.body` stats
every marked file first (one gone or resized is `Changed`, and nothing is sent: a wrong
Content-Length would hang the server or cut the body) and gives a `Body` of known size whose
`chunks` read each file afresh, once per call, so once per attempt.

The same file attached to many items (a task's reference image, a logo) is encoded for its first
item and kept when a second item uses it; from then on it is served from memory. A file one item
uses is never kept, however often that item is tried: each attempt reads it afresh. What is kept
is bounded (BUDGET bytes of base64, least recently used dropped first; no single file above
ENTRY) and keyed by the file's path, size, modification time and inode, so a file changed on
disk is read afresh and its old encoding is never served again.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from .attachments import MARK, Attachment, Changed, base64_chunks, base64_size

MIB = 2**20
BUDGET = 256 * MIB  # base64 kept in all: a job's shared files, not its photos one by one
ENTRY = BUDGET // 4  # the most one file may keep, so one large file cannot push out all others
SIGHTINGS = 1 << 16  # files remembered as used by one item, waiting for a second

Key = tuple[str, int, int, int]  # path, size, mtime_ns, inode: another file, or the same file changed


@dataclass(frozen=True)
class _File:
    path: str
    size: int
    key: Key

    @property
    def encoded(self) -> int:
        return base64_size(self.size)


@dataclass
class Encodings:
    """Base64 of files used more than once, least recently used dropped past `budget` bytes."""

    budget: int = BUDGET
    entry: int = ENTRY
    sightings: int = SIGHTINGS
    hits: int = 0  # markers served from memory
    encodes: int = 0  # files read and encoded
    kept: int = 0  # bytes of base64 held
    _kept: OrderedDict[Key, tuple[bytes, ...]] = field(default_factory=OrderedDict, repr=False)
    _seen: OrderedDict[Key, str] = field(default_factory=OrderedDict, repr=False)  # the item that used it

    def body(self, payload: bytes, attachments: Sequence[Attachment], item: str = "") -> Body:
        """The body `payload` makes with its marked files, for `item` (its id): Changed if a file
        is gone or resized."""
        spans: list[tuple[int, int, _File]] = []
        files: dict[int, _File] = {}
        size = len(payload)
        for match in MARK.finditer(payload):
            index = int(match.group(1))
            if index not in files:
                files[index] = _checked(attachments[index])
            spans.append((match.start(), match.end(), files[index]))
            size += files[index].encoded - (match.end() - match.start())
        return Body(payload, tuple(spans), size, self, item)

    def stream(self, file: _File, item: str) -> Iterator[bytes]:
        """A file's base64: from memory when kept, else read from disk (and kept if seen before)."""
        kept = self._kept.get(file.key)
        if kept is not None:
            self._kept.move_to_end(file.key)
            self.hits += 1
            yield from kept
            return
        keep = self._seen.get(file.key, item) != item and file.encoded <= min(self.entry, self.budget)
        self._sighted(file.key, item)
        self.encodes += 1
        parts: list[bytes] = []
        for chunk in base64_chunks(file.path, file.size):
            if keep:
                parts.append(chunk)
            yield chunk
        if keep:
            self._keep(file.key, tuple(parts))

    def _sighted(self, key: Key, item: str) -> None:
        self._seen[key] = item
        self._seen.move_to_end(key)
        while len(self._seen) > self.sightings:
            self._seen.popitem(last=False)

    def _keep(self, key: Key, parts: tuple[bytes, ...]) -> None:
        if key in self._kept:  # another body kept it meanwhile
            return
        self._kept[key] = parts
        self.kept += sum(map(len, parts))
        while self.kept > self.budget:
            _, dropped = self._kept.popitem(last=False)
            self.kept -= sum(map(len, dropped))


@dataclass(frozen=True)
class Body:
    """A request's body with its files' base64 in place of their markers, `size` bytes long."""

    payload: bytes = field(repr=False)
    spans: tuple[tuple[int, int, _File], ...] = field(repr=False)
    size: int
    encodings: Encodings = field(repr=False)
    item: str = ""

    def chunks(self) -> Iterator[bytes]:
        """The body in pieces, each file read afresh (or served kept): Changed part way if a file
        changes while it is read."""
        at = 0
        for start, end, file in self.spans:
            if start > at:
                yield self.payload[at:start]
            yield from self.encodings.stream(file, self.item)
            at = end
        if at < len(self.payload):
            yield self.payload[at:]


def _checked(attachment: Attachment) -> _File:
    """A marked file as it is now: Changed if it is gone, or not the size the job's check saw."""
    path = attachment.source
    if not attachment.local:
        raise ValueError(f"a marker names {path!r}, which is sent as written, not read")
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise Changed(f"{path}: gone since it was checked ({exc.strerror or exc})") from None
    if attachment.size is not None and stat.st_size != attachment.size:
        raise Changed(f"{path}: changed since it was checked ({stat.st_size:,} bytes, not {attachment.size:,})")
    return _File(path, stat.st_size, (path, stat.st_size, stat.st_mtime_ns, stat.st_ino))
