"""The mock server's Files API: upload, list, retrieve, content and delete, under /v1 (and
Azure's /openai, with api-version), as the Batch API flow uses them (the shared API facts,
section 10). The files it holds are also where batch.py reads a batch's input and keeps its
output and error files.

A list is newest first unless `order=asc`, filtered by `purpose`, and paged by `limit` (1 to
10,000, default 10,000) and `after` (a file id), with `has_more`, `first_id` and `last_id` as the
SDK's cursor page reads them.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .account import check_key
from .batchinput import MAX_FILE_BYTES as BATCH_FILE_BYTES
from .config import Host
from .errors import error_body
from .reading import read_bounded, read_form

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
MOST_LISTED = 10_000
_serial = itertools.count(1)


def new_id(prefix: str) -> str:
    """Sortable by creation, and never issued again (not even by a restarted server)."""
    return f"{prefix}-{time.time_ns():019d}{next(_serial):06d}{uuid.uuid4().hex[:8]}"


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
        }


def error(status: int, message: str, code: str | None, param: str | None = None) -> web.Response:
    return web.json_response(error_body(message, "invalid_request_error", code, param), status=status)


def no_such(what: str, ident: str) -> web.Response:
    return error(404, f"No such {what}: {ident}", None)


def denied(host: Host, request: web.Request) -> web.Response | None:
    """Azure's missing api-version, or the 401 for a wrong key; None when the request may go on."""
    if request.path.startswith("/openai/") and not request.query.get("api-version"):
        return error(400, "Missing required query parameter: api-version", "missing_api_version")
    return check_key(host.config.api_key, request)


class FilesAPI:
    """The files a running mock server holds, and their routes."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.files: dict[str, StoredFile] = {}

    def routes(self, prefix: str) -> list[tuple[str, str, Handler]]:
        """(method, path, handler) under `prefix` (/v1, or Azure's /openai)."""
        return [
            ("POST", f"{prefix}/files", self._upload),
            ("GET", f"{prefix}/files", self._list),
            ("GET", f"{prefix}/files/{{id}}", self._file),
            ("DELETE", f"{prefix}/files/{{id}}", self._delete),
            ("GET", f"{prefix}/files/{{id}}/content", self._content),
        ]

    def keep(self, filename: str, purpose: str, data: bytes) -> StoredFile:
        stored = StoredFile(new_id("file"), filename, purpose, data, int(time.time()))
        self.files[stored.id] = stored
        return stored

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        refused = denied(self.host, request)
        if refused:
            return refused
        if not request.content_type.startswith("multipart/"):
            read = await read_bounded(request, self.host.config.max_body)  # read, so the client hears the answer
            if isinstance(read, web.Response):
                return read
            return error(400, "Uploads are multipart/form-data with `file` and `purpose`.", None)
        form = await read_form(request, self.host.config.max_upload)
        if isinstance(form, web.Response):
            return form
        for name in ("file", "purpose"):
            if ("_file" if name == "file" else name) not in form:
                return error(400, f"Missing required parameter: '{name}'.", "missing_required_parameter", name)
        (filename, data), purpose = form["_file"], form["purpose"]
        filename = str(filename or "upload")
        if purpose not in PURPOSES:
            listed = ", ".join(f"'{p}'" for p in PURPOSES)
            return error(
                400, f"Invalid value: '{purpose[:64]}'. Supported values are: {listed}.", "invalid_value", "purpose"
            )
        if purpose == "batch" and (not filename.endswith(".jsonl") or len(data) > BATCH_FILE_BYTES):
            return error(400, "Batch files must be .jsonl files of at most 200 MB.", "invalid_file", "file")
        stored = self.keep(filename, purpose, data)
        self.host.note(request, {"purpose": purpose, "filename": filename, "bytes": len(data)})
        return web.json_response(stored.describe())

    async def _list(self, request: web.Request) -> web.StreamResponse:
        refused = denied(self.host, request)
        if refused:
            return refused
        query = request.query
        limit = query.get("limit", str(MOST_LISTED))
        if not (limit.isascii() and limit.isdigit() and 1 <= int(limit) <= MOST_LISTED):
            return error(
                400, f"Invalid 'limit': expected an integer from 1 to {MOST_LISTED}, got '{limit[:20]}'.", None, "limit"
            )
        order = query.get("order", "desc")
        if order not in ("asc", "desc"):
            return error(400, f"Invalid value: '{order[:20]}'. Supported values are: 'asc' and 'desc'.", None, "order")
        files = sorted(self.files.values(), key=lambda f: f.id, reverse=order == "desc")
        purpose = query.get("purpose")
        files = [f for f in files if purpose is None or f.purpose == purpose]
        after = query.get("after")
        if after is not None:
            ids = [f.id for f in files]
            files = files[ids.index(after) + 1 :] if after in ids else []
        page = files[: int(limit)]
        return web.json_response(
            {
                "object": "list",
                "data": [f.describe() for f in page],
                "first_id": page[0].id if page else None,
                "last_id": page[-1].id if page else None,
                "has_more": len(files) > len(page),
            }
        )

    async def _file(self, request: web.Request) -> web.StreamResponse:
        refused = denied(self.host, request)
        if refused:
            return refused
        stored = self.files.get(request.match_info["id"])
        return web.json_response(stored.describe()) if stored else no_such("file", request.match_info["id"])

    async def _delete(self, request: web.Request) -> web.StreamResponse:
        refused = denied(self.host, request)
        if refused:
            return refused
        ident = request.match_info["id"]
        if self.files.pop(ident, None) is None:
            return no_such("file", ident)
        self.host.note(request, {"deleted": ident})
        return web.json_response({"id": ident, "object": "file", "deleted": True})

    async def _content(self, request: web.Request) -> web.StreamResponse:
        refused = denied(self.host, request)
        if refused:
            return refused
        stored = self.files.get(request.match_info["id"])
        if stored is None:
            return no_such("file", request.match_info["id"])
        return web.Response(body=stored.data, content_type="application/octet-stream")
