"""What an input file is, read from its first bytes: an image's format and size, a PDF's pages.

A job attaching ten thousand photos must be checked and priced before anything is sent, in
seconds: so nothing here decodes pixels or parses a whole document. An image's width and height
come from its header (PNG's IHDR, a JPEG's first frame marker, GIF's screen descriptor, WebP's
VP8/VP8L/VP8X chunk), and a file's first 4 KiB hold nearly all of these (a JPEG with more
metadata is walked segment by segment, never read whole); a PDF's pages are counted by its page
objects, found by a scan of its bytes and of its compressed object streams whatever its layout,
and that count is said to be approximate. The test server reads
images with these same functions, so what it bills and what the dry run counts agree.
"""

from __future__ import annotations

import mmap
import os
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

IMAGE_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}
# An animated GIF's loop block follows its colour table (and any comments): 64 KiB holds it in
# nearly any file.
_HEAD = 1 << 16
_FIRST = 4096  # what read_image reads first: one page, as cheap to read as 24 bytes
_JPEG_FRAMES = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_MOST_SEGMENTS = 4096  # a JPEG's segments before its frame: a few dozen in any real file
_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")
_OBJECT_STREAM = re.compile(rb"/Type\s*/ObjStm(?![a-zA-Z])")
_MOST_INFLATED = 64 << 20


@dataclass(frozen=True)
class ImageInfo:
    format: str  # a key of IMAGE_TYPES
    width: int
    height: int
    animated: bool = False  # an animated GIF, which the API refuses

    @property
    def mime(self) -> str:
        return IMAGE_TYPES[self.format]


def image_info(head: bytes) -> ImageInfo | None:
    """An image's format and size from its first bytes (`head`); None if it is no image the API
    takes or its header is cut short."""
    if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) >= 24:
        return ImageInfo("png", int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big"))
    if head[:3] == b"\xff\xd8\xff":
        return _jpeg(lambda at, n: head[at : at + n])
    if head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
        size = int.from_bytes(head[6:8], "little"), int.from_bytes(head[8:10], "little")
        return ImageInfo("gif", *size, animated=b"NETSCAPE2.0" in head[:_HEAD])
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _webp(head)
    return None


def read_image(path: str | os.PathLike[str]) -> ImageInfo | None:
    """`image_info` of a file, reading only its header: its first 4 KiB (a PNG's size is in its
    first 24 bytes, a JPEG's frame marker usually within a few KB), then, for a JPEG whose
    metadata outgrows them, each later segment's first bytes where its length says it starts."""
    fd = os.open(path, os.O_RDONLY)
    try:
        head = os.read(fd, _FIRST)
        if head[:3] == b"\xff\xd8\xff" and len(head) == _FIRST:
            return _jpeg(lambda at, n: head[at : at + n] if at + n <= len(head) else os.pread(fd, n, at))
        if head[:6] in (b"GIF87a", b"GIF89a") and len(head) == _FIRST and b"NETSCAPE2.0" not in head:
            head += os.read(fd, _HEAD - _FIRST)  # its loop block may follow a colour table and comments
        return image_info(head)
    finally:
        os.close(fd)


def pdf_pages(path: Path) -> int | None:
    """How many pages a PDF has, counted by its `/Type /Page` objects, those packed in compressed
    object streams (PDF 1.5's) included; None if it is no PDF, or its object streams inflate past
    64 MB (no real document's do). An approximation, high where the file keeps old versions of
    its pages (an incremental update appends new ones), so a bound for what the API reads."""
    with path.open("rb") as handle:
        if handle.read(5) != b"%PDF-":
            return None
        if path.stat().st_size == 5:
            return 0
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return pages_in(data)


def pages_in(data: bytes | mmap.mmap) -> int | None:
    """`pdf_pages` of a PDF's bytes."""
    packed = _packed_pages(data)
    return None if packed is None else packed + sum(1 for _ in _PAGE.finditer(data))


def _packed_pages(data: bytes | mmap.mmap) -> int | None:
    """The page objects in a PDF's object streams, each inflated (writers compress them with
    FlateDecode) and scanned; None past _MOST_INFLATED bytes."""
    pages, left = 0, _MOST_INFLATED
    for match in _OBJECT_STREAM.finditer(data):
        start = data.find(b"stream", match.end())
        if start < 0:
            break
        start += 6
        start += 2 if data[start : start + 2] == b"\r\n" else 1
        end = data.find(b"endstream", start)
        try:
            text = zlib.decompressobj().decompress(data[start : end if end >= 0 else len(data)], left)
        except zlib.error:  # not deflated (its pages are in the file's own bytes) or broken
            continue
        left -= len(text)
        if left <= 0:
            return None
        pages += sum(1 for _ in _PAGE.finditer(text))
    return pages


def _jpeg(fetch: Callable[[int, int], bytes]) -> ImageInfo | None:
    """A JPEG's size from its first frame marker, walking its segments from the start; `fetch(at,
    n)` gives the file's bytes at `at` (fewer at its end), so a reader need not hold the segments
    it skips."""
    at = 2
    for _ in range(_MOST_SEGMENTS):
        segment = fetch(at, 9)
        if len(segment) < 4 or segment[0] != 0xFF:
            return None
        marker = segment[1]
        if marker == 0xFF:  # fill bytes may pad a marker
            at += 1
            continue
        if marker in _JPEG_FRAMES:
            if len(segment) < 9:
                return None
            return ImageInfo("jpeg", int.from_bytes(segment[7:9], "big"), int.from_bytes(segment[5:7], "big"))
        if 0xD0 <= marker <= 0xD9 or marker == 0x01:  # markers without a length
            at += 2
            continue
        at += 2 + int.from_bytes(segment[2:4], "big")
    return None


def _webp(head: bytes) -> ImageInfo | None:
    chunk = head[12:16]
    if chunk == b"VP8 " and len(head) >= 30:
        return ImageInfo(
            "webp", int.from_bytes(head[26:28], "little") & 0x3FFF, int.from_bytes(head[28:30], "little") & 0x3FFF
        )
    if chunk == b"VP8L" and len(head) >= 25:
        bits = int.from_bytes(head[21:25], "little")
        return ImageInfo("webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X" and len(head) >= 30:
        width = int.from_bytes(head[24:27], "little") + 1
        return ImageInfo("webp", width, int.from_bytes(head[27:30], "little") + 1, animated=bool(head[20] & 0x02))
    return None
