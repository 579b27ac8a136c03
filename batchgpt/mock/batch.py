"""The mock server's Batch API: batches (create, retrieve, list, cancel), as the shared API facts
describe them, over the files files.py holds (a batch's input, its output and error files).

A batch's progress follows from the clock when it is read: `in_progress` until `batch_delay`
seconds after its creation, then `completed`; or `expired` with only the first `batch_expire`
share of its lines answered; or, once cancelled, `cancelled` with the share answered by then.
Unanswered lines go to the error file as `batch_expired` (or `batch_cancelled`). Each line is
answered as the online route answers it (api.py), faults included: `--fault 500:match=X` puts
the lines holding X in the error file with that error. A file breaking the documented rules
(invalid JSON, a duplicate custom_id, a url or model that differs, too many lines: batchinput.py) fails
validation with `errors.data[]` naming the lines; so do lines holding `batch_invalid` text.
What relays in front of the API get wrong (output files short of a line or with lines to spare,
lists that page oddly or drop metadata) is `faults`, a batchfaults.BatchFaults.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from . import api
from .batchfaults import BatchFaults
from .batchinput import BATCH_ENDPOINTS, Line, check_file
from .config import Host
from .errors import error_body
from .faults import ANSWER_FAULTS, ERRORS
from .fields import check, text
from .files import FilesAPI, denied, new_id
from .files import error as _error
from .files import no_such as _no_such
from .reading import read_json
from .shapes import metadata as metadata_problem
from .validate import refusal, with_defaults

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Batch:
    id: str
    input_file_id: str
    endpoint: str
    metadata: dict[str, str]
    lines: list[Line]
    errors: list[dict[str, Any]]  # validation errors: the batch fails
    created: float  # monotonic, for progress
    created_at: int  # epoch seconds, as the API says
    cancelled: float | None = None  # monotonic time of the cancel request
    status: str = "validating"
    output_file_id: str | None = None
    error_file_id: str | None = None
    ended_at: int | None = None
    done: int = 0
    failed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class BatchAPI:
    """The batches a running mock server holds, over the files of `stored`."""

    def __init__(self, host: Host, stored: FilesAPI) -> None:
        self.host = host
        self.stored = stored
        self.files = stored.files  # (tests read them here)
        self.batches: dict[str, Batch] = {}
        self.faults = BatchFaults()  # what a relay in front of the Batch API does (batchfaults.py)

    def routes(self, prefix: str) -> list[tuple[str, str, Handler]]:
        """(method, path, handler) under `prefix` (/v1, or Azure's /openai)."""
        return [
            *self.stored.routes(prefix),
            ("POST", f"{prefix}/batches", self._create),
            ("GET", f"{prefix}/batches", self._list),
            ("GET", f"{prefix}/batches/{{id}}", self._retrieve),
            ("POST", f"{prefix}/batches/{{id}}/cancel", self._cancel),
        ]

    def _failing(self, counter: str) -> web.Response | None:
        """A 500 while the config's `counter` of errors to give lasts."""
        left = getattr(self.host.config, counter)
        if left <= 0:
            return None
        setattr(self.host.config, counter, left - 1)
        return web.json_response(
            error_body("The server had an error while processing your request.", "server_error", None), status=500
        )

    # ------------------------------------------------------------------ batches

    async def _create(self, request: web.Request) -> web.StreamResponse:
        refused = denied(self.host, request)
        if refused:
            return refused
        failing = self._failing("batch_create_errors")
        if failing:
            return failing
        if self.faults.busy():
            return _error(429, "Too many batch creations; please try again later.", "rate_limit_exceeded")
        read = await read_json(request, self.host.config.max_body)
        if isinstance(read, web.Response):
            return read
        body = read[0]
        problem = _invalid_creation(body)
        if problem:
            return problem
        stored = self.files.get(str(body.get("input_file_id")))
        azure = request.path.startswith("/openai/")
        endpoint = str(body.get("endpoint"))
        allowed = [e.removeprefix("/v1") for e in BATCH_ENDPOINTS] if azure else BATCH_ENDPOINTS
        if stored is None:
            return _no_such("file", str(body.get("input_file_id")))
        if endpoint not in allowed:
            return _error(400, f"Invalid endpoint: {endpoint}. Use one of {', '.join(allowed)}.", None, "endpoint")
        if body.get("completion_window") != "24h":
            return _error(400, "completion_window must be '24h'.", None, "completion_window")
        metadata = body.get("metadata") or {}
        lines, errors = check_file(stored.data, endpoint, self.host.config.batch_invalid)
        models = {str(line["body"].get("model")) for _, line, _ in lines}
        if models & set(self.host.config.batch_refused_models):
            return _error(
                400, f"The model {sorted(models)[0]} is not supported by the Batch API.", "model_not_supported"
            )
        batch = Batch(
            new_id("batch"),
            stored.id,
            endpoint,
            dict(metadata),
            lines,
            errors,
            time.monotonic(),
            int(time.time()),
        )
        self.batches[batch.id] = batch
        self.host.note(request, body)
        if self.host.config.batch_create_delay:  # the batch exists; its creator hears of it late (or never)
            await asyncio.sleep(self.host.config.batch_create_delay)
        return web.json_response(self.describe(batch, advance=False))  # validating, as a new batch is

    async def _retrieve(self, request: web.Request) -> web.StreamResponse:
        refused = denied(self.host, request)
        if refused:
            return refused
        batch = self.batches.get(request.match_info["id"])
        return web.json_response(self.describe(batch)) if batch else _no_such("batch", request.match_info["id"])

    async def _list(self, request: web.Request) -> web.StreamResponse:
        refused = denied(self.host, request)
        if refused:
            return refused
        failing = self._failing("batch_list_errors")
        if failing:
            return failing
        limit = request.query.get("limit", "20")
        if not (limit.isascii() and limit.isdigit() and 1 <= int(limit) <= 100):
            return _error(
                400, f"Invalid 'limit': expected an integer from 1 to 100, got '{limit[:20]}'.", None, "limit"
            )
        newest_first = sorted(self.batches.values(), key=lambda b: b.id, reverse=True)
        return web.json_response(self.faults.page([self.describe(b) for b in newest_first], request.query))

    async def _cancel(self, request: web.Request) -> web.StreamResponse:
        refused = denied(self.host, request)
        if refused:
            return refused
        batch = self.batches.get(request.match_info["id"])
        if batch is None:
            return _no_such("batch", request.match_info["id"])
        self._advance(batch)
        if batch.status in ("completed", "failed", "expired", "cancelled"):
            return _error(400, f"Cannot cancel a batch with status '{batch.status}'.", None)
        self.host.note(request, {"cancel": batch.id})
        if batch.cancelled is None:
            batch.cancelled = time.monotonic()
            batch.status = "cancelling"
        return web.json_response(self.describe(batch, advance=False))  # cancelled as of the next read

    # ------------------------------------------------------------------ progress

    def describe(self, batch: Batch, advance: bool = True) -> dict[str, Any]:
        """The batch object, as of now."""
        if advance:
            self._advance(batch)
        total = len(batch.lines)
        share = self._share(batch)
        completed = batch.done if batch.ended_at else int(total * share)
        ended = batch.ended_at
        described = {
            "id": batch.id,
            "object": "batch",
            "endpoint": batch.endpoint,
            "errors": {"object": "list", "data": batch.errors} if batch.status == "failed" else None,
            "input_file_id": batch.input_file_id,
            "completion_window": "24h",
            "status": batch.status,
            "output_file_id": batch.output_file_id,
            "error_file_id": batch.error_file_id,
            "created_at": batch.created_at,
            "in_progress_at": batch.created_at if batch.status != "failed" else None,
            "expires_at": batch.created_at + 86400,
            "completed_at": ended if batch.status == "completed" else None,
            "failed_at": ended if batch.status == "failed" else None,
            "expired_at": ended if batch.status == "expired" else None,
            "cancelled_at": ended if batch.status == "cancelled" else None,
            "request_counts": {"total": total, "completed": completed, "failed": batch.failed},
            "metadata": batch.metadata,
        }
        return self.faults.shown(described)

    def _share(self, batch: Batch, until: float | None = None) -> float:
        """The share of the lines answered by `until` (now)."""
        delay = self.host.config.batch_delay
        elapsed = (until if until is not None else time.monotonic()) - batch.created
        return 1.0 if delay <= 0 else min(1.0, elapsed / delay)

    def _advance(self, batch: Batch) -> None:
        """Bring the batch's status up to the clock; answer its lines when it ends."""
        if batch.ended_at is not None:
            return
        config = self.host.config
        if batch.errors:
            batch.status, batch.ended_at = "failed", int(time.time())
            return
        if batch.cancelled is not None:
            self._end(batch, "cancelled", self._share(batch, batch.cancelled), "batch_cancelled")
        elif self._share(batch) < 1.0:
            batch.status = "in_progress"
        elif config.batch_expire is not None:
            self._end(batch, "expired", config.batch_expire, "batch_expired")
        else:
            self._end(batch, "completed", 1.0, "")

    def _end(self, batch: Batch, status: str, share: float, unanswered: str) -> None:
        answered = round(len(batch.lines) * share) if share < 1.0 else len(batch.lines)
        outputs: list[bytes] = []
        failures: list[bytes] = []
        for index, (_, line, raw) in enumerate(batch.lines):
            if index >= answered:
                message = "This request could not be executed before the batch ended."
                failures.append(_line(line["custom_id"], None, {"code": unanswered, "message": message}))
                continue
            status_code, body = self._answer(line, raw)
            response = {"status_code": status_code, "request_id": f"req_{index:08d}", "body": body}
            (outputs if status_code < 300 else failures).append(_line(line["custom_id"], response, None))
        batch.done = len(outputs)
        batch.failed = len(failures) - (len(batch.lines) - answered)
        outputs = self.faults.output(outputs)
        batch.output_file_id = self._keep(batch, outputs, "output") if outputs else None
        batch.error_file_id = self._keep(batch, failures, "error") if failures else None
        batch.status, batch.ended_at = status, int(time.time())

    def _answer(self, line: dict[str, Any], raw: bytes) -> tuple[int, Any]:
        """(status, body) the online route gives this line's request."""
        kind = api.kind_of(str(line.get("url")))
        body = dict(line["body"])
        fault = self.host.pick_fault(raw)
        if fault is not None and fault.kind in ERRORS:
            status, message, type_, code, param = ERRORS[fault.kind]
            return status, error_body(message, type_, code, param)
        refused = refusal(kind, body, self.host.counter, self.host.config.models)
        if refused:
            return refused
        answer_fault = fault.kind if fault is not None and fault.kind in ANSWER_FAULTS else None
        reply = api.reply(kind, with_defaults(kind, body), raw, self.host.counter, answer_fault)
        return 200, reply.body

    def _keep(self, batch: Batch, lines: list[bytes], name: str) -> str:
        return self.stored.keep(f"{batch.id}_{name}.jsonl", f"batch_{name}", b"".join(lines)).id


def _line(custom_id: str, response: dict[str, Any] | None, error: dict[str, Any] | None) -> bytes:
    ident = "batch_req_" + hashlib.sha1(custom_id.encode()).hexdigest()[:24]
    return json.dumps({"id": ident, "custom_id": custom_id, "response": response, "error": error}).encode() + b"\n"


def _invalid_creation(body: dict[str, Any]) -> web.Response | None:
    """The 400 for a batch's creation whose fields are missing or of the wrong type."""
    for name in ("input_file_id", "endpoint", "completion_window"):
        if name not in body:
            return _error(400, f"Missing required parameter: '{name}'.", "missing_required_parameter", name)
        problem = check(text(required=True), name, body[name])
        if problem:
            return web.json_response(problem, status=400)
    problem = metadata_problem(body)
    return web.json_response(problem, status=400) if problem else None
