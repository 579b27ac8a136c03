"""What a request's attachments add to its prompt before it is sent: the one count (`tokens`) the
dry run, a budget's worst case and the cost-truth checks share.

Each attachment is counted from what its headers said (attachments.Attachment), never from its
pixels or its text, high wherever the bill cannot be known:
- an image by its model's formula (vision.image_tokens) at its size and detail, `auto` as high
  (the shared API facts, section 14); an image whose size is unknown (a URL, a header that could
  not be read) at the most its model counts one (vision.most_tokens), and said so;
- a PDF as the API reads one (section 14): each page's text and an image of the page. No rule
  says how much text a page holds, so each counts PAGE_TEXT_TOKENS, about what 6-point print
  fills a Letter page with, and its image the most its model counts one (the size the API
  renders a page at is not published). Pages not counted are the API's most, 100 a request;
  approximate, so a budget keeps its margin on the text;
- any other document (the Responses API reads its text): a text file's bytes (a token holds at
  least one), any other as 100 pages of text; approximate;
- audio from its length, at 10 tokens a second plus half (unitprices), priced as audio; a
  recording whose length its headers do not say is bounded by its size, and said so.
"""

from __future__ import annotations

import base64
import binascii
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import audio as recordings
from .attachments import Attachment
from .mediainfo import image_info
from .unitprices import AUDIO_MARGIN, HEARD_TOKENS_PER_S
from .vision import formula, image_tokens, most_tokens

# A page's text: 6-point print (legal notices, the smallest in common use) fills a Letter page
# with some 16,000 characters, 4,000 tokens of English at o200k's 4 characters a token; a dense
# 10-point page holds about 1,400 tokens, a dense CJK page (a token a character) about 3,000.
PAGE_TEXT_TOKENS = 4_000
MAX_FILE_PAGES = 100  # the API reads at most 100 PDF pages a request (the API facts, section 14)
# A page is an object of its own: even deflated among a hundred like it in an object stream, it
# takes a few bytes, so a file of a few hundred bytes cannot hold 100 pages.
LEAST_PAGE_BYTES = 4
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/x-yaml", "application/csv")
UNSIZED = "images of unknown size (a URL, an unreadable header) counted at the most their model counts one"
PDF_PAGES = (
    f"PDF pages approximate: each counted as {PAGE_TEXT_TOKENS:,} tokens of text and a page image at "
    "the most its model counts one"
)
PAGES_UNKNOWN = f"PDFs whose pages could not be counted taken as {MAX_FILE_PAGES} pages, the most the API reads"
DOCUMENT = f"documents counted at the most text they hold: a text file's bytes, any other {MAX_FILE_PAGES} pages"
TEXT_PARTS = ("text", "input_text")
_NESTED = {"image_url": "image_url", "file": "file", "input_audio": "input_audio"}  # chat's parts nest their file
_HELD = ("url", "image_url", "file_data", "file_url", "data")  # where a part names its file
_MARK = "\0batchgpt:"  # attachments.marker's text: a part holding it is an attachment's
_HEAD_CHARS = tuple(4 * (n // 3 + 1) for n in (1 << 12, 1 << 16))  # base64 of a data URL's first 4 and 64 KiB


@dataclass(frozen=True)
class Tokens:
    """Prompt tokens attachments add, by how they are priced and bounded: `seen` at the text input
    price and a bound already (image formulas), `read` at the text input price and an estimate
    (a budget keeps its margin for it), `heard` at the audio input price; `notes` say what is
    approximate (none: exact)."""

    seen: int = 0
    read: int = 0
    heard: int = 0
    notes: tuple[str, ...] = ()

    def __add__(self, other: Tokens) -> Tokens:
        notes = self.notes if not other.notes else tuple(dict.fromkeys(self.notes + other.notes))
        return Tokens(self.seen + other.seen, self.read + other.read, self.heard + other.heard, notes)

    def times(self, n: int) -> Tokens:
        return Tokens(self.seen * n, self.read * n, self.heard * n, self.notes)


NONE = Tokens()


def total(model: str, attachments: Sequence[Attachment]) -> Tokens:
    """What all of a request's attachments add to its prompt on `model`."""
    if len(attachments) == 1:  # most requests: one photo, one document
        return tokens(model, attachments[0])
    counted = NONE
    for attachment in attachments:
        counted += tokens(model, attachment)
    return counted


def tokens(model: str, attachment: Attachment) -> Tokens:
    """What one attachment adds to a prompt on `model`, at most (see the module's docstring)."""
    if attachment.kind == "image":
        return _image(model, attachment)
    if attachment.kind == "audio":
        return _audio(attachment)
    if _is_pdf(attachment):
        return pdf_tokens(model, _pages(attachment), attachment.detail)
    return _document(attachment)


def pdf_tokens(model: str, pages: int | None, detail: str | None) -> Tokens:
    """A PDF of `pages` pages (None: not counted), each its text and an image of it."""
    notes = (PDF_PAGES,) if pages is not None else (PDF_PAGES, PAGES_UNKNOWN)
    read = MAX_FILE_PAGES if pages is None else min(pages, MAX_FILE_PAGES)
    return Tokens(read * most_tokens(model, detail), read * PAGE_TEXT_TOKENS, 0, notes)


def _image(model: str, attachment: Attachment) -> Tokens:
    size = (attachment.width, attachment.height)
    if size[0] is None or size[1] is None:
        size = _data_url_size(attachment.source)
    if size[0] is not None and size[1] is not None:
        return _sized(model, size[0], size[1], attachment.detail)
    kind, _, _ = formula(model)
    exact = kind == "tile" and attachment.detail == "low"  # low detail costs the same at any size
    return Tokens(most_tokens(model, attachment.detail), notes=() if exact else (UNSIZED,))


@functools.lru_cache(maxsize=4096)
def _sized(model: str, width: int, height: int, detail: str | None) -> Tokens:
    """An image's count, kept: a job's photos come in a few sizes (a camera's, a phone's)."""
    return Tokens(image_tokens(model, width, height, detail))


def _data_url_size(source: str) -> tuple[int | None, int | None]:
    """An image data URL's size, from the header its first bytes hold."""
    if not source.startswith("data:"):
        return None, None
    start = source.find(",") + 1
    found = None
    for chars in _HEAD_CHARS:  # a page first, as read_image reads a file; more for a JPEG's metadata
        try:
            found = image_info(base64.b64decode(source[start : start + chars]))
        except (binascii.Error, ValueError):
            return None, None
        if found is not None or len(source) - start <= chars:
            break
    return (None, None) if found is None else (found.width, found.height)


def _audio(attachment: Attachment) -> Tokens:
    seconds, note = attachment.seconds, None
    if seconds is None:
        size = _size(attachment)
        seconds, note = (0.0 if size is None else size / recordings.LOWEST_BYTES_PER_S), recordings.BOUNDED
    heard = math.ceil(seconds * HEARD_TOKENS_PER_S * AUDIO_MARGIN)
    return Tokens(heard=heard, notes=() if note is None else (note,))


def _is_pdf(attachment: Attachment) -> bool:
    source = attachment.source
    return (
        attachment.mime == "application/pdf"
        or source.startswith("data:application/pdf")
        or source.rsplit("?", 1)[0].lower().endswith(".pdf")
    )


def _pages(attachment: Attachment) -> int | None:
    """A PDF's pages as counted, else, for a file whose size is known, as many as it can hold."""
    if attachment.pages is not None:
        return attachment.pages
    size = _size(attachment)
    return None if size is None or size >= MAX_FILE_PAGES * LEAST_PAGE_BYTES else max(1, size // LEAST_PAGE_BYTES)


def _document(attachment: Attachment) -> Tokens:
    size = _size(attachment)
    text = attachment.mime.startswith(TEXT_TYPES) or attachment.source.startswith(
        ("data:text/", "data:application/json")
    )
    read = size if text and size is not None else MAX_FILE_PAGES * PAGE_TEXT_TOKENS
    return Tokens(read=read, notes=(DOCUMENT,))


def _size(attachment: Attachment) -> int | None:
    """A file's bytes: as the attachment says, a data URL's by its base64, a local file's on disk."""
    if attachment.size is not None:
        return attachment.size
    if attachment.source.startswith("data:"):
        return len(attachment.source.partition(",")[2]) * 3 // 4
    if attachment.local:
        try:
            return Path(attachment.source).stat().st_size
        except OSError:
            return None
    return None


def unattached(body: Mapping[str, Any], attachments: Sequence[Attachment]) -> Mapping[str, Any]:
    """The body without its attachments' parts (each holds a marker where a file's base64 goes, or
    a URL an attachment names), which `total` counts: what is left is counted as any body is. A
    message left with text parts alone has them joined into one string, as tokens.py counts
    them, so a captioning request's body is plain text again and counted as quickly."""
    key = "messages" if "messages" in body else "input"
    messages = body.get(key)
    if type(messages) is not list:
        return body
    urls = {a.source for a in attachments if not a.local}
    kept: list[Any] = []
    for message in messages:
        if type(message) is dict or isinstance(message, Mapping):
            if "content" not in message and _refers(message, urls):  # a Responses input that is a part
                continue
            content = message.get("content")
            if type(content) is list:
                message = {**message, "content": _left(content, urls)}
        kept.append(message)
    return {**body, key: kept}


def _left(content: list[Any], urls: set[str]) -> list[Any] | str:
    """A message's parts but those of attachments; its text alone when nothing else is left."""
    left, texts = [], []
    for part in content:
        if type(part) is dict and part.get("type") in TEXT_PARTS and type(part.get("text")) is str:
            texts.append(part["text"])
        elif _refers(part, urls):
            continue
        left.append(part)
    return "".join(texts) if len(texts) == len(left) else left


def _refers(part: Any, urls: set[str]) -> bool:
    """Whether a part holds an attachment's marker or names an attachment's URL, where each
    kind of part holds its file: chat nests it (`image_url.url`, `file.file_data`,
    `input_audio.data`), the Responses API does not (`image_url`, `file_data`, `file_url`)."""
    if type(part) is not dict and not isinstance(part, Mapping):
        return False
    kind = part.get("type")
    nested = _NESTED.get(kind) if type(kind) is str else None
    holder = part.get(nested) if nested else part
    if type(holder) is str:  # `image_url` as a bare URL, as some clients write it
        return _MARK in holder or holder in urls
    if type(holder) is not dict and not isinstance(holder, Mapping):
        return False
    for key in _HELD:
        value = holder.get(key)
        if type(value) is str and (_MARK in value or value in urls):
            return True
    return False
