"""The Batch API's files: which requests share a file, each request as an input line, and each
line of an output or error file read back as an answer or a failure.

Pure: the batch runner writes and uploads the files, and records what the lines say. The limits
are the API's (see the shared API facts, Batch API): one endpoint and one model per file, at most
50,000 lines and 200 MB, and at most 50,000 embedding inputs in a batch. A line's size is its size
as written, attached files inline as data URLs (attachments.sent_size): a line past 200 MB on its
own goes into no file (`oversized`), and its item fails alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from batchgpt.attachments import sent_size
from batchgpt.bodies import TOO_LARGE_KEY
from batchgpt.records import Failure, Provider, Request, dump, shortened
from batchgpt.tasks import TASKS

MAX_LINES = 50_000
MAX_BYTES = 200 * 10**6  # "200 MB": read as the smaller, decimal megabytes
MAX_INPUTS = 50_000  # embedding inputs in one batch, counted over all its lines
ONLINE_ONLY = frozenset(t for t, task in TASKS.items() if task.endpoint.startswith("/audio/"))
_NOT_IN_BATCHES = ("stream", "stream_options")  # the Batch API answers whole; it streams nothing


def batchable(request: Request) -> bool:
    """Whether the Batch API takes this request (speech and transcription it does not)."""
    return request.type not in ONLINE_ONLY


def line_url(provider: Provider, endpoint: str) -> str:
    """The `url` of an input line, and the `endpoint` of the batch: Azure's are under no /v1."""
    return endpoint if provider.kind == "azure" else "/v1" + endpoint


def input_line(request: Request) -> bytes:
    """One request as a line of a batch's input file; the item's id is its `custom_id`."""
    body = {k: v for k, v in request.body.items() if k not in _NOT_IN_BATCHES}
    line = {
        "custom_id": request.id,
        "method": "POST",
        "url": line_url(request.provider, request.endpoint),
        "body": body,
    }
    return dump(line) + b"\n"


def line_size(request: Request) -> int:
    """The bytes of a request's input line as written, its attached files' base64 inline."""
    return sent_size(input_line(request), request.attachments)


def oversized(size: int) -> str | None:
    """Why a line of `size` bytes goes into no batch file (the error its item fails with), or None."""
    if size <= MAX_BYTES:
        return None
    return (
        f"its line in a batch input file would be {size / 10**6:,.1f} MB with its attached files inline, "
        f"more than the Batch API's limit of {MAX_BYTES / 10**6:g} MB a file: not submitted "
        "(attach fewer or smaller files)"
    )


def inputs(request: Request) -> int:
    """How many inputs the request asks embeddings for (an `input` may be a list)."""
    value = request.body.get("input")
    return len(value) if isinstance(value, list) and request.endpoint == "/embeddings" else 1


@dataclass(frozen=True)
class PartKey:
    """What every line of one file shares."""

    provider: Provider
    endpoint: str
    model: str

    @classmethod
    def of(cls, request: Request) -> PartKey:
        return cls(request.provider, request.endpoint, request.model)


@dataclass
class PartFill:
    """How full the file being written for one key is."""

    number: int
    lines: int = 0
    bytes: int = 0
    inputs: int = 0
    worst_usd: float | None = 0.0
    ids: list[str] = field(default_factory=list)

    def fits(self, size: int, more_inputs: int) -> bool:
        return (
            self.lines < MAX_LINES
            and self.bytes + size <= MAX_BYTES
            and (self.inputs + more_inputs <= MAX_INPUTS or not self.lines)
        )

    def add(self, request: Request, size: int, worst: float | None) -> None:
        self.lines += 1
        self.bytes += size
        self.inputs += inputs(request)
        self.worst_usd = None if worst is None or self.worst_usd is None else self.worst_usd + worst
        self.ids.append(request.id)

    def undo(self, request: Request, size: int, worst: float | None) -> None:
        """Take back the last `add`: its line could not be written whole."""
        self.lines -= 1
        self.bytes -= size
        self.inputs -= inputs(request)
        self.worst_usd = None if self.worst_usd is None or worst is None else self.worst_usd - worst
        self.ids.pop()


class Splitter:
    """Assigns requests, in input order, to files: one open file per key, a new one when the
    current is full. `add` says which file a line goes to, and which file it closed (if any)."""

    def __init__(self) -> None:
        self.open: dict[PartKey, PartFill] = {}
        self._parts = 0

    def add(self, request: Request, size: int, worst: float | None) -> tuple[PartKey, PartFill, PartFill | None]:
        key = PartKey.of(request)
        full = None
        fill = self.open.get(key)
        if fill is not None and not fill.fits(size, inputs(request)):
            full = self.open.pop(key)
            fill = None
        if fill is None:
            self._parts += 1
            fill = self.open[key] = PartFill(self._parts)
        fill.add(request, size, worst)
        return key, fill, full


@dataclass(frozen=True)
class LineOutcome:
    """One line of an output or error file: the answer's body, or why there is none."""

    custom_id: str
    body: Mapping[str, Any] | None = None
    failure: Failure | None = None

    @property
    def too_large(self) -> bool:
        """A line not read for its size (its custom_id "" when its start did not name it)."""
        return self.failure is not None and self.failure.cause == "oversized"


def read_line(raw: bytes) -> LineOutcome | str:
    """A line of an output or error file, or what is wrong with it."""
    try:
        line = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return "a line is not JSON"
    if isinstance(line, dict) and TOO_LARGE_KEY in line:  # the download's, in place of a line past the cap
        named = line.get("custom_id")  # None when the line's start did not name it
        return LineOutcome(named if isinstance(named, str) else "", failure=too_large(str(line[TOO_LARGE_KEY])))
    if not isinstance(line, dict) or not isinstance(line.get("custom_id"), str):
        return "a line has no custom_id"
    custom_id = line["custom_id"]
    response, error = line.get("response"), line.get("error")
    if isinstance(response, dict) and isinstance(response.get("status_code"), int):
        status, body = response["status_code"], response.get("body")
        if 200 <= status < 300 and isinstance(body, dict):
            return LineOutcome(custom_id, body=body)
        return LineOutcome(custom_id, failure=_http_failure(status, body))
    if isinstance(error, dict):
        code = str(error.get("code") or "batch_error")
        message = shortened(f"{code}: {error.get('message') or 'no message'}")
        return LineOutcome(custom_id, failure=Failure("batch", message, code=code))
    return "a line has neither a response nor an error"


def too_large(said: str) -> Failure:
    """An item whose line was not read for its size: likely answered and billed."""
    message = (
        f"its line in the batch's file is {said}: not read, and likely billed (its usage unknown: "
        "counted at its worst case); raise the setting to read such lines (--retry-failed asks again)"
    )
    return Failure("oversized", message)


def _http_failure(status: int, body: Any) -> Failure:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return Failure(
            "http",
            shortened(str(error.get("message") or "")),
            status,
            code=None if error.get("code") is None else str(error["code"]),
            type=None if error.get("type") is None else str(error["type"]),
        )
    return Failure("http", shortened(orjson.dumps(body).decode()), status)
