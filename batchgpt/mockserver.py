"""`batchgpt mock-server`: an OpenAI-compatible server on 127.0.0.1 for tests and rehearsals.

It answers like the real API (see the shared API facts): the documented error bodies and codes,
`x-ratelimit-*`, `retry-after` and `retry-after-ms` headers, `usage` counted with tiktoken as
the API counts it, and server-sent events with `stream_options.include_usage`. Answers are
deterministic and say which request they answer (a chat reply echoes the last user message).
Faults are injected on demand: at a rate, for the first N attempts of each distinct request, or
for the first N seconds. Rate limits are per model, as the API's are, and like the API's they may
be enforced over a window shorter than their minute (`window`), so a burst can be refused while
the per-minute figure is kept. Every answer's status is logged for tests and benchmarks to count.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from aiohttp import web

from . import mockapi
from .mockapi import error_body
from .tokens import Counter

ENDPOINTS = {
    "/chat/completions": "chat",
    "/completions": "completion",
    "/embeddings": "embeddings",
    "/moderations": "moderations",
    "/images/generations": "images",
    "/audio/speech": "speech",
    "/audio/transcriptions": "transcriptions",
}
FAULT_KINDS = (
    "500",
    "503",
    "429",
    "429-no-retry-after",
    "quota",
    "401",
    "400",
    "drop",
    "hang",
    "malformed",
    # hostile or broken servers: an error echoing the request's headers (keys included),
    # redirects, usage that is no count, streams cut short of [DONE] or split inside a
    # character, and a server that ignores `stream: true`
    "echo-headers",
    "307",
    "301",
    "usage-strings",
    "usage-negative",
    "no-done",
    "split-emoji",
    "ignore-stream",
)
ANSWER_FAULTS = ("usage-strings", "usage-negative", "no-done", "split-emoji", "ignore-stream")


@dataclass
class Fault:
    """Inject `kind` into matching requests: at `rate`, for the `first` N attempts of each body, or
    to every request during the first `seconds` after the first one the server sees."""

    kind: str
    rate: float = 1.0
    first: int | None = None
    match: str | None = None  # only requests whose body contains this text
    seconds: float | None = None

    @classmethod
    def parse(cls, spec: str) -> Fault:
        """'500', '503:0.1', '429:first=2', 'hang:first=1', '400:match=BAD', '429:for=20'."""
        kind, _, rest = spec.partition(":")
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; use one of {', '.join(FAULT_KINDS)}")
        fault = cls(kind)
        for part in filter(None, rest.split(",")):
            key, eq, value = part.partition("=")
            if not eq:
                fault.rate = float(key)
            elif key == "first":
                fault.first = int(value)
            elif key == "match":
                fault.match = value
            elif key == "for":
                fault.seconds = float(value)
            else:
                raise ValueError(f"unknown fault option {key!r}")
        return fault


@dataclass
class Config:
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


@dataclass
class Seen:
    path: str
    body: Any
    fault: str | None
    headers: dict[str, str]


class _Bucket:
    """A token bucket like the API's: full at start, refilled continuously at `per_minute`, holding
    `window` seconds of it (the API's per-minute figure, enforced over a shorter period)."""

    def __init__(self, per_minute: float, window: float = 60.0):
        self.per_minute = per_minute
        self.capacity = max(1.0, per_minute * window / 60.0)
        self.level = self.capacity
        self.rate = per_minute / 60.0
        self.stamp = time.monotonic()

    def refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def take(self, amount: float) -> bool:
        self.refill()
        if self.level >= amount:
            self.level -= amount
            return True
        return False

    def reset_in(self) -> float:
        return (self.capacity - self.level) / self.rate

    def wait_for(self, amount: float) -> float:
        return max(0.0, (min(amount, self.capacity) - self.level) / self.rate)


def duration(seconds: float) -> str:
    """The API's reset format: '12ms', '1s', '1.5s', '6m0s'."""
    if seconds < 1:
        return f"{int(seconds * 1000)}ms"
    if seconds < 60:
        return f"{round(seconds, 3):g}s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{round(rest, 3):g}s"


class MockServer:
    def __init__(self, config: Config | None = None):
        self.config = config or Config()
        self.seen: list[Seen] = []
        self.counter = Counter()
        self._attempts: dict[str, int] = {}
        self._random = random.Random(self.config.seed)
        self._buckets: dict[tuple[str, str], _Bucket] = {}  # (model, requests|tokens)
        self._fault_clock: dict[int, float] = {}  # id(fault): when its `for=` window opened
        self.answers: list[tuple[float, int]] = []  # (monotonic time, status) of every answer, when recording
        self.in_flight = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ------------------------------------------------------------------ app

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 2**20, middlewares=[self._account])
        for path, kind in ENDPOINTS.items():
            app.router.add_post(f"/v1{path}", partial(self._post, kind=kind))
            app.router.add_post(f"/openai/deployments/{{deployment}}{path}", partial(self._post, kind=kind))
        app.router.add_get("/v1/models", self._models)
        for prefix in ("", "/v1"):
            app.router.add_get(f"{prefix}/dashboard/billing/subscription", self._subscription)
            app.router.add_get(f"{prefix}/dashboard/billing/usage", self._usage)
        return app

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, port: int = 0) -> MockServer:
        """Serve on a thread of its own (for tests); returns once the port is bound."""
        ready = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self._start(port))
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, name="mock-server", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    async def _start(self, port: int, host: str = "127.0.0.1") -> None:
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
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
        web.run_app(self.app(), host=host, port=port, access_log=None, print=None)

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
                    error_body("The engine is currently overloaded, please try again later", "server_error", None),
                    status=503,
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
        denied = self._check_key(request)
        if denied:
            return denied
        names = ["gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-5", "text-embedding-3-small"]
        return web.json_response(
            {"object": "list", "data": [{"id": n, "object": "model", "owned_by": "mock"} for n in names]}
        )

    def _billing(self, request: web.Request) -> tuple[float, float]:
        """(hard limit, used); raises the 401 or the 404 (no billing routes) instead."""
        denied = self._check_key(request)
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
        deployment = request.match_info.get("deployment")
        if deployment is not None:  # Azure: the deployment names the model; api-version is required
            if not request.query.get("api-version"):
                return web.json_response(
                    error_body(
                        "Missing required query parameter: api-version", "invalid_request_error", "missing_api_version"
                    ),
                    status=400,
                )
            body.setdefault("model", deployment)
        fault = self._fault(raw)
        self._record(request, body, fault)
        if self.config.latency:
            await asyncio.sleep(self.config.latency)
        denied = self._check_key(request)
        if denied:
            return denied
        problem = mockapi.invalid(kind, body, self.counter) if kind != "transcriptions" else _invalid_upload(body)
        if problem:
            return web.json_response(problem, status=400)
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or (16 if kind == "completion" else 0)
        headers, limited = self._rate_limit(
            str(body.get("model", "")), mockapi.prompt_tokens(kind, body, self.counter) + int(max_tokens)
        )
        if limited is not None:
            return limited
        if fault is not None:
            injected = await self._inject(fault, request)
            if injected is not None:
                injected.headers.update(headers)
                return injected
        if kind in ("chat", "completion"):
            return await self._complete(
                request,
                body,
                raw,
                headers,
                kind == "chat",
                fault.kind if fault and fault.kind in ANSWER_FAULTS else None,
            )
        if kind == "speech":
            audio, content_type = mockapi.speech(body)
            return web.Response(body=audio, content_type=content_type, headers=headers)
        if kind == "transcriptions":
            filename, data = body["_file"]
            answer, content_type = mockapi.transcription(
                {k: v for k, v in body.items() if k != "_file"}, filename, data
            )
            if content_type == "text/plain":
                return web.Response(text=answer, content_type="text/plain", headers=headers)
            return self._json(answer, headers)
        answer = {
            "embeddings": lambda: mockapi.embeddings(body, self.counter),
            "moderations": lambda: mockapi.moderations(body),
            "images": lambda: mockapi.images(body, self.counter),
        }[kind]()
        return self._json(answer, headers)

    @staticmethod
    def _json(answer: Any, headers: dict[str, str]) -> web.Response:
        return web.json_response(answer, headers=headers, dumps=lambda o: json.dumps(o, ensure_ascii=False))

    async def _complete(
        self,
        request: web.Request,
        body: dict[str, Any],
        raw: bytes,
        headers: dict[str, str],
        chat: bool,
        fault: str | None = None,
    ) -> web.StreamResponse:
        prompt_tokens = mockapi.prompt_tokens("chat" if chat else "completion", body, self.counter)
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or (None if chat else 16)
        text, finish = self._reply_text(body, chat, max_tokens)
        each = body.get("n") if isinstance(body.get("n"), int) else 1  # n answers, as many billed
        completion_tokens = self.counter.text(body["model"], text).tokens * each
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        if fault == "usage-strings":
            usage = {k: str(v) if isinstance(v, int) else v for k, v in usage.items()}
        elif fault == "usage-negative":
            usage = {**usage, "prompt_tokens": -prompt_tokens * 1000, "total_tokens": -prompt_tokens * 1000}
        elif fault == "split-emoji":  # padded so that the emoji's two UTF-16 halves fall in two events
            text += " " * ((7 - len(text.encode("utf-16-le")) // 2) % 8) + "\U0001f600"
        ident = (
            "chatcmpl-" + hashlib.sha1(raw).hexdigest()[:24] if chat else "cmpl-" + hashlib.sha1(raw).hexdigest()[:24]
        )
        if body.get("stream") and fault != "ignore-stream":
            return await self._stream(request, headers, ident, body, text, finish, usage, chat, fault)
        choices = []
        for index in range(each):
            choice: dict[str, Any] = {"index": index, "finish_reason": finish, "logprobs": None}
            if chat:
                choice["message"] = {"role": "assistant", "content": text, "refusal": None}
            else:
                choice["text"] = text
            choices.append(choice)
        answer = {
            "id": ident,
            "object": "chat.completion" if chat else "text_completion",
            "created": 1700000000,
            "model": body["model"],
            "choices": choices,
            "usage": usage,
            "system_fingerprint": "fp_mock",
        }
        return web.json_response(answer, headers=headers, dumps=lambda o: json.dumps(o, ensure_ascii=False))

    def _reply_text(self, body: dict[str, Any], chat: bool, max_tokens: int | None) -> tuple[str, str]:
        if chat:
            messages = body["messages"]
            last = next((m for m in reversed(messages) if m.get("role") == "user"), messages[-1])
            said = _text(last.get("content"))
            wants_code = any(
                "code" in _text(m.get("content")) for m in messages if m.get("role") in ("system", "developer")
            )
            text = f"```python\n# {said}\nprint({said!r})\n```" if wants_code else f"Echo: {said}"
        else:
            text = f"Echo: {body['prompt']}"
        if max_tokens is not None:
            encoding = self.counter.encoding("o200k_base")
            if encoding is not None:
                tokens = encoding.encode_ordinary(text)
                if len(tokens) > max_tokens:
                    return encoding.decode(tokens[:max_tokens]), "length"
        return text, "stop"

    async def _stream(
        self,
        request: web.Request,
        headers: dict[str, str],
        ident: str,
        body: dict[str, Any],
        text: str,
        finish: str,
        usage: dict[str, Any],
        chat: bool,
        fault: str | None = None,
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={**headers, "Content-Type": "text/event-stream"})
        await response.prepare(request)
        include_usage = (body.get("stream_options") or {}).get("include_usage")
        kind = "chat.completion.chunk" if chat else "text_completion"
        # Pieces of 8 UTF-16 code units: `split-emoji` then cuts a character between two events,
        # each half a lone surrogate escaped in its own JSON string.
        units = text.encode("utf-16-le", "surrogatepass")
        pieces = [units[i : i + 16].decode("utf-16-le", "surrogatepass") for i in range(0, len(units), 16)] or [""]
        if fault != "split-emoji":
            pieces = [text[i : i + 8] for i in range(0, len(text), 8)] or [""]

        def event(choices: list[dict[str, Any]], usage_: Any = None) -> bytes:
            chunk = {
                "id": ident,
                "object": kind,
                "created": 1700000000,
                "model": body["model"],
                "choices": choices,
                "usage": usage_,
            }
            return b"data: " + json.dumps(chunk, ensure_ascii=fault == "split-emoji").encode() + b"\n\n"

        for n, piece in enumerate(pieces):
            last = n == len(pieces) - 1
            choice: dict[str, Any] = {"index": 0, "finish_reason": finish if last else None}
            if chat:
                choice["delta"] = {"content": piece} if n else {"role": "assistant", "content": piece}
            else:
                choice["text"] = piece
            await response.write(event([choice]))
        if include_usage:
            await response.write(event([], usage))
        if fault != "no-done":
            await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    # ------------------------------------------------------------------ behaviour

    def _record(self, request: web.Request, body: Any, fault: Fault | None) -> None:
        if self.config.record:
            headers = {k.lower(): v for k, v in request.headers.items()}
            self.seen.append(Seen(request.path, body, fault.kind if fault else None, headers))

    def _check_key(self, request: web.Request) -> web.Response | None:
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

    def _fault(self, raw: bytes) -> Fault | None:
        if not self.config.faults:
            return None
        attempt = 0
        if any(f.first is not None for f in self.config.faults):  # counting costs memory per distinct body
            digest = hashlib.sha1(raw).hexdigest()
            attempt = self._attempts[digest] = self._attempts.get(digest, 0) + 1
        text = raw.decode("utf-8", "replace")
        for fault in self.config.faults:
            if fault.match is not None and fault.match not in text:
                continue
            if fault.seconds is not None:
                opened = self._fault_clock.setdefault(id(fault), time.monotonic())
                if time.monotonic() - opened < fault.seconds:
                    return fault
            elif fault.first is not None:
                if attempt <= fault.first:
                    return fault
            elif self._random.random() < fault.rate:
                return fault
        return None

    async def _inject(self, fault: Fault, request: web.Request) -> web.StreamResponse | None:
        kind = fault.kind
        if kind in ("500", "503"):
            message = (
                "The server had an error while processing your request. Sorry about that!"
                if kind == "500"
                else "The engine is currently overloaded, please try again later"
            )
            return web.json_response(error_body(message, "server_error", None), status=int(kind))
        if kind in ("429", "429-no-retry-after"):
            headers = {"retry-after": "1", "retry-after-ms": "50"} if kind == "429" and self.config.retry_after else {}
            return web.json_response(
                error_body(
                    "Rate limit reached for requests. Please try again in 50ms.", "requests", "rate_limit_exceeded"
                ),
                status=429,
                headers=headers,
            )
        if kind == "quota":
            return web.json_response(
                error_body(
                    "You exceeded your current quota, please check your plan and billing details.",
                    "insufficient_quota",
                    "insufficient_quota",
                ),
                status=429,
            )
        if kind == "401":
            return web.json_response(
                error_body("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"), status=401
            )
        if kind == "400":
            return web.json_response(
                error_body(
                    "This model's maximum context length is 128000 tokens.",
                    "invalid_request_error",
                    "context_length_exceeded",
                    "messages",
                ),
                status=400,
            )
        if kind == "malformed":
            return web.Response(body=b'{"choices": [{"message": ', content_type="application/json")
        if kind == "echo-headers":  # as some proxies do: the request's headers, keys and all, in the error
            seen = "; ".join(f"{k}: {v}" for k, v in request.headers.items())
            return web.json_response(
                error_body(f"Bad request. Headers received: {seen}", "invalid_request_error", None), status=400
            )
        if kind in ("307", "301"):
            target = (self.config.redirect_to or f"http://127.0.0.1:{self.port}/moved/v1").rstrip("/")
            path = request.path.removeprefix("/v1")
            raise (web.HTTPTemporaryRedirect if kind == "307" else web.HTTPMovedPermanently)(target + path)
        if kind == "hang":
            await asyncio.sleep(self.config.hang_s)
            return None
        if kind == "drop":
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError
        return None

    def _rate_limit(self, model: str, cost: int) -> tuple[dict[str, str], web.Response | None]:
        headers: dict[str, str] = {"x-request-id": f"req_{self._random.getrandbits(64):016x}"}
        limited = None
        for name, per_minute, amount in (("requests", self.config.rpm, 1), ("tokens", self.config.tpm, cost)):
            if not per_minute:
                continue
            bucket = self._buckets.get((model, name))
            if bucket is None:
                bucket = self._buckets[(model, name)] = _Bucket(per_minute, self.config.window)
            ok = bucket.take(amount)
            if self.config.limit_headers:
                headers[f"x-ratelimit-limit-{name}"] = str(int(bucket.per_minute))
                headers[f"x-ratelimit-remaining-{name}"] = str(int(bucket.level))
                headers[f"x-ratelimit-reset-{name}"] = duration(bucket.reset_in())
            if not ok and limited is None:
                wait = bucket.wait_for(amount)
                retry = {"retry-after": str(max(1, math.ceil(wait))), "retry-after-ms": str(max(1, int(wait * 1000)))}
                limited = web.json_response(
                    error_body(
                        f"Rate limit reached for {model} on {name} per min (RPM/TPM): Limit "
                        f"{int(bucket.per_minute)}. Please try again in {duration(wait)}.",
                        name,
                        "rate_limit_exceeded",
                    ),
                    status=429,
                    headers={**headers, **(retry if self.config.retry_after else {})},
                )
        return headers, limited


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def _invalid_upload(body: dict[str, Any]) -> dict[str, Any] | None:
    if "_file" not in body:
        return error_body("'file' is a required property", "invalid_request_error", None, "file")
    if not body.get("model"):
        return error_body("'model' is a required property", "invalid_request_error", None, "model")
    return None
