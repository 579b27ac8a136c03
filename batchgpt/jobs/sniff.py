"""What an attached file is, by its first bytes (never its name): an image, a PDF, a recording, a
document; and its measures (an image's size, a PDF's pages, a recording's length).

A job may attach a hundred thousand photos, checked before every run and priced by the dry run:
so an image is known by its header alone (mediainfo), and nothing here reads a file whole but a
PDF, whose pages are counted by a scan (mediainfo.pdf_pages), and an MP3 without a length header.
A name only tells apart documents whose bytes do not (a .docx from an .xlsx, both ZIP files; a
.csv from a .txt, both text).
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from batchgpt.audio import file_minutes
from batchgpt.mediainfo import ImageInfo, image_info, pdf_pages, read_image

from .charsets import guess

_HEAD = 4096
PDF = "application/pdf"
WAV, MP3 = "audio/wav", "audio/mpeg"
# What the Responses API takes as input_file beside PDFs ("File inputs" guide): text and code,
# known by being UTF-8 text and named by their suffix, and Office documents, known as ZIP files
# by the part each holds.
TEXT_TYPES = {
    ".csv": "text/csv",
    ".tsv": "text/tab-separated-values",
    ".md": "text/markdown",
    ".json": "application/json",
    ".html": "text/html",
    ".htm": "text/html",
    ".xml": "application/xml",
}
OFFICE_TYPES = {
    "word/document.xml": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "ppt/presentation.xml": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "xl/workbook.xml": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
DOCUMENT_TYPES = frozenset({PDF, "text/plain", *TEXT_TYPES.values(), *OFFICE_TYPES.values()})


@dataclass(frozen=True)
class Sniffed:
    """What a file's bytes say it is: its kind (image, file, audio; "" for none the API takes),
    its MIME type and its measures where its kind has them."""

    kind: str
    mime: str
    what: str  # in words, for messages: "a PNG image", "a PDF", "an MP3 recording"
    image: ImageInfo | None = None
    pages: int | None = None
    seconds: float | None = None


UNKNOWN = Sniffed("", "", "a file of a type no endpoint takes")


def sniff_head(head: bytes) -> Sniffed:
    """The kind and type of bytes that begin with `head` (a data: URL's decoded start), without
    the measures a whole file gives."""
    info = image_info(head)
    if info is not None:
        return Sniffed("image", info.mime, f"a {info.format.upper()} image", image=info)
    if head.startswith(b"%PDF-"):
        return Sniffed("file", PDF, "a PDF")
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return Sniffed("audio", WAV, "a WAV recording")
    if _mp3(head):
        return Sniffed("audio", MP3, "an MP3 recording")
    return UNKNOWN


def sniff_file(name: str) -> Sniffed:
    """What the file at `name` is, with its measures; raises OSError when it cannot be read."""
    handle = os.open(name, os.O_RDONLY)  # not open(): a file object costs more than the read
    try:
        head = os.read(handle, _HEAD)
    finally:
        os.close(handle)
    found = sniff_head(head)
    if found.kind == "image" and found.mime != "image/gif":
        return found  # PNG, WEBP and most JPEGs: their heads say it all (the test 100,000 photos pay)
    path = Path(name)
    if found.kind == "image" or not found.kind and head[:3] == b"\xff\xd8\xff":
        # a GIF's loop block may follow its colour table past the head, a JPEG's frame its metadata
        info = read_image(path)
        return Sniffed("image", info.mime, f"a {info.format.upper()} image", image=info) if info else UNKNOWN
    if found.mime == PDF:
        return Sniffed(found.kind, PDF, found.what, pages=pdf_pages(path))
    if found.kind == "audio":
        minutes, _ = file_minutes(path)  # a bound when the headers do not say: never below the bill
        return Sniffed(found.kind, found.mime, found.what, seconds=None if minutes is None else minutes * 60)
    return found if found.kind else _document(path, head)


def _document(path: Path, head: bytes) -> Sniffed:
    """A document the Responses API reads as text: an Office file, or text by its suffix."""
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as archive:  # reads the directory at the file's end only
                names = set(archive.namelist())
        except (zipfile.BadZipFile, OSError, ValueError):
            return UNKNOWN
        for part, mime in OFFICE_TYPES.items():
            if part in names:
                return Sniffed("file", mime, f"a {path.suffix.lstrip('.').upper() or 'Office'} document")
        return Sniffed("", "application/zip", "a ZIP archive")
    if _text(head):
        return Sniffed("file", TEXT_TYPES.get(path.suffix.lower(), "text/plain"), "a text file")
    return _not_utf8(path, head)


def _not_utf8(path: Path, head: bytes) -> Sniffed:
    """A text file by its name whose bytes are text in another encoding (GBK, Windows-1252): said
    so, as the API reads attached text as UTF-8; else UNKNOWN."""
    guesses = guess(head) if path.suffix.lower() in (*TEXT_TYPES, ".txt") and b"\0" not in head else []
    if not guesses:
        return UNKNOWN
    return Sniffed("", "", f"text not in UTF-8 (it reads as {guesses[0].label}; save it as UTF-8)")


def _text(head: bytes) -> bool:
    if b"\0" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:  # a character cut at the head's end is still text
        return len(head) == _HEAD and exc.start >= len(head) - 3
    return True


def _mp3(head: bytes) -> bool:
    """An ID3 tag, or an MPEG audio frame header (its sync bits, a version and layer III)."""
    if head[:3] == b"ID3":
        return True
    if len(head) < 4:
        return False
    header = int.from_bytes(head[:4], "big")
    return (
        header >> 21 == 0x7FF and header >> 19 & 3 != 1 and header >> 17 & 3 == 1 and header >> 12 & 15 not in (0, 15)
    )
