"""`batchgpt mock-server`: an OpenAI-compatible server on 127.0.0.1 for tests and rehearsals.

It answers like the real API (see the shared API facts): the documented error bodies and codes,
`x-ratelimit-*`, `retry-after` and `retry-after-ms` headers, `usage` counted with tiktoken as
the API counts it, and server-sent events with `stream_options.include_usage`. Answers are
deterministic and say which request they answer (a chat reply echoes the last user message).
Faults are injected on demand, at a rate or for the first N attempts of each distinct request.
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
from typing import Any

from aiohttp import web

from .tokens import Counter

FAULT_KINDS = ("500", "503", "429", "429-no-retry-after", "quota", "401", "400", "drop", "hang", "malformed")


@dataclass
class Fault:
    """Inject `kind` into matching requests: at `rate`, or for the `first` N attempts of each body."""

    kind: str
    rate: float = 1.0
    first: int | None = None
    match: str | None = None  # only requests whose body contains this text

    @classmethod
    def parse(cls, spec: str) -> "Fault":
        """'500', '503:0.1', '429:first=2', 'hang:first=1', '400:match=BAD'."""
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
            else:
                raise ValueError(f"unknown fault option {key!r}")
        return fault


@dataclass
class Config:
    api_key: str | None = None
    latency: float = 0.0
    rpm: float | None = None
    tpm: float | None = None
    faults: list[Fault] = field(default_factory=list)
    seed: int = 0
    hang_s: float = 30.0
    record: bool = True  # keep a log of requests (tests read it; a benchmark turns it off)


@dataclass
class Seen:
    path: str
    body: Any
    fault: str | None
    headers: dict[str, str]


class _Bucket:
    """A token bucket like the API's: full at start, refilled continuously."""

    def __init__(self, per_minute: float):
        self.capacity = per_minute
        self.level = per_minute
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


def error_body(message: str, type_: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class MockServer:
    def __init__(self, config: Config | None = None):
        self.config = config or Config()
        self.seen: list[Seen] = []
        self.counter = Counter()
        self._attempts: dict[str, int] = {}
        self._random = random.Random(self.config.seed)
        self._requests = _Bucket(self.config.rpm) if self.config.rpm else None
        self._tokens = _Bucket(self.config.tpm) if self.config.tpm else None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ------------------------------------------------------------------ app

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 2**20)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/completions", self._completion)
        app.router.add_get("/v1/models", self._models)
        return app

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, port: int = 0) -> "MockServer":
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

    async def _models(self, request: web.Request) -> web.Response:
        denied = self._check_key(request)
        if denied:
            return denied
        names = ["gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-5", "text-embedding-3-small"]
        return web.json_response({"object": "list", "data": [{"id": n, "object": "model", "owned_by": "mock"} for n in names]})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._answer(request, chat=True)

    async def _completion(self, request: web.Request) -> web.StreamResponse:
        return await self._answer(request, chat=False)

    async def _answer(self, request: web.Request, chat: bool) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            return web.json_response(error_body("We could not parse the JSON body of your request.",
                                                "invalid_request_error", None), status=400)
        fault = self._fault(raw)
        self._record(request, body, fault)
        if self.config.latency:
            await asyncio.sleep(self.config.latency)
        denied = self._check_key(request)
        if denied:
            return denied
        invalid = _invalid(body, chat)
        if invalid:
            return web.json_response(invalid, status=400)
        prompt_tokens = (self.counter.messages(body["model"], body["messages"]) if chat
                         else self.counter.text(body["model"], str(body["prompt"]))).tokens
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or (None if chat else 16)
        headers, limited = self._rate_limit(prompt_tokens + (max_tokens or 0))
        if limited is not None:
            return limited
        if fault is not None:
            injected = await self._inject(fault, request)
            if injected is not None:
                injected.headers.update(headers)
                return injected
        text, finish = self._reply_text(body, chat, max_tokens)
        completion_tokens = self.counter.text(body["model"], text).tokens
        usage = {
            "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
        }
        ident = "chatcmpl-" + hashlib.sha1(raw).hexdigest()[:24] if chat else "cmpl-" + hashlib.sha1(raw).hexdigest()[:24]
        if body.get("stream"):
            return await self._stream(request, headers, ident, body, text, finish, usage, chat)
        choice: dict[str, Any] = {"index": 0, "finish_reason": finish, "logprobs": None}
        if chat:
            choice["message"] = {"role": "assistant", "content": text, "refusal": None}
        else:
            choice["text"] = text
        answer = {"id": ident, "object": "chat.completion" if chat else "text_completion",
                  "created": 1700000000, "model": body["model"], "choices": [choice], "usage": usage,
                  "system_fingerprint": "fp_mock"}
        return web.json_response(answer, headers=headers, dumps=lambda o: json.dumps(o, ensure_ascii=False))

    def _reply_text(self, body: dict[str, Any], chat: bool, max_tokens: int | None) -> tuple[str, str]:
        if chat:
            messages = body["messages"]
            last = next((m for m in reversed(messages) if m.get("role") == "user"), messages[-1])
            said = _text(last.get("content"))
            wants_code = any("code" in _text(m.get("content")) for m in messages if m.get("role") in ("system", "developer"))
            text = f"```python\n# {said}\nprint({said!r})\n```" if wants_code else f"Echo: {said}"
        else:
            text = f"Echo: {body['prompt']}"
        if max_tokens is not None:
            encoding = self.counter._encoding("o200k_base")
            if encoding is not None:
                tokens = encoding.encode_ordinary(text)
                if len(tokens) > max_tokens:
                    return encoding.decode(tokens[:max_tokens]), "length"
        return text, "stop"

    async def _stream(self, request: web.Request, headers: dict[str, str], ident: str, body: dict[str, Any],
                      text: str, finish: str, usage: dict[str, Any], chat: bool) -> web.StreamResponse:
        response = web.StreamResponse(headers={**headers, "Content-Type": "text/event-stream"})
        await response.prepare(request)
        include_usage = (body.get("stream_options") or {}).get("include_usage")
        kind = "chat.completion.chunk" if chat else "text_completion"
        pieces = [text[i:i + 8] for i in range(0, len(text), 8)] or [""]

        def event(choices: list[dict[str, Any]], usage_: Any = None) -> bytes:
            chunk = {"id": ident, "object": kind, "created": 1700000000, "model": body["model"],
                     "choices": choices, "usage": usage_}
            return b"data: " + json.dumps(chunk, ensure_ascii=False).encode() + b"\n\n"

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
        return web.json_response(error_body(f"Incorrect API key provided: {shown}. You can find your API key at "
                                            "https://platform.openai.com/account/api-keys.",
                                            "invalid_request_error", "invalid_api_key"), status=401)

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
            if fault.first is not None:
                if attempt <= fault.first:
                    return fault
            elif self._random.random() < fault.rate:
                return fault
        return None

    async def _inject(self, fault: Fault, request: web.Request) -> web.StreamResponse | None:
        kind = fault.kind
        if kind in ("500", "503"):
            message = "The server had an error while processing your request. Sorry about that!" if kind == "500" \
                else "The engine is currently overloaded, please try again later"
            return web.json_response(error_body(message, "server_error", None), status=int(kind))
        if kind in ("429", "429-no-retry-after"):
            headers = {"retry-after": "1", "retry-after-ms": "50"} if kind == "429" else {}
            return web.json_response(error_body("Rate limit reached for requests. Please try again in 50ms.",
                                                "requests", "rate_limit_exceeded"), status=429, headers=headers)
        if kind == "quota":
            return web.json_response(error_body("You exceeded your current quota, please check your plan and "
                                                "billing details.", "insufficient_quota", "insufficient_quota"), status=429)
        if kind == "401":
            return web.json_response(error_body("Incorrect API key provided.", "invalid_request_error",
                                                "invalid_api_key"), status=401)
        if kind == "400":
            return web.json_response(error_body("This model's maximum context length is 128000 tokens.",
                                                "invalid_request_error", "context_length_exceeded", "messages"), status=400)
        if kind == "malformed":
            return web.Response(body=b'{"choices": [{"message": ', content_type="application/json")
        if kind == "hang":
            await asyncio.sleep(self.config.hang_s)
            return None
        if kind == "drop":
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError
        return None

    def _rate_limit(self, cost: int) -> tuple[dict[str, str], web.Response | None]:
        headers: dict[str, str] = {"x-request-id": f"req_{self._random.getrandbits(64):016x}"}
        limited = None
        for name, bucket, amount in (("requests", self._requests, 1), ("tokens", self._tokens, cost)):
            if bucket is None:
                continue
            ok = bucket.take(amount)
            headers[f"x-ratelimit-limit-{name}"] = str(int(bucket.capacity))
            headers[f"x-ratelimit-remaining-{name}"] = str(int(bucket.level))
            headers[f"x-ratelimit-reset-{name}"] = duration(bucket.reset_in())
            if not ok and limited is None:
                wait = bucket.wait_for(amount)
                limited = web.json_response(
                    error_body(f"Rate limit reached for gpt-4o-mini on {name} per min (RPM/TPM): Limit "
                               f"{int(bucket.capacity)}. Please try again in {duration(wait)}.", name, "rate_limit_exceeded"),
                    status=429, headers={**headers, "retry-after": str(max(1, math.ceil(wait))),
                                         "retry-after-ms": str(max(1, int(wait * 1000)))})
        return headers, limited


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def _invalid(body: Any, chat: bool) -> dict[str, Any] | None:
    """The 400s the real API gives for the mistakes a batch job can make."""
    if not isinstance(body, dict) or not body.get("model"):
        return error_body("you must provide a model parameter", "invalid_request_error", None, "model")
    if chat:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return error_body("'messages' must contain at least one message", "invalid_request_error", None, "messages")
        if "max_tokens" in body and str(body["model"]).startswith(("o1", "o3", "o4", "gpt-5")):
            return error_body("Unsupported parameter: 'max_tokens' is not supported with this model. Use "
                              "'max_completion_tokens' instead.", "invalid_request_error", "unsupported_parameter",
                              "max_tokens")
    elif "prompt" not in body:
        return error_body("you must provide a prompt parameter", "invalid_request_error", None, "prompt")
    return None
