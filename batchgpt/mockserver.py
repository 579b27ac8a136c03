"""`batchgpt mock-server`: an OpenAI-compatible server on 127.0.0.1 for tests and rehearsals.

It answers like the real API (see the shared API facts): the documented error bodies and codes,
`x-ratelimit-*`, `retry-after` and `retry-after-ms` headers, `usage` counted with tiktoken as
the API counts it, and server-sent events with `stream_options.include_usage`. Answers are
deterministic and say which request they answer (a chat reply echoes the last user message).

This module owns the transport: the routes (a table from path to the kind of request), reading
bodies, API keys, the billing routes, the `capacity` of a busy server, and the logs tests and
benchmarks read (`seen`, `answers`). What each kind answers is mockapi.py's; the faults injected
on demand (at a rate, for the first N attempts of each distinct request, or for the first N
seconds) are mockfaults.py's; the per-model rate limits, which like the API's may be enforced over
a window shorter than their minute (`window`), are mocklimits.py's.
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from aiohttp import web

from . import mockapi, mockusage
from .mockapi import error_body
from .mockbatch import BatchAPI
from .mockfaults import ANSWER_FAULTS, FAULT_KINDS, OVERLOADED, Fault, FaultPicker, inject
from .mocklimits import RateLimiter, duration
from .tokens import Counter

# what tests, benchmarks and the CLI import from here, wherever it now lives
__all__ = ["ANSWER_FAULTS", "ENDPOINTS", "FAULT_KINDS", "Config", "Fault", "MockServer", "Seen", "duration"]

# POST path (under /v1, and under Azure's /openai/deployments/{deployment}): the kind of request,
# which picks its validation, its token count and its answer (mockapi.REPLIES)
ENDPOINTS = {
    "/chat/completions": "chat",
    "/completions": "completion",
    "/responses": "responses",
    "/embeddings": "embeddings",
    "/moderations": "moderations",
    "/images/generations": "images",
    "/audio/speech": "speech",
    "/audio/transcriptions": "transcriptions",
}
# Connections waiting to be accepted, as uvicorn (vLLM's server) allows: with aiohttp's 128, a run
# opening 1,000 at once has most of the rest dropped, and their clients try again a second later.
BACKLOG = 2048
MODELS = ["gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-5", "text-embedding-3-small"]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Config:
    """How the server behaves; tests change some fields (faults, latency, billing) while it runs."""

    api_key: str | None = None
    latency: float = 0.0
    rpm: float | None = None  # per model, as the API's limits are
    tpm: float | None = None
    window: float = 60.0  # seconds of the per-minute limits a burst may take at once
    limit_headers: bool = True  # send x-ratelimit-* (proxies and local servers often do not)
    retry_after: bool = True  # send retry-after(-ms) with a rate-limit 429
    capacity: int | None = None  # requests in flight before 503 "overloaded", as a busy local server
    redirect_to: str | None = None  # where the 307 and 301 faults send requests (default: this server)
    faults: list[Fault] = field(default_factory=list)
    seed: int = 0
    hang_s: float = 30.0
    billing: tuple[float, float] | None = (100.0, 0.0)  # (hard limit, used) in USD; None: no billing routes
    record: bool = True  # keep a log of requests (tests read it; a benchmark turns it off)
    batch_delay: float = 0.0  # seconds a batch takes to complete (mockbatch.py)
    batch_expire: float | None = None  # a batch expires with this share of its lines answered
    batch_invalid: str | None = None  # batch lines holding this text fail validation
    batch_create_delay: float = 0.0  # seconds the answer to a batch's creation waits after it exists
    batch_create_errors: int = 0  # the next N creations answer 500 (and create nothing)
    batch_list_errors: int = 0  # the next N lists of batches answer 500
    batch_refused_models: tuple[str, ...] = ()  # models the Batch API refuses (400 at creation)
    tls: ssl.SSLContext | None = None  # serve https with this certificate (tests of the TLS transport)


@dataclass
class Seen:
    """A request as the server saw it: its path, body, the fault it got and its headers (lowercased)."""

    path: str
    body: Any
    fault: str | None
    headers: dict[str, str]


REASKED = "That answer does not match the JSON Schema"  # how batchgpt's re-asks begin


def conversation(body: dict[str, Any], raw: bytes) -> bytes:
    """The bytes that name a request for `first=N` faults: a structured request asked again (its
    history grown by the answer and the re-ask) counts as the request it asks again."""
    if mockapi.schema_asked(body) is None:
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


class MockServer:
    """The server: start() it on a thread for tests, or serve_forever() for the CLI."""

    def __init__(self, config: Config | None = None, clock: Callable[[], float] = time.monotonic):
        self.config = config or Config()
        self.seen: list[Seen] = []
        self.counter = Counter()
        # one random source for fault rates and request ids, so one seed fixes a whole run
        self.random = random.Random(self.config.seed)
        self._faults = FaultPicker(self.random, clock)  # the clock of their windows (tests stop it)
        self._limits = RateLimiter(self.config, clock)
        self.answers: list[tuple[float, int]] = []  # (monotonic time, status) of every answer, when recording
        self.billed: list[dict[str, Any]] = []  # each answer's model, usage and service tier, when recording
        self.in_flight = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.batch = BatchAPI(self)  # the Batch API's files and batches

    # ------------------------------------------------------------------ app

    def app(self) -> web.Application:
        """The aiohttp application: the route tables, behind the accounting middleware."""
        app = web.Application(client_max_size=64 * 2**20, middlewares=[self._account])
        for path, kind in ENDPOINTS.items():
            app.router.add_post(f"/v1{path}", partial(self._post, kind=kind))
            app.router.add_post(f"/openai/deployments/{{deployment}}{path}", partial(self._post, kind=kind))
        for path, handler in self._get_routes().items():
            app.router.add_get(path, handler)
        for prefix in ("/v1", "/openai"):  # Azure's batch routes are under /openai, with api-version
            for method, path, handler in self.batch.routes(prefix):
                app.router.add_route(method, path, handler)
        return app

    def _get_routes(self) -> dict[str, Handler]:
        """GET path: handler. The billing routes answer with and without /v1, as the proxies' do."""
        routes: dict[str, Handler] = {"/v1/models": self._models}
        for prefix in ("", "/v1"):
            routes[f"{prefix}/dashboard/billing/subscription"] = self._subscription
            routes[f"{prefix}/dashboard/billing/usage"] = self._usage
        return routes

    @property
    def base_url(self) -> str:
        return f"{'https' if self.config.tls else 'http'}://127.0.0.1:{self.port}/v1"

    def start(self, port: int = 0) -> MockServer:
        """Serve on a thread of its own (for tests); returns once the port is bound."""
        ready = threading.Event()

        def serve() -> None:
            self._loop = loop = asyncio.new_event_loop()
            loop.run_until_complete(self._start(port))
            ready.set()
            loop.run_forever()
            # aiohttp reads files in the loop's default executor: its threads end with the server,
            # not linger in the process (a process with threads does not fork its dry runs)
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

        self._thread = threading.Thread(target=serve, name="mock-server", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    async def _start(self, port: int, host: str = "127.0.0.1") -> None:
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, backlog=BACKLOG, ssl_context=self.config.tls)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        """Stop a server start() started, cancelling handlers still hanging."""
        if self._loop is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        try:
            future.result(10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._thread:
                self._thread.join(10)

    async def _shutdown(self) -> None:
        await self._runner.cleanup()  # type: ignore[union-attr]
        # Handlers still hanging (the `hang` fault) are cancelled, not left to warn at exit.
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def serve_forever(self, port: int, host: str = "127.0.0.1") -> None:
        """Serve in the foreground until interrupted (`batchgpt mock-server`)."""
        web.run_app(self.app(), host=host, port=port, access_log=None, print=None, backlog=BACKLOG)

    # ------------------------------------------------------------------ handlers

    @web.middleware
    async def _account(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Log every answer's status, and refuse work past `capacity` as an overloaded server does."""
        self.in_flight += 1
        status = 599  # a dropped connection or a cancelled handler answers nothing
        try:
            capacity = self.config.capacity
            if capacity is not None and self.in_flight > capacity and request.method == "POST":
                response: web.StreamResponse = web.json_response(
                    error_body(OVERLOADED, "server_error", None), status=503
                )
            else:
                response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            self.in_flight -= 1
            if self.config.record:
                self.answers.append((time.monotonic(), status))

    def refused(self) -> int:
        """How many answers were rate-limit or overload refusals (429, 503)."""
        return sum(1 for _, status in self.answers if status in (429, 503))

    async def _models(self, request: web.Request) -> web.Response:
        denied = self.check_key(request)
        if denied:
            return denied
        return web.json_response(
            {"object": "list", "data": [{"id": n, "object": "model", "owned_by": "mock"} for n in MODELS]}
        )

    def _billing(self, request: web.Request) -> tuple[float, float]:
        """(hard limit, used); raises the 401 or the 404 (no billing routes) instead."""
        denied = self.check_key(request)
        if denied is not None:
            raise web.HTTPUnauthorized(body=denied.body, content_type="application/json")
        if self.config.billing is None:
            raise web.HTTPNotFound()
        return self.config.billing

    async def _subscription(self, request: web.Request) -> web.Response:
        hard_limit = self._billing(request)[0]
        return web.json_response(
            {
                "object": "billing_subscription",
                "has_payment_method": True,
                "soft_limit_usd": hard_limit,
                "hard_limit_usd": hard_limit,
                "system_hard_limit_usd": hard_limit,
                "access_until": 0,
            }
        )

    async def _usage(self, request: web.Request) -> web.Response:
        used = self._billing(request)[1]
        if not (request.query.get("start_date") and request.query.get("end_date")):
            # as the proxies do: an error object with HTTP 200
            return web.json_response(error_body("start_date and end_date are required", "invalid_request_error", None))
        return web.json_response({"object": "list", "total_usage": round(used * 100, 4)})

    async def _read(self, request: web.Request) -> tuple[dict[str, Any], bytes] | web.Response:
        """The body as a dict (multipart forms too, with the upload under `_file`) and the raw
        bytes that name the request for `first=N` faults."""
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            body: dict[str, Any] = {}
            raw = b""
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    data = value.file.read()
                    body["_file"] = (value.filename, data)
                    raw += data
                else:
                    body[key] = value
            return body, raw + json.dumps(sorted((k, v) for k, v in body.items() if k != "_file")).encode()
        raw = await request.read()
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            return web.json_response(
                error_body("We could not parse the JSON body of your request.", "invalid_request_error", None),
                status=400,
            )
        if not isinstance(body, dict):
            return web.json_response(
                error_body("The body must be a JSON object.", "invalid_request_error", None), status=400
            )
        return body, raw

    async def _post(self, request: web.Request, kind: str) -> web.StreamResponse:
        read = await self._read(request)
        if isinstance(read, web.Response):
            return read
        body, raw = read
        missing = self._deployment(request, body)
        if missing is not None:
            return missing
        fault = self._faults.pick(self.config.faults, conversation(body, raw), self.in_flight)
        self._record(request, body, fault)
        if self.config.latency:
            await asyncio.sleep(self.config.latency)
        denied = self.check_key(request)
        if denied:
            return denied
        problem = mockapi.invalid(kind, body, self.counter)
        if problem:
            return web.json_response(problem, status=400)
        return await self._answer(request, kind, body, raw, fault)

    def _deployment(self, request: web.Request, body: dict[str, Any]) -> web.Response | None:
        """Azure: the deployment in the path names the model, and api-version is required."""
        deployment = request.match_info.get("deployment")
        if deployment is None:
            return None
        if not request.query.get("api-version"):
            return web.json_response(
                error_body(
                    "Missing required query parameter: api-version", "invalid_request_error", "missing_api_version"
                ),
                status=400,
            )
        body.setdefault("model", deployment)
        return None

    async def _answer(
        self, request: web.Request, kind: str, body: dict[str, Any], raw: bytes, fault: Fault | None
    ) -> web.StreamResponse:
        """A valid request's answer: refused by the limits, broken by its fault, or answered."""
        cost = mockapi.tokens_charged(kind, body, self.counter)
        headers = {"x-request-id": f"req_{self.random.getrandbits(64):016x}"}
        verdict = self._limits.check(str(body.get("model", "")), cost)
        headers.update(verdict.headers)
        if verdict.refusal is not None:
            return web.json_response(verdict.refusal, status=429, headers={**headers, **verdict.retry})
        if fault is not None:
            injected = await inject(
                fault,
                request,
                retry_after=self.config.retry_after,
                redirect_to=self.config.redirect_to or f"http://127.0.0.1:{self.port}/moved/v1",
                hang_s=self.config.hang_s,
            )
            if injected is not None:
                injected.headers.update(headers)
                return injected
        answer_fault = fault.kind if fault is not None and fault.kind in ANSWER_FAULTS else None
        reply = mockapi.reply(kind, body, raw, self.counter, answer_fault)
        if self.config.record:
            self.billed.append(mockusage.billed(body, reply))
        return await self._send(request, reply, headers)

    async def _send(self, request: web.Request, reply: mockapi.Reply, headers: dict[str, str]) -> web.StreamResponse:
        if reply.events is not None:
            return await self._stream(request, reply.events, headers)
        if reply.content_type == "application/json":
            return web.json_response(reply.body, headers=headers, dumps=lambda o: json.dumps(o, ensure_ascii=False))
        if isinstance(reply.body, str):
            return web.Response(text=reply.body, content_type=reply.content_type, headers=headers)
        return web.Response(body=reply.body, content_type=reply.content_type, headers=headers)

    @staticmethod
    async def _stream(request: web.Request, events: list[bytes], headers: dict[str, str]) -> web.StreamResponse:
        # one write an event, so a client sees each as it comes, as from the API
        response = web.StreamResponse(headers={**headers, "Content-Type": "text/event-stream"})
        await response.prepare(request)
        for event in events:
            await response.write(event)
        await response.write_eof()
        return response

    # ------------------------------------------------------------------ behaviour

    def _record(self, request: web.Request, body: Any, fault: Fault | None) -> None:
        if self.config.record:
            headers = {k.lower(): v for k, v in request.headers.items()}
            self.seen.append(Seen(request.path, body, fault.kind if fault else None, headers))

    def note(self, request: web.Request, body: Any) -> None:
        """Log a request that is no task's (an upload, a batch's creation) as `seen`."""
        self._record(request, body, None)

    def pick_fault(self, raw: bytes) -> Fault | None:
        """The fault for a request (or a batch's line) whose body is `raw`."""
        return self._faults.pick(self.config.faults, raw)

    @staticmethod
    def kind_of(url: str) -> str:
        """The kind of request a batch line's url names (/v1/chat/completions, or Azure's /chat/completions)."""
        return ENDPOINTS[url.removeprefix("/v1")]

    def check_key(self, request: web.Request) -> web.Response | None:
        if self.config.api_key is None:
            return None
        given = request.headers.get("Authorization", "").removeprefix("Bearer ") or request.headers.get("api-key", "")
        if given == self.config.api_key:
            return None
        shown = given[:3] + "*" * 4 + given[-4:] if len(given) > 8 else "****"
        return web.json_response(
            error_body(
                f"Incorrect API key provided: {shown}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                "invalid_api_key",
            ),
            status=401,
        )
