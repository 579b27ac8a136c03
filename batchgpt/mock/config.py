"""What the mock server is told and what it keeps: its settings (Config, which tests change while it
runs), the log of requests it saw (Seen), and Host, what its route tables (online.py, account.py,
batch.py) ask of the server that holds them, so that they need not import the server itself."""

from __future__ import annotations

import random
import ssl
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from batchgpt.tokens import Counter

from .faults import Fault
from .reading import MAX_FILE_BYTES, MAX_JSON_BYTES


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
    batch_delay: float = 0.0  # seconds a batch takes to complete (batch.py)
    batch_expire: float | None = None  # a batch expires with this share of its lines answered
    batch_invalid: str | None = None  # batch lines holding this text fail validation
    batch_create_delay: float = 0.0  # seconds the answer to a batch's creation waits after it exists
    batch_create_errors: int = 0  # the next N creations answer 500 (and create nothing)
    batch_list_errors: int = 0  # the next N lists of batches answer 500
    batch_refused_models: tuple[str, ...] = ()  # models the Batch API refuses (400 at creation)
    tls: ssl.SSLContext | None = None  # serve https with this certificate (tests of the TLS transport)
    max_body: int = MAX_JSON_BYTES  # a JSON body's cap in bytes: past it, 413 (reading.py)
    max_upload: int = MAX_FILE_BYTES  # a file upload's cap in bytes (/files): past it, 413
    # the models that exist: others get the API's 404 model_not_found; None: any model name is served
    # (tests and rehearsals name models of every provider)
    models: tuple[str, ...] | None = None


@dataclass
class Seen:
    """A request as the server saw it: its path, body, the fault it got and its headers (lowercased)."""

    path: str
    body: Any
    fault: str | None
    headers: dict[str, str]


class Host(Protocol):
    """The server as its routes see it: its settings, its token counter, the random source behind
    request ids (one seed fixes a whole run), what it has in flight and its logs."""

    config: Config
    counter: Counter
    random: random.Random
    in_flight: int
    port: int
    billed: list[dict[str, Any]]

    def note(self, request: web.Request, body: Any, fault: Fault | None = None) -> None:
        """Log a request as `seen` (when the server records)."""

    def pick_fault(self, raw: bytes, in_flight: int = 0) -> Fault | None:
        """The fault for a request (or a batch's line) whose body is `raw`."""
