"""The small frozen records that pass between layers: settings, requests, replies, results.

No behaviour lives here beyond derived names; each layer owns what it does with them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

import orjson

from .attachments import Attachment

_T = TypeVar("_T")

DEFAULT_BASE_URL = "https://api.openai.com/v1"


def shortened(value: object, limit: int = 300) -> str:
    """Text for one line of a message: line breaks folded, and cut with "..." past `limit`."""
    text = str(value).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def shown_url(url: str) -> str:
    """A URL as it may be shown: without credentials (user:password@) or a query (keys hide there)."""
    scheme, sep, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    return f"{scheme}{sep}{host.rpartition('@')[2]}{slash}{path.partition('?')[0]}"


def dump(body: Mapping[str, Any]) -> bytes:
    """A request body as compact UTF-8 JSON. orjson: a tenth of the time of json.dumps, which
    shows at thousands of requests a second; YAML may give integer keys (logit_bias)."""
    return orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)


def quick(cls: type[_T]) -> type[_T]:
    """Give frozen dataclass `cls` an __init__ that fills the instance's dictionary at once, for
    the few records made once per item (and by every dataclasses.replace of them). The frozen
    __init__ sets each field through object.__setattr__ (2.5 us for a Request's twenty), which a
    million-item job pays several times an item; this one, generated the way dataclasses generates
    its own, with the same parameters and defaults, takes half that. Put it above @dataclass. The
    class may have no default_factory, no init=False field and no __post_init__ (checked here).
    Still worth its exec (issue 25): a 1,000,000-item dry run, three paired whole-process runs,
    took a median 67.1 s of CPU with it and 76.2 s without, on a machine at load 10-17."""
    listed = fields(cls)  # type: ignore[arg-type]  # a dataclass, as the checks below require
    assert all(f.init and f.default_factory is MISSING for f in listed) and not hasattr(cls, "__post_init__")
    params = ", ".join(f.name if f.default is MISSING else f"{f.name}=_defaults[{f.name!r}]" for f in listed)
    values = ", ".join(f"{f.name!r}: {f.name}" for f in listed)
    source = f"def __init__(self, {params}):\n    self.__dict__.update({{{values}}})\n"
    scope: dict[str, Any] = {"_defaults": {f.name: f.default for f in listed}}
    exec(source, scope)  # our own field names, as dataclasses itself does: nothing from a job file
    scope["__init__"].__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = scope["__init__"]  # type: ignore[method-assign]
    return cls


@dataclass(frozen=True)
class Provider:
    """Where requests go. The key itself is never held here, only the name of its variable."""

    base_url: str = DEFAULT_BASE_URL
    api_key_env: str = "OPENAI_API_KEY"
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # gateway credentials among them
    kind: str = "openai"
    api_version: str | None = None
    proxy: str | None = None
    organization: str | None = None
    project: str | None = None
    ca_bundle: str | None = None  # the CA certificates (PEM) its server is trusted by (providers.trust)

    def __repr__(self) -> str:
        """Without credentials: the base and proxy URLs as shown_url shows them, header names only."""
        return (
            f"Provider(base_url={shown_url(self.base_url)!r}, kind={self.kind!r}, "
            f"api_key_env={self.api_key_env!r}, headers={[name for name, _ in self.headers]!r}, "
            f"proxy={shown_url(self.proxy) if self.proxy else None!r})"
        )


@dataclass(frozen=True)
class Limits:
    concurrency: int = 16
    rpm: float | None = None  # per model, as the API's own limits are; the server's headers may lower it
    tpm: float | None = None
    max_retries: int = 6
    timeout: float = 60.0
    patience: float = 900.0  # seconds a limit may refuse everything before its items fail
    outage: float = 60.0  # seconds of nothing but failures run-wide before the run stops
    max_answer_mb: float = 256.0  # above any real answer: ten 1536x1024 PNGs in base64, 2,048 float embeddings
    max_batch_file_mb: float = 10240.0  # a full batch file (50,000 lines) of answers of 200 KiB each
    shared: str | None = field(default=None, repr=False)  # redis://HOST:PORT/DB shared by processes on one key


@quick
@dataclass(frozen=True)
class Request:
    """One item of a job, ready to send. `seq` is its place in the input, `hash` names the exact body."""

    seq: int
    id: str
    task: str
    type: str
    model: str
    endpoint: str
    body: Mapping[str, Any] = field(repr=False)
    payload: bytes = field(repr=False)
    hash: str
    provider: Provider
    max_tokens: int | None = None
    expected_output_tokens: int | None = None
    files: tuple[tuple[str, Path], ...] = ()  # (form field, path) to upload as multipart
    units: float | None = None  # images, characters or audio minutes, known before sending
    units_note: str | None = None  # how `units` was found when not measured (an audio file's length bound)
    pack_size: int = 0  # > 0: may share a request with up to this many items of the same body
    kept: tuple[tuple[str, Any], ...] = field(default=(), repr=False)  # item fields copied into its result row
    reask: int = 0  # structured outputs: times an answer not matching the schema is asked again
    turns: tuple[str, ...] = ()  # a conversation: its user messages (the body asks the first)
    turn: int | None = None  # a conversation's turn: this request's place in it (1, 2, ...)
    columns: bool = False  # structured outputs: the answer's top-level fields as result columns
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class Pack:
    """What one HTTP request carries: one request, or many items of a packable task (embeddings,
    moderations) sharing a body whose `input` is their list of texts."""

    requests: tuple[Request, ...]
    body: Mapping[str, Any] = field(repr=False)
    payload: bytes = field(repr=False)
    tokens: tuple[int, ...] = ()  # each item's own prompt tokens, where packing counted them

    @classmethod
    def of(cls, request: Request) -> Pack:
        return cls((request,), request.body, request.payload)

    @property
    def first(self) -> Request:
        return self.requests[0]


@dataclass(frozen=True)
class Billed:
    """What an answer says it used beyond its prompt, completion and cached tokens, each kind
    billed at its own price (pricing.py): the parts of the prompt written to a cache, heard as
    audio or seen as images; the parts of the completion spoken as audio or drawn as images;
    the service tier that served it; and the length of the audio it returned, where read."""

    cache_write: int = 0
    audio_in: int = 0
    audio_out: int = 0
    image_in: int = 0
    image_out: int = 0
    tier: str | None = None  # the answer's `service_tier`: default, flex, priority, scale, ...
    audio_seconds: float | None = None  # speech: the returned audio's length, read from its headers


PLAIN = Billed()


@dataclass(frozen=True)
class Reply:
    """What a successful answer means: the output and the usage the server reported.

    For a pack, `output` and `details` are lists with one entry per item, in order."""

    output: Any
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    units: float | None = None  # images, characters or minutes, for endpoints not billed per token
    details: Any = None  # JSON-able extras: moderation scores, a revised prompt, segments
    media: tuple[tuple[str, bytes], ...] = ()  # (suffix, bytes) to be saved as files; the output is their paths
    stop: str | None = None  # why the answer ended early: "length" (max_tokens) or "refusal"
    billed: Billed = PLAIN  # the kinds of token the usage details tell apart, and the service tier


# A report row's columns, as the store adds them up per task, model and mode (the report adds
# total_tokens before the cost).
GROUP_COLUMNS = (
    "task",
    "model",
    "mode",
    "requests",
    "succeeded",
    "failed",
    "skipped",  # not answered (a stop, a signal): with the others it adds up to the requests
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",  # the job's: every answer the rows hold, whichever run received it
    "cost_usd_this_run",  # what this run's answers cost
)

# Names a task's `keep:` may not use: a results file has these columns already.
RESERVED_COLUMNS = frozenset({"job", "vector", "kept"})

# A result row's columns, in the order results files have them (after the job's name).
RESULT_COLUMNS = (
    "task",
    "type",
    "id",
    "model",
    "status",
    "output",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "attempts",
    "latency_s",
    "error",
    "cached_tokens",
    "reasoning_tokens",
    "ttft_s",
    "details",
    "mode",
    "reasks",
    "turn",
)


@quick
@dataclass(frozen=True)
class Result:
    """The outcome of one request, as stored and exported."""

    seq: int
    id: str
    task: str
    type: str
    model: str
    status: str  # ok | error | skipped
    output: Any = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    attempts: int = 0
    latency_s: float | None = None
    error: str | None = None
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    ttft_s: float | None = None
    details: Any = None
    transient: bool = False  # an error a plain rerun sends again (the server or the network failed)
    mode: str = "online"  # online | batch: how it was answered, and so which price it was billed at
    reasks: int = 0  # structured outputs: times the answer was asked again
    fields: Any = None  # structured outputs with columns: the answer's top-level fields, as columns
    retried: tuple[str, ...] = ()  # why each attempt before the last was tried again (Failure.reason), in order


# Result.retried's word for a structured answer asked again because it did not match its schema
SCHEMA_MISSED = "answer missed its schema"
RETRY_STATUSES = frozenset({408, 409, 429})  # besides 5xx: statuses worth another attempt
# an empty quota's message as OpenAI words it, and its code, which relays keep in the text they pass on
_QUOTA_WORDS = ("exceeded your current quota", "insufficient_quota")
UNSENT = "could not connect"  # how a connection failure that never reached the server begins


@dataclass(frozen=True)
class Failure:
    """What went wrong with one attempt. `status` is None when no HTTP answer arrived."""

    cause: str  # http | timeout | connection | certificate | malformed | oversized | attachment: what went wrong
    message: str
    status: int | None = None
    code: str | None = None
    type: str | None = None
    headers: Mapping[str, str] | None = field(default=None, repr=False)  # a server may echo a key in one

    def describe(self) -> str:
        if self.status is None:
            return f"{self.cause}: {self.message}"
        if self.cause in ("malformed", "oversized"):
            return f"{self.cause} answer (HTTP {self.status}): {self.message}"
        # a gateway's code may only repeat the status (LiteLLM's "429"): not shown twice
        code = f" {self.code}" if self.code and self.code != str(self.status) else ""
        return f"HTTP {self.status}{code}: {self.message}"

    @property
    def reason(self) -> str:
        """Why the attempt is tried again, as retries are counted and labelled: 'HTTP 429',
        'timeout', 'connection'; an answer that came (HTTP 200) but could not be used is named for
        what was wrong with it ('malformed answer'), never for its status."""
        if self.cause in ("malformed", "oversized"):
            return f"{self.cause} answer"
        return self.cause if self.status is None else f"HTTP {self.status}"

    @property
    def transient(self) -> bool:
        """Worth sending again: the server or the network failed, not the request (retry.transient
        is the whole policy, with the server's x-should-retry)."""
        # still untrusted, still too large (and billed again), a file still changed since it was checked
        if self.cause in ("certificate", "oversized", "attachment"):
            return False
        if self.cause != "http":
            return True
        status = self.status or 0
        return status in RETRY_STATUSES or status >= 500

    @property
    def maybe_billed(self) -> bool:
        """The server may have done the work (and billed it) without saying how much: it timed out,
        was cut off after it answered, or answered what cannot be read (or is too large to)."""
        return self.cause in ("timeout", "malformed", "oversized") or (
            self.cause == "connection" and not self.message.startswith(UNSENT)
        )

    @property
    def rate_limited(self) -> bool:
        """A 429 that waiting cures (not an empty quota, which needs the user)."""
        return self.status == 429 and not self.out_of_quota

    @property
    def out_of_quota(self) -> bool:
        """A 429 saying the account's quota is used up: by its code or type, or, where a gateway
        rewrote those (LiteLLM's type `throttling_error`, code "429"), by the API's own message."""
        if self.status != 429:
            return False
        return "insufficient_quota" in (self.code, self.type) or any(w in self.message for w in _QUOTA_WORDS)

    @property
    def overloaded(self) -> bool:
        """The server is busy (a local vLLM or llama.cpp says so with 503): fewer at once helps."""
        return self.status == 503

    @property
    def unreachable(self) -> bool:
        """No useful answer from the endpoint at all: what an outage looks like."""
        return self.cause in ("timeout", "connection") or (self.status or 0) >= 500


# What the HTML run report shows, as the store adds it up (store.timeline, store.error_groups,
# store.slowest): small and bounded whatever the job's size, so the page is too.


@dataclass(frozen=True)
class TimeSlice:
    """One slice of a run's answers over time: seconds from the run's start, counts and latency."""

    start_s: float
    end_s: float
    ok: int
    failed: int
    tokens: int
    p50_s: float | None  # latency percentiles of the slice's answers (nearest rank); None: no latency
    p95_s: float | None
    max_s: float | None


@dataclass(frozen=True)
class Timeline:
    """A run's own answers (those it received, not earlier runs'), sliced over time."""

    answers: int
    first: float | None  # epoch seconds of its first and last answers
    last: float | None
    retried: int  # answers that took more than one attempt
    extra_attempts: int  # attempts beyond the first, over all its answers
    slices: tuple[TimeSlice, ...]


@dataclass(frozen=True)
class ErrorExample:
    id: str
    message: str


@dataclass(frozen=True)
class ErrorKind:
    """Errors that begin alike ('HTTP 429', 'timeout', 'HTTP 400 invalid_request_error'), with a few examples."""

    kind: str
    count: int
    examples: tuple[ErrorExample, ...]


@dataclass(frozen=True)
class ErrorGroups:
    total: int  # rows of the status, over every kind
    kinds: int  # distinct kinds, shown or not
    shown: tuple[ErrorKind, ...]  # the most frequent kinds


@dataclass(frozen=True)
class SlowItem:
    id: str
    task: str
    model: str
    status: str
    latency_s: float
    attempts: int
    error: str | None
    retried: tuple[str, ...] = ()  # why its attempts before the last were tried again (Result.retried)
