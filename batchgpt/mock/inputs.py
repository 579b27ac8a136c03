"""The media parts of a request the mock reads: images, files and audio in chat messages
(`image_url`, `file`, `input_audio`) and in the Responses API's input (`input_image`,
`input_file`), decoded, checked as the API checks them and summed up as `Media`, which the bill
(bill.py) and the answer's text (chat.py) are made from.

The checks, in the API's words where they are known (the shared API facts, section 14): a data
URL that is no base64, is empty or has the wrong MIME type is a 400 `invalid_value` whose `param`
names it; an image that is no PNG, JPEG, WEBP or still GIF is a 400 `invalid_image_format`; chat's
`file` takes PDFs only and no `file_url`; `input_audio` is WAV or MP3 that can be read. A request
holds at most 500 images of 50 MiB in all, and at most 100 PDF pages of 32 MiB in all.

URLs (`http(s)`, and a `file_id`) are taken as written and never fetched: their Media says so.
Each part is decoded once per request however often it is read (validation, the rate limit's
estimate, the bill, the answer): what a part's data came to is kept by the identity of its string
(held, so that the identity is not reused), for the last MEMO_ENTRIES parts up to MEMO_CHARS.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from batchgpt.audio import seconds_of
from batchgpt.mediainfo import image_info

from .fields import Problem, bad, invalid_value

MOST_IMAGES = 500
MOST_IMAGE_BYTES = 50 * 2**20
MOST_PAGES = 100
MOST_FILE_BYTES = 32 * 2**20
DETAILS = ("low", "high", "auto")
AUDIO_FORMATS = ("wav", "mp3")
MEDIA_PARTS = ("image_url", "file", "input_audio", "input_image", "input_file")
MEMO_ENTRIES = 1024
MEMO_CHARS = 256 * 2**20
_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")
_DATA_URL = re.compile(r"data:([^;,]*)((?:;[^;,]*)*),", re.ASCII)
_IMAGE_EXAMPLE = "'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU='"
_PDF_EXAMPLE = "'data:application/pdf;base64,SGVsbG8sIFdvcmxkIQ=='"
_FILE_EXAMPLE = "'data:text/plain;base64,SGVsbG8sIFdvcmxkIQ=='"


@dataclass(frozen=True)
class Media:
    """One media part as the mock read it."""

    kind: str  # image, pdf, file (any other document) or audio
    url: str | None = None  # an http(s) URL or a file_id, taken as written (not fetched)
    detail: str | None = None
    mime: str = ""
    size: int = 0  # the decoded bytes'
    width: int = 0
    height: int = 0
    pages: int = 0
    seconds: float = 0.0
    digest: str = ""  # the first 12 hex digits of the decoded bytes' sha256

    def described(self) -> str:
        """What the mock's answer says of it: `image 1024x1024 sha256:…`, `pdf 3 pages sha256:…`,
        `file text/plain 120 bytes sha256:…`, `audio 2.5 s sha256:…`, `image url https://…`."""
        if self.url is not None:
            return f"{'image' if self.kind == 'image' else 'file'} url {self.url}"
        said = {
            "image": f"image {self.width}x{self.height}",
            "pdf": f"pdf {self.pages} page{'' if self.pages == 1 else 's'}",
            "file": f"file {self.mime} {self.size} bytes",
            "audio": f"audio {self.seconds:.1f} s",
        }[self.kind]
        return f"{said} sha256:{self.digest}"


class _Memo:
    """What the data of the parts read last came to, by the identity of the data's string."""

    def __init__(self) -> None:
        self._kept: dict[tuple[int, str], tuple[str, Media]] = {}
        self._chars = 0
        self._lock = threading.Lock()  # servers on several threads share it

    def get(self, data: str, how: str) -> Media | None:
        with self._lock:
            kept = self._kept.get((id(data), how))
        return kept[1] if kept is not None and kept[0] is data else None

    def put(self, data: str, how: str, media: Media) -> None:
        with self._lock:
            old = self._kept.pop((id(data), how), None)
            self._chars -= len(old[0]) if old else 0
            self._kept[(id(data), how)] = (data, media)
            self._chars += len(data)
            while len(self._kept) > MEMO_ENTRIES or self._chars > MEMO_CHARS:
                first = next(iter(self._kept))
                self._chars -= len(self._kept.pop(first)[0])


_memo = _Memo()


def media_parts(kind: str, body: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(param, part) for each media part of a chat request's messages or a Responses input."""
    key = {"chat": "messages", "responses": "input"}.get(kind)
    items = body.get(key) if key else None
    for index, item in enumerate(items if isinstance(items, list) else ()):
        content = item.get("content") if isinstance(item, dict) else None
        for number, part in enumerate(content if isinstance(content, list) else ()):
            if isinstance(part, dict) and part.get("type") in MEDIA_PARTS:
                yield f"{key}[{index}].content[{number}]", part


def read(kind: str, body: dict[str, Any]) -> list[Media] | Problem:
    """The media of a request whose shapes are checked (shapes.py), or the 400 the API gives it."""
    found: list[Media] = []
    for at, part in media_parts(kind, body):
        media = read_part(part, at)
        if not isinstance(media, Media):
            return media
        found.append(media)
    return _over_limits(kind, found)


def media(kind: str, body: dict[str, Any]) -> list[Media]:
    """The media of a valid request (none of a request read() refuses)."""
    found = read(kind, body)
    return found if isinstance(found, list) else []


def content_media(content: Any) -> list[Media]:
    """The media of one message's content, of a valid request."""
    parts = content if isinstance(content, list) else ()
    found = [read_part(p, "") for p in parts if isinstance(p, dict) and p.get("type") in MEDIA_PARTS]
    return [m for m in found if isinstance(m, Media)]


def read_part(part: dict[str, Any], at: str) -> Media | Problem:
    """One media part's Media, or the 400 for it (`at`: its param, `messages[0].content[1]`)."""
    kind = part["type"]
    if kind in ("image_url", "input_image"):
        return _image(part, at)
    if kind == "input_audio":
        return _audio(part.get("input_audio"), f"{at}.input_audio")
    inner = part.get("file") if kind == "file" else part
    where = f"{at}.file" if kind == "file" else at
    if not isinstance(inner, dict):
        return bad(f"Missing required parameter: '{where}'.", where, "missing_required_parameter")
    return _file(inner, where, chat=kind == "file")


def _image(part: dict[str, Any], at: str) -> Media | Problem:
    chat = part["type"] == "image_url"
    inner = part.get("image_url")
    where = f"{at}.image_url.url" if chat else f"{at}.image_url"
    url = inner.get("url") if chat and isinstance(inner, dict) else inner
    detail = inner.get("detail") if chat and isinstance(inner, dict) else part.get("detail")
    detail_at = f"{at}.image_url.detail" if chat else f"{at}.detail"
    if detail is not None and detail not in DETAILS:
        return invalid_value(detail_at, detail, DETAILS)
    if url is None and not chat and isinstance(part.get("file_id"), str):
        return Media("image", url=part["file_id"], detail=detail)
    if not isinstance(url, str):
        return bad(f"Missing required parameter: '{where}'.", where, "missing_required_parameter")
    if url.startswith(("http://", "https://")):
        return Media("image", url=url, detail=detail)
    return _remembered(url, f"image:{detail}", lambda: _image_data(url, where, detail))


def _image_data(url: str, at: str, detail: str | None) -> Media | Problem:
    decoded = _data_url(url, "image/")
    if isinstance(decoded, str):
        return _not_data(at, "an image", _IMAGE_EXAMPLE, decoded, "Invalid image URL")
    mime, data = decoded
    info = image_info(data)
    if info is None or info.animated:
        message = "You uploaded an unsupported image. Please make sure your image has of one the following formats: "
        return bad(message + "['png', 'jpeg', 'gif', 'webp'].", None, "invalid_image_format")
    return Media("image", None, detail, mime, len(data), info.width, info.height, digest=_digest(data))


def _file(inner: dict[str, Any], at: str, chat: bool) -> Media | Problem:
    """Chat's `file` (PDF data, or a file_id) or the Responses API's `input_file` (any document's
    data, a file_url or a file_id)."""
    if chat and "file_url" in inner:
        return bad(f"Unknown parameter: '{at}.file_url'.", f"{at}.file_url", "unknown_parameter")
    detail = None if chat else inner.get("detail")
    if detail is not None and detail not in DETAILS:
        return invalid_value(f"{at}.detail", detail, DETAILS)
    for key in ("file_id", "file_url"):
        if isinstance(inner.get(key), str) and "file_data" not in inner:
            url = inner[key]
            if key == "file_url" and not url.startswith(("http://", "https://")):
                return bad(f"Invalid '{at}.file_url': expected an http(s) URL.", f"{at}.file_url", "invalid_value")
            return Media("pdf", url=url, detail=detail, pages=1)  # not fetched: billed as one page
    data = inner.get("file_data")
    if not isinstance(data, str):
        return bad(f"Missing required parameter: '{at}.file_data'.", f"{at}.file_data", "missing_required_parameter")
    where = f"{at}.file_data"
    return _remembered(data, f"file:{chat}:{detail}", lambda: _file_data(data, where, detail, chat))


def _file_data(data: str, at: str, detail: str | None, chat: bool) -> Media | Problem:
    decoded = _data_url(data, "application/pdf" if chat else "")
    if isinstance(decoded, str):
        kind = "an application/pdf" if chat else "a valid file"
        return _not_data(at, kind, _PDF_EXAMPLE if chat else _FILE_EXAMPLE, decoded, "Invalid file data")
    mime, raw = decoded
    if mime != "application/pdf":
        return Media("file", None, detail, mime, len(raw), digest=_digest(raw))
    if not raw.startswith(b"%PDF-"):
        return _not_data(at, "an application/pdf", _PDF_EXAMPLE, "bytes that are no PDF", "Invalid file data")
    pages = max(1, len(_PAGE.findall(raw)))  # a PDF whose pages are packed in object streams: one
    return Media("pdf", None, detail, mime, len(raw), pages=pages, digest=_digest(raw))


def _audio(inner: Any, at: str) -> Media | Problem:
    if not isinstance(inner, dict):
        return bad(f"Missing required parameter: '{at}'.", at, "missing_required_parameter")
    for key in ("data", "format"):
        if not isinstance(inner.get(key), str):
            return bad(f"Missing required parameter: '{at}.{key}'.", f"{at}.{key}", "missing_required_parameter")
    if inner["format"] not in AUDIO_FORMATS:
        return invalid_value(f"{at}.format", inner["format"], AUDIO_FORMATS)
    data = inner["data"]
    return _remembered(data, "audio", lambda: _audio_data(data, f"{at}.data"))


def _audio_data(data: str, at: str) -> Media | Problem:
    raw = _base64(data)
    if not raw:
        return bad(
            f"Invalid '{at}'. Expected base64-encoded audio bytes but got an invalid value.", at, "invalid_value"
        )
    seconds = seconds_of(raw)
    if seconds is None:
        return bad("The audio file could not be decoded or its format is not supported.", at, "invalid_value")
    return Media(
        "audio",
        mime="audio/wav" if raw[:4] == b"RIFF" else "audio/mpeg",
        size=len(raw),
        seconds=seconds,
        digest=_digest(raw),
    )


def _over_limits(kind: str, found: list[Media]) -> list[Media] | Problem:
    at = "messages" if kind == "chat" else "input"
    images = [m for m in found if m.kind == "image"]
    files = [m for m in found if m.kind in ("pdf", "file")]
    if len(images) > MOST_IMAGES:
        return bad(f"Too many images in request: {len(images)}. The maximum is {MOST_IMAGES}.", at, "invalid_value")
    if sum(m.size for m in images) > MOST_IMAGE_BYTES:
        return bad(f"The images in this request exceed {MOST_IMAGE_BYTES // 2**20} MB in all.", at, "invalid_value")
    if sum(m.pages for m in files) > MOST_PAGES:
        return bad(f"The PDFs in this request exceed {MOST_PAGES} pages in all.", at, "invalid_value")
    if sum(m.size for m in files) > MOST_FILE_BYTES:
        return bad(f"The files in this request exceed {MOST_FILE_BYTES // 2**20} MB in all.", at, "invalid_value")
    return found


def _remembered(data: str, how: str, read_it: Any) -> Media | Problem:
    known = _memo.get(data, how)
    if known is not None:
        return known
    found = read_it()
    if isinstance(found, Media):
        _memo.put(data, how, found)
    return found  # type: ignore[no-any-return]


def _data_url(url: str, mime: str) -> tuple[str, bytes] | str:
    """(MIME type, bytes) of a base64 data URL whose type starts with `mime`; else why not."""
    head = _DATA_URL.match(url)
    if head is None:
        return "a value without the 'data:' prefix"
    if not head.group(1).startswith(mime):
        return f"unsupported MIME type '{head.group(1)[:100]}'"
    if "base64" not in head.group(2).split(";"):
        return "a value that is not base64-encoded"
    raw = _base64(url[head.end() :])
    if raw is None:
        return "an invalid base64-encoded value"
    return (head.group(1), raw) if raw else "empty base64-encoded bytes"


def _base64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _not_data(at: str, kind: str, example: str, why: str, opening: str) -> Problem:
    return bad(
        f"{opening}: '{at}'. Expected a base64-encoded data URL with {kind} MIME type (e.g. {example}), but got {why}.",
        at,
        "invalid_value",
    )


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]
