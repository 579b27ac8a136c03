"""Files a job attaches to a prompt (images, documents, audio): what each is, and how its bytes
reach a request's body.

A request's payload is built and hashed long before it is sent, and a job may attach a million
photos: so a payload never holds a local file's bytes. Where the API wants a file's base64 (a
`data:` URL's tail, `file_data`'s, `input_audio.data`), the payload holds a marker naming the
attachment by its place in `Request.attachments`, and the sender replaces each marker by the
file's base64 as it writes the body (encoded.py). The marker is JSON-escaped NULs around a number:
no job text can hold it, since job files with NUL bytes are refused.

Invariants:
- `sent_size(payload, attachments)` is the exact length of the body encoded.Body yields, so the
  body goes out with a Content-Length and is never assembled whole.
- A request's hash covers each local attachment's `digest` (its bytes'), so a changed photo is
  sent again and an unchanged one never is.
- URLs (`https:`, `data:`) are sent as written and never fetched.
- A file found not to be its attachment's size as it is read is `Changed`, raised before the
  body's end: a body is never completed with other bytes than its length says (encoded.py checks
  each file before its body starts, and keeps the encodings of files used again).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

KINDS = ("image", "file", "audio")
MARK = re.compile(rb"\\u0000batchgpt:(\d+)\\u0000")
_CHUNK = 3 << 18  # 768 KiB read at a time: a multiple of 3, so each chunk's base64 stands alone


def marker(index: int) -> str:
    """What a body holds (as a JSON string's text) in place of attachment `index`'s base64."""
    return f"\0batchgpt:{index}\0"


@dataclass(frozen=True)
class Attachment:
    """One attached input, as the job names it and as far as its headers say what it is."""

    kind: str  # one of KINDS
    source: str  # an absolute local path, or a URL (https:, http:, data:) as written
    mime: str = ""  # image/png, application/pdf, audio/wav...: what the data URL says
    detail: str | None = None  # images: low, high or auto
    size: int | None = None  # a local file's bytes
    width: int | None = None  # an image's, when its header or the data URL's says
    height: int | None = None
    pages: int | None = None  # a PDF's, counted (approximate)
    seconds: float | None = None  # an audio file's length
    digest: str = ""  # a local file's bytes' hash; a URL's is its text

    @property
    def local(self) -> bool:
        return not self.source.startswith(("http://", "https://", "data:"))

    @property
    def name(self) -> str:
        """The file name the API is told (`file.filename`)."""
        return Path(self.source).name if self.local else self.source.rsplit("/", 1)[-1][:200]

    def encoded_size(self) -> int:
        """How many base64 characters the file's bytes become (0 for a URL, sent as written)."""
        return 0 if not self.local or self.size is None else base64_size(self.size)


def base64_size(size: int) -> int:
    """How many characters base64 makes of `size` bytes (padded)."""
    return 4 * ((size + 2) // 3)


def sent_size(payload: bytes, attachments: Sequence[Attachment]) -> int:
    """The length of the body the payload makes with its marked files inline (encoded.Body's)."""
    size = len(payload)
    for match in MARK.finditer(payload):
        size += attachments[int(match.group(1))].encoded_size() - len(match.group(0))
    return size


class Changed(Exception):
    """A local file is not what it was when the job was checked (its size differs, or it is gone):
    a body holding it would not be the length announced, nor the bytes the request's hash names."""


def base64_chunks(path: str, size: int | None) -> Iterator[bytes]:
    """A file's base64, a chunk at a time; Changed as soon as the file is found not to hold `size`
    bytes (None: as many as it holds), so no body built from it is sent whole with a wrong length."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 (held across the chunks this generator yields)
    except OSError as exc:
        raise Changed(f"{path}: gone since it was checked ({exc.strerror or exc})") from None
    read = 0
    with handle:
        while chunk := handle.read(_CHUNK):
            read += len(chunk)
            if size is not None and read > size:
                raise Changed(f"{path}: changed since it was checked (now larger than its {size:,} bytes)")
            yield base64.b64encode(chunk)
    if size is not None and read != size:
        raise Changed(f"{path}: changed since it was checked ({read:,} bytes, not {size:,})")
