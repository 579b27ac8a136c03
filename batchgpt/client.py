"""HTTP to OpenAI-compatible servers: the only module that imports aiohttp.

A Client sends one attempt of one request and says what came back: a parsed JSON answer with its
status and headers, or a retry.Failure. Whether to try again is retry.py's business. The API key
goes only in each request's headers (never a session's default, which aiohttp copies into an
https proxy's CONNECT). Everything a server sends is stripped of the key,
the configured header values and URL credentials as it arrives (some proxies echo a request's
headers in their errors), so no message, output, log or stored row downstream can hold them.
Redirects are not followed: they would carry the key and gateway headers to another address, or
turn a POST into a GET that drops the prompt. A task's JSON request to a plain-http server with no
proxy (a local vLLM, llama.cpp or Ollama) goes through http1.Pool instead: the same bytes and the
same answers, at a sixth of aiohttp's CPU per request.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import math
import os
import re
import sys
import time
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import orjson
from multidict import CIMultiDict

from . import http1
from .balance import Balance
from .files import atomic_write
from .records import UNSENT, Failure, Pack, Provider, Request, shortened, shown_url
from .version import __version__
from .words import count

if TYPE_CHECKING:  # aiohttp is imported where a request needs it: a run on http1 alone never does (0.1 s)
    import aiohttp

REDACTED = "****"
MIN_SECRET = 4  # a shorter key or password would be found in every other word of an answer
# Headers that carry credentials (by their name). Others (X-Title, HTTP-Referer) are no secrets,
# and hiding their values would mangle answers that mention them.
_SECRET_HEADER = re.compile(r"auth|key|token|secret|cookie|password|signature", re.IGNORECASE)
_SCHEMES = ("bearer", "basic", "token")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # what no header may hold (a tab may)
# aiohttp reads the trust store once, at import, from where OpenSSL looks (SSL_CERT_FILE first)
UNTRUSTED = (
    "; to trust a private CA's server (a company proxy, a gateway), set SSL_CERT_FILE to its CA certificate (PEM)"
)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str] = field(repr=False)
    data: Any = field(repr=False)
    ttft_s: float | None = None  # a streamed answer's time to its first token


class Client:
    """One aiohttp session (opened on its first use) and one http1 pool per provider and run."""

    def __init__(self, provider: Provider, api_key: str | None, timeout: float, connections: int):
        self.provider = provider
        self._key = api_key
        self._headers = _auth_headers(provider, api_key)
        self._redact = Redactor(provider, api_key)
        self._timeout = timeout
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None
        self._proxy: str | None = None
        self._pool: http1.Pool | None = None  # plain http without a proxy: the lean way (http1.py)
        self._heads: dict[str, bytes] = {}  # a URL's request line and headers, for the pool

    def __repr__(self) -> str:
        return f"Client(base_url={shown_url(self.provider.base_url)!r})"

    async def __aenter__(self) -> Client:
        # HTTPS_PROXY, HTTP_PROXY and NO_PROXY are read here, once: aiohttp's trust_env would look
        # them (and ~/.netrc) up in a thread for every request, which costs a third of throughput.
        self._proxy = self.provider.proxy or _env_proxy(self.provider.base_url)
        self._redact = Redactor(self.provider, self._key, self._proxy)  # the proxy in use may carry a password
        self._json_headers = {**self._headers, "Content-Type": "application/json"}
        self._pool = self._plain_pool()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._pool is not None:
            self._pool.close()
        if self._session is not None:
            await self._session.close()

    def _aiohttp(self) -> aiohttp.ClientSession:
        """The session, opened on first use (inside the running loop)."""
        if self._session is None:
            import aiohttp

            connector = aiohttp.TCPConnector(limit=self._connections, limit_per_host=0, ttl_dns_cache=300)
            # The key and the provider's headers go on each request, never as the session's defaults:
            # aiohttp copies those into the CONNECT request an https call opens a proxy tunnel with
            # (Authorization as Proxy-Authorization), in clear text, to the proxy.
            self._session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(self._timeout))
        return self._session

    def _plain_pool(self) -> http1.Pool | None:
        """A pool for the base URL when http1 can do all aiohttp would: plain http, no proxy, no
        credentials in the URL, and header values aiohttp would send (no control characters)."""
        url = urlsplit(self.provider.base_url)
        if url.scheme != "http" or self._proxy or "@" in url.netloc or not url.hostname:
            return None
        if any(_CONTROL.search(text) for pair in self._json_headers.items() for text in pair):
            return None  # aiohttp refuses them with an error of its own
        return http1.Pool(url.hostname, url.port or 80, self._connections)

    def _head(self, url: str) -> bytes:
        """The request line and headers of a JSON POST to `url`, built once, as aiohttp would send
        them: the target percent-encoded by yarl, and a provider's own Host or Accept in place of
        the usual one."""
        head = self._heads.get(url)
        if head is None:
            headers = CIMultiDict({"Host": urlsplit(url).netloc, "Accept": "*/*"})
            for name, value in self._json_headers.items():
                headers[name] = value  # replaces a header of the same name, in any case
            lines = [f"POST {_target(url)} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
            head = self._heads[url] = ("\r\n".join(lines) + "\r\n").encode()
        return head

    def url(self, request: Request) -> str:
        base = self.provider.base_url
        if self.provider.kind == "azure":
            version = self.provider.api_version or "2024-10-21"
            return f"{base}/openai/deployments/{request.model}{request.endpoint}?api-version={version}"
        return base + request.endpoint

    async def send(self, pack: Pack, timeout: float | None = None) -> Answer | Failure:
        """One attempt at one pack (usually a single request), waiting `timeout` seconds for its
        answer (the client's own timeout when None)."""
        timeout = timeout or self._timeout
        if self._pool is not None and not pack.first.files and not pack.body.get("stream"):
            outcome = await self._send_plain(self._pool, pack, timeout)
        else:
            outcome = await self._send(pack, timeout)
        if isinstance(outcome, Failure):
            return replace(outcome, message=self._redact.text(outcome.message))
        return outcome

    async def _send(self, pack: Pack, timeout: float) -> Answer | Failure:
        """One attempt through aiohttp: what http1 does not do (see _plain_pool)."""
        import aiohttp

        started = time.monotonic()
        try:
            async with self._aiohttp().post(
                self.url(pack.first),
                data=_body(pack),
                headers=self._headers if pack.first.files else self._json_headers,
                proxy=self._proxy,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(timeout, sock_connect=http1.connect_within(timeout)),
            ) as response:
                headers = response.headers  # case-insensitive, as HTTP header names are
                if 300 <= response.status < 400:
                    return _redirected(response.status, headers)
                event_stream = headers.get("content-type", "").startswith("text/event-stream")
                if response.status < 300 and pack.body.get("stream") and event_stream:
                    return await _read_stream(response, headers, started, self._redact)
                raw = self._redact.raw(await response.read())
        except aiohttp.ServerTimeoutError:  # the connection was not made (no sock_read timeout is set)
            return Failure("connection", f"{UNSENT}: no connection within {http1.connect_within(timeout):g} s")
        except asyncio.TimeoutError:
            return Failure("timeout", f"no complete answer within {timeout:g} s")
        except aiohttp.ClientPayloadError as exc:
            return Failure("connection", f"the answer was cut off ({self._said(exc)})")
        except (aiohttp.ClientConnectorError, aiohttp.ClientHttpProxyError) as exc:  # the request never left
            return Failure("connection", f"{UNSENT}: {type(exc).__name__}: {self._said(exc)}")
        except (aiohttp.ClientError, OSError) as exc:
            return Failure("connection", f"{type(exc).__name__}: {self._said(exc)}")
        return _answer(response.status, headers, raw, self._redact)

    async def _send_plain(self, pool: http1.Pool, pack: Pack, timeout: float) -> Answer | Failure:
        try:
            reply = await pool.post(self._head(self.url(pack.first)), pack.payload, timeout)
        except asyncio.TimeoutError:
            return Failure("timeout", f"no complete answer within {timeout:g} s")
        except http1.Unsent as exc:
            return Failure("connection", f"{UNSENT}: {shortened(str(exc))}")
        except http1.Lost as exc:
            return Failure("connection", shortened(str(exc)))
        if 300 <= reply.status < 400:
            return _redirected(reply.status, reply.headers)
        return _answer(reply.status, reply.headers, self._redact.raw(reply.body), self._redact)

    async def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Mapping[str, Any] | None = None,
        upload: tuple[str, Path, Mapping[str, str]] | None = None,
        params: Mapping[str, str] | None = None,
        binary: bool = False,
    ) -> Answer | Failure:
        """One call to an API route other than a task's (the Batch API's files and batches), under
        the base URL as Azure or OpenAI lays it out. `upload`: (field, file, other form fields) as
        multipart; `binary`: a 2xx answer is the raw bytes (a file's content), in `data["_binary"]`.
        Uploads and downloads may take long: the timeout is per read, not for the whole call."""
        import aiohttp

        url, query = self.route(path)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._timeout, sock_read=self._timeout)
        with ExitStack() as files:
            form: aiohttp.FormData | None = None
            if upload is not None:
                field_name, path_on_disk, fields = upload
                form = aiohttp.FormData()
                for key, value in fields.items():
                    form.add_field(key, value)
                form.add_field(field_name, files.enter_context(path_on_disk.open("rb")), filename=path_on_disk.name)
            try:
                async with self._aiohttp().request(
                    method,
                    url,
                    headers=self._headers,
                    json=json_body,
                    data=form,
                    params={**query, **(params or {})},
                    proxy=self._proxy,
                    allow_redirects=False,
                    timeout=timeout,
                ) as response:
                    if 300 <= response.status < 400:
                        return _redirected(response.status, response.headers)
                    raw = self._redact.raw(await response.read())
                    if binary and response.status < 300:
                        return Answer(response.status, response.headers, {"_binary": raw})
                    outcome = _answer(response.status, response.headers, raw, self._redact)
            except asyncio.TimeoutError:
                outcome = Failure("timeout", f"no answer within {self._timeout:g} s")
            except (aiohttp.ClientConnectorError, aiohttp.ClientHttpProxyError) as exc:
                outcome = Failure("connection", f"{UNSENT}: {type(exc).__name__}: {self._said(exc)}")
            except (aiohttp.ClientError, OSError) as exc:
                outcome = Failure("connection", f"{type(exc).__name__}: {self._said(exc)}")
        if isinstance(outcome, Failure):
            return replace(outcome, message=self._redact.text(outcome.message))
        return outcome

    async def download(self, path: str, destination: Path) -> Failure | None:
        """Stream a file's content (`/files/ID/content`) to `destination`, whole or not at all
        (files.atomic_write), with secrets replaced line by line (no secret spans a line break)."""
        import aiohttp

        url, query = self.route(path)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._timeout, sock_read=self._timeout)
        try:
            async with self._aiohttp().get(
                url, params=query, headers=self._headers, proxy=self._proxy, allow_redirects=False, timeout=timeout
            ) as response:
                if response.status >= 300:
                    raw = self._redact.raw(await response.read())
                    failure = _answer(response.status, response.headers, raw, self._redact)
                    assert isinstance(failure, Failure)
                    return failure
                with atomic_write(destination, "wb") as handle:
                    rest = b""
                    async for chunk in response.content.iter_chunked(1 << 20):
                        *lines, rest = (rest + chunk).split(b"\n")
                        for line in lines:
                            handle.write(self._line(line) + b"\n")
                    handle.write(self._line(rest))
        except asyncio.TimeoutError:
            return Failure("timeout", f"no data for {self._timeout:g} s")
        except (aiohttp.ClientError, OSError) as exc:
            return Failure("connection", f"{type(exc).__name__}: {self._said(exc)}")
        return None

    def _line(self, line: bytes) -> bytes:
        """A JSON line without secrets, also those JSON escapes hide (as in answers online)."""
        line = self._redact.raw(line)
        if self._redact.escaped(line):
            try:
                return orjson.dumps(self._redact.tree(orjson.loads(line)))
            except orjson.JSONDecodeError:
                pass  # not JSON: read as a broken line downstream
        return line

    def route(self, path: str) -> tuple[str, dict[str, str]]:
        """The URL and query of an API route (`/files`, `/batches/ID`) on this provider."""
        if self.provider.kind == "azure":
            return f"{self.provider.base_url}/openai{path}", {"api-version": self.provider.api_version or "2024-10-21"}
        return self.provider.base_url + path, {}

    def _said(self, exc: BaseException) -> str:
        """An exception's text (which may hold a proxy URL), without secrets, then shortened; for a
        certificate this process does not trust, how to trust it."""
        import aiohttp

        said = shortened(self._redact.text(str(exc)))
        return said + UNTRUSTED if isinstance(exc, aiohttp.ClientConnectorCertificateError) else said


class Redactor:
    """Replaces a provider's secrets in whatever a server sends: the key, the values of headers that
    carry credentials (and their token after a scheme such as "Bearer"), and the credentials of
    the base and proxy URLs (as written, and as the Basic auth they are sent as)."""

    def __init__(self, provider: Provider, api_key: str | None, proxy: str | None = None):
        secrets = {api_key}
        for name, value in provider.headers:
            if _SECRET_HEADER.search(name):
                scheme, _, token = value.partition(" ")
                secrets |= {value, token if scheme.lower() in _SCHEMES else None}
        for url in (provider.base_url, provider.proxy, proxy):
            secrets |= _credentials(url or "")
        found = {s for s in secrets if s and len(s) >= MIN_SECRET}
        self._secrets = sorted(found, key=len, reverse=True)  # a longer secret first: it may hold a shorter
        self._encoded = [secret.encode() for secret in self._secrets]

    def text(self, value: str) -> str:
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value

    def raw(self, value: bytes) -> bytes:
        for secret in self._encoded:
            if secret in value:
                value = value.replace(secret, REDACTED.encode())
        return value

    def tree(self, value: Any) -> Any:
        """A decoded answer with secrets replaced in every string, keys included: JSON escapes
        (`\\u0073k-...`) hide a secret from `raw` until it is decoded."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(k): self.tree(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.tree(v) for v in value]
        return value

    def escaped(self, raw: bytes) -> bool:
        """Whether a JSON text may hold a secret `raw` could not see: it has \\u or \\/ escapes
        (no secret holds the quotes, line breaks or tabs that other escapes stand for)."""
        return bool(self._secrets) and (b"\\u" in raw or b"\\/" in raw)


def _credentials(url: str) -> set[str | None]:
    """A URL's password, its user:password, and that as Basic auth sends it (base64)."""
    userinfo = url.partition("://")[2].partition("/")[0].rpartition("@")[0]
    if not userinfo:
        return set()
    user, _, password = userinfo.partition(":")
    plain = unquote(userinfo)
    return {password, unquote(password), userinfo, plain, base64.b64encode(plain.encode()).decode()}


def _redirected(status: int, headers: Mapping[str, str]) -> Failure:
    """A redirect is an error: following it would send the key elsewhere, or drop the prompt."""
    location = shown_url(headers.get("location", "")) or "nowhere"
    return Failure(
        "http",
        f"the server redirected to {location}; batchgpt does not follow redirects with "
        "the key and the prompt: if that address is right, make it the base URL",
        status,
    )


def _body(pack: Pack) -> bytes | aiohttp.FormData:
    """JSON, or a multipart form for uploads (the file is read afresh on each attempt)."""
    import aiohttp

    files = pack.first.files
    if not files:
        return pack.payload
    form = aiohttp.FormData()
    for key, value in pack.body.items():
        form.add_field(key, value if isinstance(value, str) else json.dumps(value))
    for field_name, path in files:
        form.add_field(field_name, path.read_bytes(), filename=path.name)
    return form


# A request target yarl would send as it is: segments of unreserved characters, none of them "."
# or "..", and a query of name=value pairs of them (Azure's api-version).
_PLAIN_TARGET = re.compile(r"(?:/[\w~-][\w.~-]*)+(?:\?[\w.~-]+=[\w.~-]*(?:&[\w.~-]+=[\w.~-]*)*)?", re.ASCII)


def _target(url: str) -> str:
    """The path and query of `url` as aiohttp sends them, percent-encoded by yarl. yarl costs 4 ms to
    import, and the usual URL needs nothing of it."""
    parts = urlsplit(url)
    target = f"{parts.path}?{parts.query}" if parts.query else parts.path
    if _PLAIN_TARGET.fullmatch(target):
        return target
    from yarl import URL  # aiohttp's, so the target is encoded as it encodes it

    return str(URL(url).raw_path_qs)


def _env_proxy(base_url: str) -> str | None:
    """The proxy HTTPS_PROXY/HTTP_PROXY name for this URL, unless NO_PROXY exempts its host."""
    if sys.platform not in ("darwin", "win32") and not any(name.lower().endswith("_proxy") for name in os.environ):
        return None  # urllib would find none (elsewhere it asks the system too), and costs 7 ms to import
    import urllib.request

    url = urlsplit(base_url)
    if url.hostname and urllib.request.proxy_bypass(url.hostname):
        return None
    return urllib.request.getproxies().get(url.scheme)


def _auth_headers(provider: Provider, api_key: str | None) -> dict[str, str]:
    headers = {"User-Agent": f"batchgpt/{__version__}"}
    if api_key:
        if provider.kind == "azure":
            headers["api-key"] = api_key
        else:
            headers["Authorization"] = f"Bearer {api_key}"
    if provider.organization:
        headers["OpenAI-Organization"] = provider.organization
    if provider.project:
        headers["OpenAI-Project"] = provider.project
    headers.update(dict(provider.headers))
    return headers


def _answer(status: int, headers: Mapping[str, str], raw: bytes, redact: Redactor) -> Answer | Failure:
    content_type = headers.get("content-type", "")
    if status < 300 and content_type.startswith(("audio/", "image/", "application/octet-stream")):
        return Answer(status, headers, {"_binary": raw, "_content_type": content_type})
    if status < 300 and content_type.startswith("text/plain"):  # transcripts as text, srt or vtt
        return Answer(status, headers, {"text": redact.text(raw.decode("utf-8", "replace"))})
    try:
        data = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        if status < 300:
            return Failure("malformed", f"the answer is not JSON ({count(len(raw), 'byte')})", status, headers=headers)
        return Failure("http", shortened(redact.text(raw.decode("utf-8", "replace"))), status, headers=headers)
    if redact.escaped(raw):
        data = redact.tree(data)
    if status < 300:
        if not isinstance(data, dict):
            return Failure("malformed", "the answer is not a JSON object", status, headers=headers)
        return Answer(status, headers, data)
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return Failure(
            "http",
            shortened(redact.text(str(error.get("message") or ""))),
            status,
            code=_label(error.get("code"), redact),
            type=_label(error.get("type"), redact),
            headers=headers,
        )
    return Failure("http", shortened(redact.text(json.dumps(data))), status, headers=headers)


def _label(value: Any, redact: Redactor) -> str | None:
    """An error's `code` or `type`: short text, or nothing."""
    return None if value is None else shortened(redact.text(str(value)), 80)


async def _read_stream(
    response: aiohttp.ClientResponse, headers: Mapping[str, str], started: float, redact: Redactor
) -> Answer | Failure:
    """Assemble a server-sent-events answer into the shape of a non-streamed one. A stream that
    ends without `[DONE]` is malformed (it may have been cut short), and so is an event that is not
    a JSON object."""
    parts: list[str] = []
    refusal: list[str] = []  # a refusal streams in deltas of its own
    finish = None
    usage = tier = None  # the usage chunk, and the service tier the chunks say (what prices them)
    ttft = None
    chat = True
    async for raw_line in response.content:
        line = raw_line.strip()
        if not line.startswith(b"data:"):
            continue
        payload = line[5:].strip()
        if payload.startswith(b"[DONE]"):
            break
        try:  # the standard library's json, which keeps a lone surrogate for the join below
            chunk = json.loads(redact.raw(payload))
        except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested past all sense
            return Failure("malformed", "a stream event is not JSON", response.status, headers=headers)
        if not isinstance(chunk, dict) or not isinstance(chunk.get("choices") or [], list):
            return Failure("malformed", "a stream event is not a chunk object", response.status, headers=headers)
        kind = chunk.get("type")
        if isinstance(kind, str) and kind.startswith(("response.", "error")):  # the Responses API's events
            ttft = ttft if ttft is not None or kind != "response.output_text.delta" else time.monotonic() - started
            ended = _response_event(chunk, kind, response.status, headers, ttft, redact)
            if ended is not None:
                return ended
            continue
        if "error" in chunk:  # an error in the middle of a stream, as the SDK raises it
            error = chunk["error"] if isinstance(chunk["error"], dict) else {"message": str(chunk["error"])}
            return Failure(
                "http",
                shortened(redact.text(str(error.get("message")))),
                500,
                code=_label(error.get("code"), redact),
                headers=headers,
            )
        usage, tier = chunk.get("usage") or usage, chunk.get("service_tier") or tier
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict):
                return Failure("malformed", "a stream choice is not an object", response.status, headers=headers)
            delta = choice.get("delta")
            text = delta.get("content") if isinstance(delta, dict) else choice.get("text")
            chat = isinstance(delta, dict)
            finish = choice.get("finish_reason") or finish
            if isinstance(delta, dict) and isinstance(delta.get("refusal"), str):
                refusal.append(delta["refusal"])
            if text:
                if not isinstance(text, str):
                    return Failure("malformed", "a stream delta is not text", response.status, headers=headers)
                ttft = ttft if ttft is not None else time.monotonic() - started
                parts.append(text)
    else:
        return Failure("malformed", "the stream ended before [DONE]", response.status, headers=headers)
    try:  # a character may come in two events, each half a lone UTF-16 surrogate: join the halves
        text = "".join(parts).encode("utf-16", "surrogatepass").decode("utf-16")
    except UnicodeDecodeError:
        return Failure("malformed", "the stream holds half a character", response.status, headers=headers)
    text = redact.text(text)  # a secret may also have been split between two events
    message = {"role": "assistant", "content": None if refusal and not text else text}
    if refusal:
        message["refusal"] = redact.text("".join(refusal))
    answer: dict[str, Any] = {"message": message} if chat else {"text": text}
    answer["finish_reason"] = finish
    assembled = {"choices": [answer], "usage": redact.tree(usage), "service_tier": redact.tree(tier)}
    return Answer(response.status, headers, assembled, ttft)


def _response_event(
    event: dict[str, Any], kind: str, status: int, headers: Mapping[str, str], ttft: float | None, redact: Redactor
) -> Answer | Failure | None:
    """What a Responses API stream event ends in: the final response object (whose `output` holds
    the whole text, so deltas only time the first token), an error, or None to read on."""
    if kind in ("response.completed", "response.incomplete", "response.failed"):
        final = event.get("response")
        if not isinstance(final, dict):
            return Failure("malformed", f"a {kind} event holds no response object", status, headers=headers)
        return Answer(status, headers, redact.tree(final), ttft)
    if kind == "error":
        message = shortened(redact.text(str(event.get("message"))))
        return Failure("http", message, 500, code=_label(event.get("code"), redact), headers=headers)
    return None


async def fetch_balance(provider: Provider, api_key: str | None, timeout: float = 30.0) -> Balance | str:
    """The balance from /dashboard/billing/subscription and /dashboard/billing/usage, which relays
    (one-api, new-api) keep, tried under the base URL and at the host's root; or why it cannot be
    had (balance.py says what the figures mean)."""
    import aiohttp

    today = datetime.date.today()
    window = {
        "start_date": (today - datetime.timedelta(days=99)).isoformat(),
        "end_date": (today + datetime.timedelta(days=1)).isoformat(),
    }
    base = provider.base_url
    roots = [base] + ([base[: -len("/v1")]] if base.endswith("/v1") else [])
    redact = Redactor(provider, api_key)
    headers = _auth_headers(provider, api_key)  # on each request, never the session's (see Client)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        reasons = []
        for root in roots:
            shown = shown_url(root)
            try:
                subscription = await _get_json(
                    session, f"{root}/dashboard/billing/subscription", {}, provider, redact, headers=headers
                )
                if isinstance(subscription, str):
                    reasons.append(subscription)
                    continue
                usage = await _get_json(
                    session, f"{root}/dashboard/billing/usage", window, provider, redact, headers=headers
                )
                if isinstance(usage, str):
                    return usage
                limit, cents = float(subscription["hard_limit_usd"]), float(usage["total_usage"])
                soft, until = subscription.get("soft_limit_usd"), subscription.get("access_until")
                if not all(math.isfinite(v) for v in (limit, cents, float(soft or 0), float(until or 0))):
                    raise ValueError("not a finite amount")
                extra = {"soft_limit_usd": None if soft is None else float(soft), "access_until": float(until or 0)}
                return Balance(limit, cents, shown, window["start_date"], window["end_date"], **extra)
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
                return redact.text(f"cannot reach {shown}: {type(exc).__name__}: {shortened(exc)}")
            except (KeyError, TypeError, ValueError):
                reasons.append(f"{shown}: the billing answer is not in the expected shape")
    return "this endpoint does not expose its balance (" + "; ".join(reasons) + ")"


async def _get_json(
    session: aiohttp.ClientSession,
    url: str,
    params: dict[str, str],
    provider: Provider,
    redact: Redactor,
    *,
    headers: dict[str, str],
) -> dict[str, Any] | str:
    shown = shown_url(url)
    async with session.get(
        url, params=params, headers=headers, proxy=provider.proxy or _env_proxy(url), allow_redirects=False
    ) as response:
        raw = redact.raw(await response.read())
        if 300 <= response.status < 400:
            return f"GET {shown}: {_redirected(response.status, response.headers).message}"
        if response.status == 404:
            return f"GET {shown} answered 404"
        try:
            data = redact.tree(orjson.loads(raw))
        except orjson.JSONDecodeError:  # not JSON, or nested past all sense
            return f"GET {shown} answered {response.status} with no JSON"
        error = data.get("error") if isinstance(data, dict) else None
        if error:  # the proxies answer errors here with HTTP 200
            message = error.get("message") if isinstance(error, dict) else error
            return f"GET {shown}: {shortened(message)}"
        if response.status >= 300:
            return f"GET {shown} answered {response.status}"
        return data if isinstance(data, dict) else f"GET {shown} answered {response.status} with no JSON object"
