"""The HTTP transport: the only module that imports aiohttp. A Client holds one aiohttp session
(opened on its first use) and one http1 pool per provider and run, with the proxy and TLS aiohttp
brings, and sends one attempt of one request: a task's (`send`), or another route's (`call`,
`request`, `download`: the Batch API's files and batches, the billing routes). What came back is
an answers.Answer or a records.Failure; whether to try again is retry.py's business.

The API key goes only in each request's headers (never a session's default, which aiohttp copies
into an https proxy's CONNECT). Everything a server sends is stripped of secrets as it arrives
(redact.py). Redirects are not followed (answers.redirected). Where requests go and how they are
authenticated is the provider's (providers/). A task's JSON request with no proxy goes through
http1.Pool instead, over http or https (one SSLContext for both, providers/trust.py): the same
bytes and answers at a sixth of aiohttp's CPU per request; a streamed one is read by sse.py.
Every body is read up to its cap and no further (bodies.py): an answer past it is a Failure. A
request with attached files (attachments.py) is streamed, on either transport, with its exact
Content-Length, each file read afresh for each attempt or served from the run's cache of files used
again (encoded.py); a file changed since the job was checked fails its item (cause `attachment`).
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson
from multidict import CIMultiDict

from . import http1
from .answers import Answer, read_answer, redirected, too_large
from .attachments import Changed
from .bodies import Cut, TooLarge, capped_lines, mebibytes, read_capped
from .downloads import write_lines
from .encoded import Body, Encodings
from .files import atomic_write
from .outbound import env_proxy, host_header, target
from .providers import api_of
from .providers.trust import tls_context, untrusted, uses_tls
from .records import UNSENT, Failure, Pack, Provider, Request, shortened, shown_url
from .redact import Redactor
from .sse import read_stream

if TYPE_CHECKING:  # aiohttp is imported where a request needs it: a run on http1 alone never does (0.1 s)
    import aiohttp

__all__ = ["Answer", "Client"]
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # what no header may hold (a tab may)


class Client:
    """One aiohttp session (opened on its first use) and one http1 pool per provider and run."""

    def __init__(
        self,
        provider: Provider,
        api_key: str | None,
        timeout: float,
        connections: int,
        max_answer: int | None = None,
        encodings: Encodings | None = None,
    ):
        self.provider = provider
        self.encodings = encodings or Encodings()  # attached files used again, kept encoded (shared by a run's clients)
        self._cap = mebibytes() if max_answer is None else max_answer  # bytes of one answer, decoded
        self._api = api_of(provider)
        self._key = api_key
        self._headers = self._api.headers(provider, api_key)
        self._redact = Redactor(provider, api_key)
        self._timeout = timeout
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None
        self._proxy: str | None = None
        self._pool: http1.Pool | None = None  # no proxy: the lean way (http1.py)
        self._tls: ssl.SSLContext | None = None  # the provider's CA bundle or the system's store; None: no TLS
        self._heads: dict[str, bytes] = {}  # a URL's request line and headers, for the pool

    def __repr__(self) -> str:
        return f"Client(base_url={shown_url(self.provider.base_url)!r})"

    async def __aenter__(self) -> Client:
        # HTTPS_PROXY, HTTP_PROXY and NO_PROXY are read here, once: aiohttp's trust_env would look
        # them (and ~/.netrc) up in a thread for every request, which costs a third of throughput.
        self._proxy = self.provider.proxy or env_proxy(self.provider.base_url)
        self._redact = Redactor(self.provider, self._key, self._proxy)  # the proxy in use may carry a password
        self._json_headers = {**self._headers, "Content-Type": "application/json"}
        self._tls = tls_context(self.provider) if uses_tls(self.provider) else None
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

            connector = aiohttp.TCPConnector(
                limit=self._connections, limit_per_host=0, ttl_dns_cache=300, ssl=self._tls or True
            )
            # The key and the provider's headers go on each request, never as the session's defaults:
            # aiohttp copies those into the CONNECT request an https call opens a proxy tunnel with
            # (Authorization as Proxy-Authorization), in clear text, to the proxy.
            self._session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(self._timeout))
        return self._session

    def _plain_pool(self) -> http1.Pool | None:
        """A pool for the base URL when http1 can do all aiohttp would: http or https (aiohttp's
        SSLContext), no proxy, no credentials in the URL, and header values aiohttp would send (no
        control characters)."""
        url = urlsplit(self.provider.base_url)
        if url.scheme not in ("http", "https") or self._proxy or "@" in url.netloc or not url.hostname:
            return None
        if any(_CONTROL.search(text) for pair in self._json_headers.items() for text in pair):
            return None  # aiohttp refuses them with an error of its own
        return http1.pool_for(self.provider.base_url, self._connections, self._cap, self._tls)

    def _head(self, url: str) -> bytes:
        """The request line and headers of a JSON POST to `url`, built once, as aiohttp would send
        them: the target percent-encoded and the Host as yarl has them, and a provider's own Host or
        Accept in place of the usual one."""
        head = self._heads.get(url)
        if head is None:
            headers = CIMultiDict({"Host": host_header(url), "Accept": "*/*"})
            for name, value in self._json_headers.items():
                headers[name] = value  # replaces a header of the same name, in any case
            lines = [f"POST {target(url)} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
            head = self._heads[url] = ("\r\n".join(lines) + "\r\n").encode()
        return head

    def url(self, request: Request) -> str:
        """Where a task's request goes, as the provider lays its API out."""
        return self._api.url(self.provider, request.endpoint, request.model)

    async def send(self, pack: Pack, timeout: float | None = None) -> Answer | Failure:
        """One attempt at one pack (usually a single request), waiting `timeout` seconds for its
        answer (the client's own timeout when None)."""
        timeout = timeout or self._timeout
        if not self._api.openai_wire:
            pack = self._mapped(pack)
        outcome: Answer | Failure
        changed: list[Changed] = []  # an attached file found changed, before or while its body is written
        try:  # attached files are streamed into the body, never held whole (encoded.py)
            first = pack.first
            body = self.encodings.body(pack.payload, first.attachments, first.id) if first.attachments else None
        except Changed as exc:
            changed.append(exc)
        else:
            if self._pool is not None and not pack.first.files and not pack.body.get("stream"):
                outcome = await self._send_plain(self._pool, pack, body, timeout, changed)
            else:
                outcome = await self._send(pack, body, timeout, changed)
        if changed:  # whatever the transport made of a body cut short
            outcome = Failure("attachment", f"{changed[0]}: not sent")
        if isinstance(outcome, Failure):
            return replace(outcome, message=self._redact.text(outcome.message))
        if not self._api.openai_wire:
            return replace(outcome, data=self._api.answer(pack.first.endpoint, outcome.data))
        return outcome

    def _mapped(self, pack: Pack) -> Pack:
        """The pack as a provider that does not speak OpenAI's wire format takes it."""
        body = dict(self._api.request(pack.first.endpoint, pack.body))
        return replace(pack, body=body, payload=orjson.dumps(body))

    async def _send(self, pack: Pack, body: Body | None, timeout: float, changed: list[Changed]) -> Answer | Failure:
        """One attempt through aiohttp: what http1 does not do (see _plain_pool)."""
        import aiohttp

        started = time.monotonic()
        sent = self._headers if pack.first.files else self._json_headers
        try:
            async with self._aiohttp().post(
                self.url(pack.first),
                data=_body(pack) if body is None else _streamed(body, changed),
                headers=sent if body is None else {**sent, "Content-Length": str(body.size)},
                proxy=self._proxy,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(timeout, sock_connect=http1.connect_within(timeout)),
            ) as response:
                headers = response.headers  # case-insensitive, as HTTP header names are
                if 300 <= response.status < 400:
                    return redirected(response.status, headers, self._redact)
                event_stream = headers.get("content-type", "").startswith("text/event-stream")
                try:
                    if response.status < 300 and pack.body.get("stream") and event_stream:
                        lines = capped_lines(response.content.iter_any(), self._cap)
                        return await read_stream(lines, response.status, headers, started, self._redact)
                    raw = self._redact.raw(await _read(response, self._cap))
                except TooLarge as exc:
                    response.close()  # the rest is not wanted, and the connection cannot carry another answer
                    return too_large(response.status, headers, exc)
        except aiohttp.ServerTimeoutError:  # the connection was not made (no sock_read timeout is set)
            return Failure("connection", f"{UNSENT}: no connection within {http1.connect_within(timeout):g} s")
        except asyncio.TimeoutError:
            return Failure("timeout", f"no complete answer within {timeout:g} s")
        except aiohttp.ClientPayloadError as exc:
            return Failure("connection", f"the answer was cut off ({self._said(exc)})")
        except (aiohttp.ClientConnectorError, aiohttp.ClientHttpProxyError) as exc:  # the request never left
            return self._unsent(exc)
        except (aiohttp.ClientError, OSError) as exc:
            return Failure("connection", f"{type(exc).__name__}: {self._said(exc)}")
        return read_answer(response.status, headers, raw, self._redact)

    async def _send_plain(
        self, pool: http1.Pool, pack: Pack, body: Body | None, timeout: float, changed: list[Changed]
    ) -> Answer | Failure:
        try:
            reply = await pool.post(self._head(self.url(pack.first)), pack.payload if body is None else body, timeout)
        except Changed as exc:
            changed.append(exc)
            return Failure("attachment", str(exc))
        except asyncio.TimeoutError:
            return Failure("timeout", f"no complete answer within {timeout:g} s")
        except http1.Unsent as exc:  # Untrusted: a certificate no retry makes trusted, as in _unsent
            cause = "certificate" if isinstance(exc, http1.Untrusted) else "connection"
            return Failure(cause, f"{UNSENT}: {self._said(exc)}")
        except http1.Lost as exc:
            return Failure("connection", self._said(exc))
        if 300 <= reply.status < 400:
            return redirected(reply.status, reply.headers, self._redact)
        if reply.too_large is not None:
            return too_large(reply.status, reply.headers, reply.too_large)
        return read_answer(reply.status, reply.headers, self._redact.raw(reply.body), self._redact)

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
        the base URL as the provider lays it out (`route`). `upload`: (field, file, other form
        fields) as multipart; `binary`: a 2xx answer is the raw bytes (a file's content), in
        `data["_binary"]`."""
        url, query = self.route(path)
        return await self.request(
            method, url, {**query, **(params or {})}, json_body=json_body, upload=upload, binary=binary
        )

    async def request(
        self,
        method: str,
        url: str,
        params: Mapping[str, str] | None = None,
        *,
        json_body: Mapping[str, Any] | None = None,
        upload: tuple[str, Path, Mapping[str, str]] | None = None,
        binary: bool = False,
    ) -> Answer | Failure:
        """One call to `url` with this provider's headers, as `call` makes it. Uploads and
        downloads may take long: the timeout is per read, not for the whole call."""
        import aiohttp

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
                    params=params,
                    proxy=self._proxy,
                    allow_redirects=False,
                    timeout=timeout,
                ) as response:
                    if 300 <= response.status < 400:
                        return redirected(response.status, response.headers, self._redact)
                    try:
                        raw = self._redact.raw(await _read(response, self._cap))
                    except TooLarge as exc:
                        response.close()
                        return too_large(response.status, response.headers, exc)
                    if binary and response.status < 300:
                        return Answer(response.status, response.headers, {"_binary": raw})
                    outcome = read_answer(response.status, response.headers, raw, self._redact)
            except asyncio.TimeoutError:
                outcome = Failure("timeout", f"no answer within {self._timeout:g} s")
            except (aiohttp.ClientConnectorError, aiohttp.ClientHttpProxyError) as exc:
                outcome = self._unsent(exc)
            except (aiohttp.ClientError, OSError) as exc:
                outcome = Failure("connection", f"{type(exc).__name__}: {self._said(exc)}")
        if isinstance(outcome, Failure):
            return replace(outcome, message=self._redact.text(outcome.message))
        return outcome

    async def download(self, path: str, destination: Path, limit: int) -> Failure | Cut | None:
        """Stream a file's content (`/files/ID/content`) to `destination`, whole or not at all
        (files.atomic_write), with secrets replaced line by line (no secret spans a line break).
        A line past the answer cap is written as a line naming it (downloads.py); past `limit`
        bytes the rest is not read, and the file keeps the lines before it: a Cut says so."""
        import aiohttp

        url, query = self.route(path)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._timeout, sock_read=self._timeout)
        try:
            async with self._aiohttp().get(
                url, params=query, headers=self._headers, proxy=self._proxy, allow_redirects=False, timeout=timeout
            ) as response:
                if response.status >= 300:
                    try:
                        raw = self._redact.raw(await _read(response, self._cap))
                    except TooLarge as exc:
                        response.close()
                        return too_large(response.status, response.headers, exc)
                    failure = read_answer(response.status, response.headers, raw, self._redact)
                    assert isinstance(failure, Failure)
                    return failure
                with atomic_write(destination, "wb") as handle:
                    chunks = response.content.iter_chunked(1 << 20)
                    cut = await write_lines(chunks, handle.write, limit, self._cap, self._redact)
                if cut is not None:
                    response.close()
                return cut
        except asyncio.TimeoutError:
            return Failure("timeout", f"no data for {self._timeout:g} s")
        except (aiohttp.ClientError, OSError) as exc:
            return Failure("connection", f"{type(exc).__name__}: {self._said(exc)}")
        return None

    def route(self, path: str) -> tuple[str, dict[str, str]]:
        """The URL and query of an API route (`/files`, `/batches/ID`) on this provider."""
        return self._api.route(self.provider, path)

    def _unsent(self, exc: BaseException) -> Failure:
        """A request that never left: no connection, or a server certificate this process does not
        trust, which no retry changes (cause `certificate`: the run stops and says how to trust it)."""
        import aiohttp

        cause = "certificate" if isinstance(exc, aiohttp.ClientConnectorCertificateError) else "connection"
        return Failure(cause, f"{UNSENT}: {type(exc).__name__}: {self._said(exc)}")

    def _said(self, exc: BaseException) -> str:
        """An exception's text (which may hold a proxy URL), without secrets, then shortened; for a
        certificate this process does not trust, how to trust it."""
        import aiohttp

        said = shortened(self._redact.text(str(exc)))
        refused = (aiohttp.ClientConnectorCertificateError, http1.Untrusted)
        return said + untrusted(self.provider) if isinstance(exc, refused) else said


async def _read(response: aiohttp.ClientResponse, cap: int) -> bytes:
    """An answer's body, decoded by aiohttp a bounded step at a time, and read up to `cap`:
    TooLarge past it, at once when its Content-Length says so (and no coding may shrink it)."""
    length = response.content_length
    if length is not None and length > cap and not response.headers.get("content-encoding"):
        raise TooLarge(cap)
    return await read_capped(response.content.iter_any(), cap)


async def _streamed(body: Body, changed: list[Changed]) -> AsyncIterator[bytes]:
    """A body with attachments as aiohttp writes one (each chunk once the connection has taken the
    one before); a file changed part way is noted in `changed` (aiohttp tells it as a failed
    connection)."""
    try:
        for chunk in body.chunks():
            yield chunk
    except Changed as exc:
        changed.append(exc)
        raise


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
