"""`batchgpt mock-server`: an OpenAI-compatible server on 127.0.0.1 for tests and rehearsals.

It answers like the real API (see the shared API facts): the documented error bodies and codes,
`x-ratelimit-*`, `retry-after` and `retry-after-ms` headers, `usage` counted with tiktoken as
the API counts it, and server-sent events with `stream_options.include_usage`. Answers are
deterministic and say which request they answer (a chat reply echoes the last user message).

This module owns the server's state and wiring: the route tables behind one accounting
middleware (the `capacity` of a busy server), the fault picker and the random source every route
shares, and the logs tests and benchmarks read (`seen`, `answers`, `billed`). The routes are
online.py's (the POST endpoints), account.py's (key, models, billing), files.py's and batch.py's
(files and batches); they reach the server only through config.Host. How it runs is serving.py's; the
faults injected on demand are faults.py's and the per-model rate limits limits.py's.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from batchgpt.tokens import Counter

from .account import Account
from .batch import BatchAPI
from .config import Config, Seen
from .errors import error_body
from .faults import OVERLOADED, Fault, FaultPicker
from .files import FilesAPI
from .online import OnlineAPI
from .serving import Serving, serve_forever


class MockServer:
    """The server: start() it on a thread for tests, or serve_forever() for the CLI."""

    def __init__(self, config: Config | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config or Config()
        self.clock = clock  # what the rate limits, the `for=` faults and `answers` tell time by
        self.seen: list[Seen] = []
        self.counter = Counter()
        # one random source for fault rates and request ids, so one seed fixes a whole run
        self.random = random.Random(self.config.seed)
        self._faults = FaultPicker(self.random, clock)
        self.answers: list[tuple[float, int]] = []  # (the clock's time, status) of every answer, when recording
        self.billed: list[dict[str, Any]] = []  # each answer's model, usage and service tier, when recording
        self.in_flight = 0
        self.port = 0
        self._serving: Serving | None = None
        self.online = OnlineAPI(self, clock)  # the POST endpoints and their rate limits
        self.account = Account(self)  # models and billing
        self.batch = BatchAPI(self, FilesAPI(self))  # the Files API and the Batch API

    def app(self) -> web.Application:
        """The aiohttp application: the route tables, behind the accounting middleware."""
        # each route reads its body within its own cap (reading.py); this one bounds any other read
        app = web.Application(client_max_size=self.config.max_body, middlewares=[self._accounting])
        for path, handler in self.online.routes():
            app.router.add_post(path, handler)
        for path, get in self.account.routes().items():
            app.router.add_get(path, get)
        for prefix in ("/v1", "/openai"):  # Azure's batch routes are under /openai, with api-version
            for method, path, handler in self.batch.routes(prefix):
                app.router.add_route(method, path, handler)
        return app

    @property
    def base_url(self) -> str:
        return f"{'https' if self.config.tls else 'http'}://127.0.0.1:{self.port}/v1"

    def start(self, port: int = 0) -> MockServer:
        """Serve on a thread of its own (for tests); returns once the port is bound."""
        self._serving = Serving(self.app, self.config.tls)
        self.port = self._serving.start(port)
        return self

    def stop(self) -> None:
        """Stop a server start() started, cancelling handlers still hanging."""
        if self._serving is not None:
            self._serving.stop()

    def serve_forever(self, port: int, host: str = "127.0.0.1") -> None:
        """Serve in the foreground until interrupted (`batchgpt mock-server`)."""
        serve_forever(self.app(), port, host)

    @web.middleware
    async def _accounting(self, request: web.Request, handler: Any) -> web.StreamResponse:
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
                self.answers.append((self.clock(), status))

    def refused(self) -> int:
        """How many answers were rate-limit or overload refusals (429, 503)."""
        return sum(1 for _, status in self.answers if status in (429, 503))

    def note(self, request: web.Request, body: Any, fault: Fault | None = None) -> None:
        """Log a request as `seen`, with the fault it got (when the server records)."""
        if self.config.record:
            headers = {k.lower(): v for k, v in request.headers.items()}
            self.seen.append(Seen(request.path, body, fault.kind if fault else None, headers))

    def pick_fault(self, raw: bytes, in_flight: int = 0) -> Fault | None:
        """The fault for a request (or a batch's line) whose body is `raw`, with `in_flight` at once."""
        return self._faults.pick(self.config.faults, raw, in_flight)
