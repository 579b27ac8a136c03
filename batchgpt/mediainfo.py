"""What an input file is, read from its first bytes: an image's format and size, a PDF's pages.

A job attaching ten thousand photos must be checked and priced before anything is sent, in
seconds: so nothing here decodes pixels or parses a whole document. An image's width and height
come from its header (PNG's IHDR, a JPEG's first frame marker, GIF's screen descriptor, WebP's
VP8/VP8L/VP8X chunk); a PDF's pages are counted by its page objects, which a scan of its bytes
finds whatever its layout, and that count is said to be approximate. The test server reads
images with these same functions, so what it bills and what the dry run counts agree.
"""

from __future__ import annotations

import mmap
import re
from dataclasses import dataclass
from pathlib import Path

IMAGE_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}
# A JPEG's frame marker follows its metadata and an animated GIF's loop block its colour table:
# 64 KiB holds either for nearly any file.
_HEAD = 1 << 16
_JPEG_FRAMES = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")


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
        return _jpeg(head)
    if head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
        size = int.from_bytes(head[6:8], "little"), int.from_bytes(head[8:10], "little")
        return ImageInfo("gif", *size, animated=b"NETSCAPE2.0" in head[:_HEAD])
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _webp(head)
    return None


def read_image(path: Path) -> ImageInfo | None:
    """`image_info` of a file, reading only its head (a JPEG whose metadata outgrows it, mapped)."""
    with path.open("rb") as handle:
        head = handle.read(_HEAD)
        found = image_info(head)
        if found is None and head[:3] == b"\xff\xd8\xff" and len(head) == _HEAD:
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return _jpeg(data)
        return found


def pdf_pages(path: Path) -> int | None:
    """How many pages a PDF has, counted by its `/Type /Page` objects; None if it is no PDF. An
    approximation: pages kept in compressed object streams are not seen, so callers also bound by
    size."""
    with path.open("rb") as handle:
        if handle.read(5) != b"%PDF-":
            return None
        if path.stat().st_size == 5:
            return 0
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return sum(1 for _ in _PAGE.finditer(data))


def _jpeg(head: bytes | mmap.mmap) -> ImageInfo | None:
    at = 2
    while at + 9 < len(head):
        if head[at] != 0xFF:
            return None
        marker = head[at + 1]
        if marker == 0xFF:  # fill bytes may pad a marker
            at += 1
            continue
        if marker in _JPEG_FRAMES:
            height, width = int.from_bytes(head[at + 5 : at + 7], "big"), int.from_bytes(head[at + 7 : at + 9], "big")
            return ImageInfo("jpeg", width, height)
        if 0xD0 <= marker <= 0xD9 or marker == 0x01:  # markers without a length
            at += 2
            continue
        at += 2 + int.from_bytes(head[at + 2 : at + 4], "big")
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
