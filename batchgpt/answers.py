"""What an HTTP answer says: an Answer (status, headers, parsed JSON or bytes) or a Failure, read
from the raw bytes a transport received, with secrets already out (redact.py), or from an answer
too large to read (bodies.py).

Redirects are failures: following them would carry the key and gateway headers to another
address, or turn a POST into a GET that drops the prompt.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from multidict import CIMultiDict, CIMultiDictProxy

from .bodies import TooLarge
from .records import Failure, shortened, shown_url
from .redact import Redactor
from .words import count


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str] = field(repr=False)
    data: Any = field(repr=False)
    ttft_s: float | None = None  # a streamed answer's time to its first token


def redirected(status: int, headers: Mapping[str, str], redact: Redactor) -> Failure:
    """A redirect is an error: following it would send the key elsewhere, or drop the prompt. Where
    it points is shown without credentials, query or secrets (a relay's may hold the key)."""
    location = redact.text(shown_url(headers.get("location", ""))) or "nowhere"
    return Failure(
        "http",
        f"the server redirected to {location}; batchgpt does not follow redirects with "
        "the key and the prompt: if that address is right, make it the base URL",
        status,
    )


def too_large(status: int, headers: Mapping[str, str], exc: TooLarge) -> Failure:
    """An answer past its cap, not read. A 2xx was likely billed, with a usage no one will read:
    `oversized`, counted at its worst case as an unreadable answer is, and never asked again in
    the run (another would be billed too), whatever the server's x-should-retry says. A larger
    error answer is judged by its status, as any error is."""
    if status >= 300:
        return Failure("http", f"an error answer {exc}, not read", status, headers=headers)
    kept = CIMultiDictProxy(CIMultiDict((k, v) for k, v in headers.items() if k.lower() != "x-should-retry"))
    message = (
        f"the answer is {exc}: not read, and likely billed (its usage unknown: counted at its worst case); "
        f"raise {exc.setting} to read such answers (--retry-failed asks again)"
    )
    return Failure("oversized", message, status, headers=kept)


def read_answer(status: int, headers: Mapping[str, str], raw: bytes, redact: Redactor) -> Answer | Failure:
    content_type = headers.get("content-type", "")
    if status < 300 and content_type.startswith(("audio/", "image/", "application/octet-stream")):
        return Answer(status, headers, {"_binary": raw, "_content_type": content_type})
    if status < 300 and content_type.startswith("text/plain"):  # transcripts as text, srt or vtt
        return Answer(status, headers, {"text": redact.text(raw.decode("utf-8", "replace"))})
    try:
        data = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        if status < 300:
            return Failure("malformed", f"the answer is not JSON ({count(len(raw), 'byte')})", status, headers=headers)
        return Failure("http", shortened(redact.text(raw.decode("utf-8", "replace"))), status, headers=headers)
    if redact.escaped(raw):
        data = redact.tree(data)
    if status < 300:
        if not isinstance(data, dict):
            return Failure("malformed", "the answer is not a JSON object", status, headers=headers)
        if not _relayed_error(data):
            return Answer(status, headers, data)
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return Failure(
            "http",
            shortened(redact.text(str(error.get("message") or ""))),
            status,
            code=label(error.get("code"), redact),
            type=label(error.get("type"), redact),
            headers=headers,
        )
    return Failure("http", shortened(redact.text(json.dumps(data))), status, headers=headers)


# What an answer has that an error body has not: a Responses object that failed carries `error`
# beside these (and its usage, which is paid), and stays an answer for its task to read.
_ANSWER_KEYS = frozenset({"id", "object", "choices", "data", "output", "usage", "results", "text"})


def _relayed_error(data: Mapping[str, Any]) -> bool:
    """A 2xx whose body is only an error, as some relays and gateways answer: the server's message
    and code are the failure, not a missing `choices`."""
    return isinstance(data.get("error"), dict) and not _ANSWER_KEYS & data.keys()


def label(value: Any, redact: Redactor) -> str | None:
    """An error's `code` or `type`: short text, or nothing."""
    return None if value is None else shortened(redact.text(str(value)), 80)
