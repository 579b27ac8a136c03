"""Keep-alive HTTP/1.1 connections, plain or over TLS, for the JSON requests of an online run.

aiohttp spends about 100 µs of CPU on each request, more than a local server (vLLM, llama.cpp,
Ollama) takes to answer a short one, so a run against such a server was bound by its own client.
A Pool writes a request as one buffer and parses the answer with httptools (llhttp, the parser in
Node.js), at about a sixth of that cost. It takes only what it does exactly like aiohttp: http, or
https through the loop's own TLS transport with the very SSLContext aiohttp is given (the same
certificates trusted, the hostname checked and sent as SNI as aiohttp sends it), no proxy, a POST
of bytes (or of a body with attachments, encoded.Body, streamed with its Content-Length under flow
control), a whole answer (client.py keeps proxies, uploads, streams and the Batch API's calls on
aiohttp). Redirects are answers like any other: nothing is followed.

Invariants: a connection carries one request at a time; it is reused only after an answer read
to its end that allows keep-alive, with nothing after it; a request that is cancelled, timed out
or failed closes its connection, so no late or stray answer is ever read as the next request's.
A TLS handshake is part of opening a connection: one that fails, a certificate refused included
(Untrusted), is Unsent, as nothing was written. Where a reply is unusual, it is read as aiohttp
reads it: its parser leniencies, interim 1xx replies skipped, unknown codings passed on, idle
connections dropped after IDLE_S. A body past its cap is not read on (its connection is closed),
nor decoded past it (bodies.py): the Reply says so instead of carrying it.
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import urlsplit

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

from .bodies import TooLarge, decode, mebibytes
from .encoded import Body
from .outbound import raw_host

IDLE_S = 15.0  # as aiohttp's keepalive_timeout: an older idle connection may have been dropped on the way
CONNECT_S = 10.0  # a server that does not accept a connection in this long is down, not slow


def connect_within(timeout: float) -> float:
    """How long opening a connection may take, within a request's `timeout`: half of it, at most
    CONNECT_S. A connection not made by then is Unsent (the server is down or unreachable); the
    rest of the timeout is the server's to answer in (it may be slow)."""
    return min(CONNECT_S, timeout / 2)


def pool_for(base_url: str, limit: int, cap: int | None, tls: ssl.SSLContext | None) -> Pool:
    """A pool to the host and port aiohttp would connect to for an http or https `base_url`; over
    https, trusting `tls` (which it then needs)."""
    url = urlsplit(base_url)
    if url.scheme != "https":
        return Pool(raw_host(base_url), url.port or 80, limit, cap)
    assert tls is not None
    return Pool(raw_host(base_url), url.port or 443, limit, cap, tls)


class Unsent(Exception):
    """No connection could be opened: the request never reached the server."""


class Untrusted(Unsent):
    """The server's certificate, or the name it is for, is not one the SSLContext trusts: no
    retry changes that, and nothing was sent."""


class Lost(Exception):
    """The connection failed after the request was written: it may have been read (and billed)."""


@dataclass(frozen=True)
class Reply:
    status: int
    headers: CIMultiDictProxy[str] = field(repr=False)
    body: bytes = field(repr=False)
    too_large: TooLarge | None = None  # the body passed its cap: not read, and `body` is empty


class Pool:
    """Up to `limit` keep-alive connections to one host and port, on the running loop it is made in.
    It and its connections keep that loop: asking asyncio for it costs a getpid() system call each
    time on Python 3.11, several microseconds on a virtual machine."""

    def __init__(self, host: str, port: int, limit: int, cap: int | None = None, tls: ssl.SSLContext | None = None):
        self._loop = asyncio.get_running_loop()
        self._host, self._port = host, port
        self._tls = tls  # https: the handshake checks the certificate against it, for the name sent as SNI
        self._name = host.rstrip(".") if tls else None  # as aiohttp: certificates name hosts without the final dot
        self._cap = mebibytes() if cap is None else cap  # bytes of an answer's body, decoded
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(limit)

    async def post(self, head: bytes, body: bytes | Body, timeout: float) -> Reply:
        """Send `head` (the request line and headers, without Content-Length and the blank line)
        and `body`; the whole answer, or Unsent, Lost or asyncio.TimeoutError after `timeout` s.
        A streamed body (with attachments) is written a chunk at a time as the connection takes
        it; a file found changed part way raises attachments.Changed, its connection closed."""
        loop = self._loop
        deadline = loop.time() + timeout
        await self._slots.acquire()  # as `async with`, one coroutine fewer on every request
        try:
            connect_by = loop.time() + connect_within(timeout)
            connection = self._kept() or await self._connect(min(deadline, connect_by), deadline <= connect_by)
            timer = loop.call_at(deadline, connection.time_out)
            try:
                if isinstance(body, bytes):
                    reply = await connection.exchange(b"%sContent-Length: %d\r\n\r\n%s" % (head, len(body), body))
                else:
                    reply = await connection.stream(b"%sContent-Length: %d\r\n\r\n" % (head, body.size), body)
            except BaseException:  # timed out, lost or cancelled: its answer, if any, is nobody's
                connection.close()
                raise
            finally:
                timer.cancel()
            if connection.reusable:
                connection.idle_since = loop.time()
                self._idle.append(connection)
            else:
                connection.close()
            return reply
        finally:
            self._slots.release()

    def _kept(self) -> _Connection | None:
        """An idle connection still worth using, if there is one."""
        now = self._loop.time()
        while self._idle:
            connection = self._idle.pop()  # the most recent: the least likely to be timed out by the server
            if connection.open and now - connection.idle_since < IDLE_S:
                return connection
            connection.close()
        return None

    async def _connect(self, deadline: float, own: bool = False) -> _Connection:
        """A new connection by `deadline`: the request's own when `own` (its wait for a free
        connection left less than connect_within), whose passing is then the request's timeout."""
        loop = self._loop
        allowed = deadline - loop.time()
        opening = loop.create_connection(
            lambda: _Connection(loop, self._cap), self._host, self._port, ssl=self._tls, server_hostname=self._name
        )
        try:
            transport, connection = await asyncio.wait_for(opening, max(0.0, allowed))
        except ssl.SSLCertVerificationError as exc:  # an OSError: before it
            said = exc.verify_message or exc.reason or exc
            raise Untrusted(f"cannot connect to {self._host}:{self._port}: certificate verify failed: {said}") from None
        except asyncio.TimeoutError:  # an OSError too, since Python 3.11
            if own:  # the request's time ran out, most of it waiting for a free connection: its own timeout
                raise
            raise Unsent(f"no connection to {self._host}:{self._port} within {allowed:.3g} s") from None
        except OSError as exc:
            raise Unsent(f"cannot connect to {self._host}:{self._port}: {exc.strerror or exc}") from None
        connection.connection_made(transport)  # uvloop may call it only after this returns
        if not connection.open:
            raise Unsent(f"{self._host}:{self._port} spoke before it was asked: not an HTTP server")
        return connection

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()


class _Connection(asyncio.Protocol):
    """One TCP connection and the answer being read on it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, cap: int) -> None:
        self._loop = loop
        self._cap = cap
        self._parser = httptools.HttpResponseParser(self)
        # the leniencies aiohttp's own parser takes for answers (bare LF, a control byte in a
        # header, spaces after a chunk size): what it reads, this reads
        self._parser.set_dangerous_leniencies(
            lenient_headers=True, lenient_optional_cr_before_lf=True, lenient_spaces_after_chunk_size=True
        )
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[Reply] | None = None
        self._headers: list[tuple[str, str]] = []
        self._body: list[bytes] = []
        self._size = 0  # of the body so far, as sent (before its Content-Encoding is undone)
        self._started = False  # some of the answer has arrived
        self._headers_done = False
        self._sized = False  # the answer's length is known (Content-Length or chunked), not "until closed"
        self.open = False
        self.reusable = False
        self.idle_since = 0.0
        self._paused = False  # the transport's buffer is above its high-water mark
        self._drain: asyncio.Future[None] | None = None  # a streamed body waiting for it to drain

    # -- the pool's side

    def exchange(self, message: bytes) -> asyncio.Future[Reply]:
        assert self._transport is not None and self._waiter is None
        if not self.open or self._transport.is_closing():
            raise Unsent("the connection closed before the request was written")
        self._waiter = self._loop.create_future()
        # the answer's headers and body start afresh with its message (on_message_begin)
        self._started = self._headers_done = self._sized = self.reusable = False
        self._transport.write(message)
        return self._waiter

    async def stream(self, head: bytes, body: Body) -> Reply:
        """Write `head`, then the body's chunks, each once the connection has taken the one before
        (flow control: the transport holds about a chunk at most); stop early when the answer came
        first (an error: the connection is not kept, as the server may read the rest as a request)."""
        waiter = self.exchange(head)
        whole = True
        try:
            for chunk in body.chunks():
                if waiter.done() or not self.open:
                    whole = False
                    break
                assert self._transport is not None
                self._transport.write(chunk)
                await self._drained()
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                waiter.exception()  # retrieved: a changed file is what is told, not what came with it
            waiter.cancel()
            raise
        reply = await waiter
        self.reusable = self.reusable and whole
        return reply

    async def _drained(self) -> None:
        """Back once the transport's buffer is below its low-water mark, or the connection closed."""
        if self._paused and self.open:
            self._drain = self._loop.create_future()
            await self._drain

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._wake()

    def _wake(self) -> None:
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    def time_out(self) -> None:
        self._fail(asyncio.TimeoutError())

    def close(self) -> None:
        self.open = False
        if self._transport is not None:
            self._transport.abort()  # no lingering: whatever the server still sends is not wanted
        self._wake()

    # -- asyncio's side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._transport is None:
            self._transport = cast(asyncio.Transport, transport)  # uvloop's is one without the subclass
            self.open = True

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:  # nothing was asked: a server talking out of turn is not to be trusted
            self.close()
            return
        self._started = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(Lost(f"the answer is not valid HTTP ({exc})"))
        except httptools.HttpParserUpgrade:  # a 101: what follows its head is no longer HTTP
            self.reusable = False
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self._wake()
        if self._waiter is None or self._waiter.done():
            return
        if self._started and self._headers_done and not self._sized:  # a body that ends when the connection does
            self.on_message_complete()
        elif self._started:
            self._fail(Lost("the answer was cut off (the connection closed before its end)"))
        else:
            self._fail(Lost("the server closed the connection without answering"))

    # -- the parser's callbacks

    def on_message_begin(self) -> None:
        if self._waiter is None:  # an answer after the answer: nobody's, so the connection is done
            self.reusable = False
            self.close()
        self._headers, self._body, self._size, self._headers_done = [], [], 0, False

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.decode("latin-1"), value.decode("utf-8", "surrogateescape")))

    def on_headers_complete(self) -> None:
        self._headers_done = True
        coding, sized = "", False
        for name, value in self._headers:
            lowered = name.lower()
            if lowered == "content-length":
                sized = True
            elif lowered == "transfer-encoding":
                coding = value  # the last one counts
        chunked = coding.rsplit(",", 1)[-1].strip().lower() == "chunked"
        self._sized = chunked or sized

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size <= self._cap:
            self._body.append(body)
        elif self._waiter is not None and not self._waiter.done():  # read no further: all but its body
            self._answer(TooLarge(self._cap))

    def on_message_complete(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:  # interim (100 Continue, 103 Early Hints): the answer follows
            return
        self._answer(None)

    def _answer(self, too_large: TooLarge | None) -> None:
        """Hand the answer to the request: whole, or (past its cap) without its body, whose
        connection is then closed, as the rest of it is never read."""
        waiter, self._waiter = self._waiter, None
        assert waiter is not None
        status = self._parser.get_status_code()
        headers = CIMultiDictProxy(CIMultiDict(self._headers))
        body = b""
        try:
            if too_large is None:
                body = decode(b"".join(self._body), headers.get("content-encoding", ""), self._cap)
        except TooLarge as exc:
            too_large = exc
        except (zlib.error, EOFError, ValueError) as exc:
            waiter.set_exception(Lost(f"the answer cannot be decoded ({exc})"))
            return
        self._body = []
        kept_alive = self.open and self._sized and status != 101 and self._parser.should_keep_alive()
        self.reusable = kept_alive and too_large is None
        if too_large is not None:
            self.close()
        waiter.set_result(Reply(status, headers, body, too_large))
        self._wake()  # a body still being written stops: the server answered before reading it all

    def _fail(self, exc: BaseException) -> None:
        waiter, self._waiter = self._waiter, None
        self.close()
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
