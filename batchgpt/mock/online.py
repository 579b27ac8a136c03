"""The mock server's online routes: a POST to one of the ENDPOINTS (under /v1, or Azure's
/openai/deployments/{deployment}) read, logged, checked against the key and the API's rules,
counted against the rate limits, broken by its fault or answered, and sent (streams one event at
a time, as the API writes them).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from aiohttp import web

from . import api
from .account import check_key
from .bill import tokens_charged
from .chat import Reply
from .config import Host
from .errors import error_body
from .faults import ANSWER_FAULTS, Fault, inject
from .limits import RateLimiter
from .reading import MAX_AUDIO_BYTES, read_form, read_json
from .schema import schema_asked
from .usage import billed
from .validate import refusal, with_defaults

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REASKED = "That answer does not match the JSON Schema"  # how batchgpt's re-asks begin


def conversation(body: dict[str, Any], raw: bytes) -> bytes:
    """The bytes that name a request for `first=N` faults: a structured request asked again (its
    history grown by the answer and the re-ask) counts as the request it asks again."""
    if schema_asked(body) is None:
        return raw
    key = "messages" if "messages" in body else "input"
    history = body.get(key)
    if isinstance(history, list):
        asked = [n for n, m in enumerate(history) if isinstance(m, dict) and REASKED in str(m.get("content"))]
        original: Any = history[: asked[0] - 1] if asked else history
        if (
            key == "input"
            and len(original) == 1
            and isinstance(original[0], dict)
            and original[0].get("role") == "user"
        ):
            original = original[0].get("content")  # text asked again arrives as a message
        return json.dumps({**body, key: original}, sort_keys=True).encode()
    return json.dumps(body, sort_keys=True).encode()


class OnlineAPI:
    """The POST routes of the online API, and the per-model rate limits they answer by."""

    def __init__(self, host: Host, clock: Callable[[], float]) -> None:
        self.host = host
        self.limits = RateLimiter(host.config, clock)

    def routes(self) -> list[tuple[str, Handler]]:
        """(path, handler) for every endpoint, under /v1 and under Azure's deployments."""
        routes: list[tuple[str, Handler]] = []
        for path, kind in api.ENDPOINTS.items():
            handler = partial(self._post, kind=kind)
            routes += [(f"/v1{path}", handler), (f"/openai/deployments/{{deployment}}{path}", handler)]
        return routes

    async def _post(self, request: web.Request, kind: str) -> web.StreamResponse:
        read = await read_body(request, self.host.config.max_body)
        if isinstance(read, web.Response):
            return read
        body, raw = read
        missing = _deployment(request, body)
        if missing is not None:
            return missing
        host = self.host
        fault = host.pick_fault(conversation(body, raw), host.in_flight)
        host.note(request, body, fault)
        if host.config.latency:
            await asyncio.sleep(host.config.latency)
        denied = check_key(host.config.api_key, request)
        if denied:
            return denied
        refused = refusal(kind, body, host.counter, host.config.models)
        if refused:
            return web.json_response(refused[1], status=refused[0])
        return await self._answer(request, kind, with_defaults(kind, body), raw, fault)

    async def _answer(
        self, request: web.Request, kind: str, body: dict[str, Any], raw: bytes, fault: Fault | None
    ) -> web.StreamResponse:
        """A valid request's answer: refused by the limits, broken by its fault, or answered."""
        host, config = self.host, self.host.config
        cost = tokens_charged(kind, body, host.counter)
        headers = {"x-request-id": f"req_{host.random.getrandbits(64):016x}"}
        verdict = self.limits.check(str(body.get("model", "")), cost)
        headers.update(verdict.headers)
        if verdict.refusal is not None:
            return web.json_response(verdict.refusal, status=429, headers={**headers, **verdict.retry})
        if fault is not None:
            injected = await inject(
                fault,
                request,
                retry_after=config.retry_after,
                redirect_to=config.redirect_to or f"http://127.0.0.1:{host.port}/moved/v1",
                hang_s=config.hang_s,
            )
            if injected is not None:
                injected.headers.update(headers)
                return injected
        answer_fault = fault.kind if fault is not None and fault.kind in ANSWER_FAULTS else None
        reply = api.reply(kind, body, raw, host.counter, answer_fault)
        if config.record:
            host.billed.append(billed(body, reply))
        return await send(request, reply, headers)


async def read_body(request: web.Request, limit: int) -> tuple[dict[str, Any], bytes] | web.Response:
    """The body as a dict (multipart forms too, with the upload under `_file`) and the raw bytes
    that name the request for `first=N` faults; or the 413 past its size cap (`limit` for JSON,
    the API's 25 MiB for an upload), or the 400 for a body that is no JSON object."""
    if not request.content_type.startswith("multipart/"):
        return await read_json(request, limit)
    form = await read_form(request, MAX_AUDIO_BYTES)
    if isinstance(form, web.Response):
        return form
    data = form["_file"][1] if "_file" in form else b""
    return form, data + json.dumps(sorted((k, v) for k, v in form.items() if k != "_file")).encode()


def _deployment(request: web.Request, body: dict[str, Any]) -> web.Response | None:
    """Azure: the deployment in the path names the model, and api-version is required."""
    deployment = request.match_info.get("deployment")
    if deployment is None:
        return None
    if not request.query.get("api-version"):
        return web.json_response(
            error_body("Missing required query parameter: api-version", "invalid_request_error", "missing_api_version"),
            status=400,
        )
    body.setdefault("model", deployment)
    return None


async def send(request: web.Request, reply: Reply, headers: dict[str, str]) -> web.StreamResponse:
    """Send an answer: as JSON, text or bytes, or as its server-sent events."""
    if reply.events is not None:
        return await _stream(request, reply.events, headers)
    if reply.content_type == "application/json":
        return web.json_response(reply.body, headers=headers, dumps=lambda o: json.dumps(o, ensure_ascii=False))
    if isinstance(reply.body, str):
        return web.Response(text=reply.body, content_type=reply.content_type, headers=headers)
    return web.Response(body=reply.body, content_type=reply.content_type, headers=headers)


async def _stream(request: web.Request, events: list[bytes], headers: dict[str, str]) -> web.StreamResponse:
    # one write an event, so a client sees each as it comes, as from the API
    response = web.StreamResponse(headers={**headers, "Content-Type": "text/event-stream"})
    await response.prepare(request)
    for event in events:
        await response.write(event)
    await response.write_eof()
    return response
