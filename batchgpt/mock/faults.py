"""The mock server's faults: what a `--fault` spec means, which request gets which fault, and the
broken answer each fault gives.

A fault applies at a rate, to the first N attempts of each distinct request body (`first=`), or to
every request for a number of seconds from the first one it sees (`for=`), and optionally only to
bodies holding some text (`match=`) or only while more than N requests are in flight (`over=`:
`hang:over=4` is a relay that queues what passes its limit, holds it, then answers, as LiteLLM
does). The error faults answer the documented error bodies (see the shared API facts); the
hostile ones answer as broken servers and proxies do. The answer faults (ANSWER_FAULTS) inject
nothing here: the answer itself comes out broken (see chat.py and streaming.py).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import random
import re
import struct
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aiohttp import web

from .echoes import echoed, key_location
from .errors import error_body

FAULT_KINDS = (
    "500",
    "503",
    "429",
    "429-no-retry-after",
    "quota",
    # an empty quota as LiteLLM's proxy relays it: OpenAI's message kept, its type and code rewritten
    "quota-relayed",
    "401",
    "400",
    # a misconfigured run's refusals: a region (or a project) the key may not use, an unknown model
    "403",
    "model-not-found",
    "drop",
    "hang",
    "malformed",
    # hostile or broken servers: an error echoing the request's headers (keys included),
    # redirects, usage that is no count, streams cut short of [DONE] or split inside a
    # character, and a server that ignores `stream: true`; an answer without usage
    "echo-headers",
    "307",
    "301",
    # a relay echoing the request's headers in every encoding (echoes.py), in an error or in an
    # answer's text (a 200), and a redirect to a URL that holds the key
    "echo-encoded",
    "echo-encoded-answer",
    "redirect-key",
    "gzip-bomb",  # a 200 of 0.6 MB of gzip that inflates to 600 MiB (BOMB_MIB) of JSON
    "usage-strings",
    "usage-negative",
    "no-usage",
    "no-done",
    "split-emoji",
    "ignore-stream",
    # structured outputs: an answer that misses its schema, a refusal, or a recursive schema's
    # answer nested as many levels as the first number in the request (schema.py)
    "schema-miss",
    "refusal",
    "schema-deep",
)
# the answer itself comes out broken: every kind listed from the first of them on
ANSWER_FAULTS = FAULT_KINDS[FAULT_KINDS.index("usage-strings") :]
REDIRECTS = ("307", "301", "redirect-key")  # the faults the GET routes (billing) take too
OVERLOADED = "The engine is currently overloaded, please try again later"

# kind: (status, message, type, code, param) of the error the API answers
ERRORS: dict[str, tuple[int, str, str, str | None, str | None]] = {
    "500": (
        500,
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
        None,
    ),
    "503": (503, OVERLOADED, "server_error", None, None),
    "429": (
        429,
        "Rate limit reached for requests. Please try again in 50ms.",
        "requests",
        "rate_limit_exceeded",
        None,
    ),
    "quota": (
        429,
        "You exceeded your current quota, please check your plan and billing details.",
        "insufficient_quota",
        "insufficient_quota",
        None,
    ),
    "quota-relayed": (
        429,
        "litellm.RateLimitError: RateLimitError: OpenAIException - You exceeded your current quota, please check "
        "your plan and billing details.\n\nLiteLLM: model group 'gpt-4o-mini' failed with the error above.",
        "throttling_error",
        "429",
        None,
    ),
    "401": (401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key", None),
    "400": (
        400,
        "This model's maximum context length is 128000 tokens.",
        "invalid_request_error",
        "context_length_exceeded",
        "messages",
    ),
    "403": (
        403,
        "Country, region, or territory not supported",
        "request_forbidden",
        "unsupported_country_region_territory",
        None,
    ),
    "model-not-found": (
        404,
        "The model does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
        None,
    ),
}
ERRORS["429-no-retry-after"] = ERRORS["429"]


@dataclass
class Fault:
    """Inject `kind` into matching requests: at `rate`, for the `first` N attempts of each body, or
    to every request during the first `seconds` after the first one the server sees."""

    kind: str
    rate: float = 1.0
    first: int | None = None
    match: str | None = None  # only requests whose body contains this text
    seconds: float | None = None
    over: int | None = None  # only while more than this many requests are in flight, this one included

    @classmethod
    def parse(cls, spec: str) -> Fault:
        """'500', '503:0.1', '429:first=2', 'hang:first=1', '400:match=BAD', '400,match=BAD' (as
        --help writes it: KIND[:RATE|:first=N|:for=S][,match=TEXT][,over=N]), '429:for=20', 'hang:over=4'."""
        kind, rest = (re.split("[:,]", spec, maxsplit=1) + [""])[:2]  # the kind ends at either
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; use one of {', '.join(FAULT_KINDS)}")
        fault = cls(kind)
        for part in filter(None, rest.split(",")):
            key, eq, value = part.partition("=")
            if not eq:
                try:
                    fault.rate = float(key)
                except ValueError:
                    raise ValueError(f"fault {spec!r}: {key!r} is no rate (a share such as 0.1)") from None
            elif key == "first":
                fault.first = int(value)
            elif key == "match":
                fault.match = value
            elif key == "for":
                fault.seconds = float(value)
            elif key == "over":
                fault.over = int(value)
            else:
                raise ValueError(f"unknown fault option {key!r}")
        return fault


class FaultPicker:
    """Which fault, if any, each request gets: the first of the faults that applies to it.

    It keeps what the faults need remembered: how often each distinct body was sent (`first=`) and
    when each `for=` window opened. `rng` decides the rated faults (the server shares it, so one
    seed fixes a whole run) and `clock` times the windows.
    """

    def __init__(self, rng: random.Random, clock: Callable[[], float] = time.monotonic) -> None:
        self._rng = rng
        self._clock = clock
        self._attempts: dict[str, int] = {}  # sha1 of a body: attempts seen
        # id(fault): (the fault, kept so its id is not reused; when its `for=` window opened)
        self._opened: dict[int, tuple[Fault, float]] = {}

    def pick(self, faults: Sequence[Fault], raw: bytes, in_flight: int = 0) -> Fault | None:
        """The fault for a request whose body is `raw`, among `faults` (read afresh each time, as
        tests change them on a running server), with `in_flight` requests (itself included) at once."""
        if not faults:
            return None
        attempt = self._attempt(raw) if any(f.first is not None for f in faults) else 0
        text = raw.decode("utf-8", "replace")
        for fault in faults:
            if fault.match is not None and fault.match not in text:
                continue
            if fault.over is not None and in_flight <= fault.over:
                continue
            if self._applies(fault, attempt):
                return fault
        return None

    def _attempt(self, raw: bytes) -> int:
        # Counted only when a `first=` fault needs it: it costs memory per distinct body.
        digest = hashlib.sha1(raw).hexdigest()
        attempt = self._attempts[digest] = self._attempts.get(digest, 0) + 1
        return attempt

    def _applies(self, fault: Fault, attempt: int) -> bool:
        if fault.seconds is not None:
            opened = self._opened.setdefault(id(fault), (fault, self._clock()))[1]
            return self._clock() - opened < fault.seconds
        if fault.first is not None:
            return attempt <= fault.first
        return self._rng.random() < fault.rate


async def inject(
    fault: Fault, request: web.Request, *, retry_after: bool, redirect_to: str, hang_s: float
) -> web.StreamResponse | None:
    """The broken answer `fault` gives, or None when the request goes on to be answered (after
    `hang`, and for the answer faults). `redirect_to` is the base URL the redirects point to."""
    kind = fault.kind
    if kind in ERRORS:
        status, message, type_, code, param = ERRORS[kind]
        # a rate-limit 429 says when to retry, unless the server is one that does not; quota never does
        headers = {"retry-after": "1", "retry-after-ms": "50"} if kind == "429" and retry_after else {}
        return web.json_response(error_body(message, type_, code, param), status=status, headers=headers)
    if kind == "malformed":
        return web.Response(body=b'{"choices": [{"message": ', content_type="application/json")
    if kind == "echo-headers":  # as some proxies do: the request's headers, keys and all, in the error
        seen = "; ".join(f"{k}: {v}" for k, v in request.headers.items())
        return web.json_response(
            error_body(f"Bad request. Headers received: {seen}", "invalid_request_error", None), status=400
        )
    if kind in ("echo-encoded", "echo-encoded-answer"):
        return await echoed(request, answer=kind == "echo-encoded-answer")
    if kind == "redirect-key":
        raise web.HTTPTemporaryRedirect(key_location(request, redirect_to))
    if kind == "gzip-bomb":
        return web.Response(
            body=gzip_bomb(BOMB_MIB), content_type="application/json", headers={"Content-Encoding": "gzip"}
        )
    if kind in ("307", "301"):
        path = request.path.removeprefix("/v1")
        raise (web.HTTPTemporaryRedirect if kind == "307" else web.HTTPMovedPermanently)(redirect_to.rstrip("/") + path)
    if kind == "hang":
        await asyncio.sleep(hang_s)
    elif kind == "drop":
        if request.transport is not None:
            request.transport.abort()
        raise asyncio.CancelledError
    return None


BOMB_MIB = 600
_BOMB_HEAD = (
    b'{"id": "chatcmpl-bomb", "object": "chat.completion", "created": 1700000000, "model": "gpt-4o-mini", '
    b'"choices": [{"index": 0, "message": {"role": "assistant", "content": "'
)
_BOMB_TAIL = (
    b'"}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}}'
)


@functools.cache
def gzip_bomb(mib: int) -> bytes:
    """A chat answer whose text is `mib` MiB of "x", as one gzip stream of about 1 KB a MiB: the
    MiB deflated once, after a full flush (which makes a block stand alone), and repeated."""
    text = b"x" * 2**20
    raw = -zlib.MAX_WBITS

    def deflated(data: bytes, flush: int) -> bytes:
        compressor = zlib.compressobj(9, zlib.DEFLATED, raw)
        return compressor.compress(data) + compressor.flush(flush)

    crc = zlib.crc32(_BOMB_HEAD)
    for _ in range(mib):
        crc = zlib.crc32(text, crc)
    crc = zlib.crc32(_BOMB_TAIL, crc)
    length = len(_BOMB_HEAD) + (mib << 20) + len(_BOMB_TAIL)
    body = deflated(_BOMB_HEAD, zlib.Z_FULL_FLUSH) + deflated(text, zlib.Z_FULL_FLUSH) * mib
    body += deflated(_BOMB_TAIL, zlib.Z_FINISH)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + body + struct.pack("<II", crc, length & 0xFFFFFFFF)
