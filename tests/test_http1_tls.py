"""http1's pool over real TLS, with tests/tls's certificate (for 127.0.0.1 and localhost, signed by
the test CA): the wire cases of test_http1.py through the loop's TLS transport, on asyncio's loop
and on uvloop's (the command line's where it is installed), the handshake's refusals as Unsent
(a certificate or a name not trusted as Untrusted), and a Client sending an https task's request
through the pool with the SSLContext aiohttp is given, proxies left to aiohttp."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from conftest import SECRET
from test_client import chat_request
from test_http1 import HEAD, Script, answer_each, ok, serve
from test_tls import CA, OTHER_CA, server_context

from batchgpt import http1
from batchgpt.client import Answer, Client
from batchgpt.mock import Config, MockServer
from batchgpt.outbound import host_header, raw_host
from batchgpt.providers.trust import system_context
from batchgpt.records import UNSENT, Failure, Pack, Provider

LOOPS = ["asyncio", "uvloop"]


@pytest.fixture(params=LOOPS)
def loop_run(request: pytest.FixtureRequest) -> Callable[[Awaitable[Any]], Any]:
    """asyncio.run, or uvloop.run (skipped where uvloop is not installed)."""
    if request.param == "asyncio":
        return asyncio.run
    uvloop = pytest.importorskip("uvloop")
    return uvloop.run  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
def _no_bundle_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def trusting(ca: Any = CA) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


def over_tls(
    loop_run: Callable[[Awaitable[Any]], Any],
    script: Script,
    client: Callable[[http1.Pool], Awaitable[Any]],
    host: str = "127.0.0.1",
    tls: ssl.SSLContext | None = None,
) -> tuple[Any, list[int]]:
    """`client(pool)` against `script` served over TLS on `host`; what it returned, and the
    connection each request came on."""

    async def go() -> tuple[Any, list[int]]:
        server, port, on, _ = await serve(script, server_context(), host)
        pool = http1.Pool(host, port, 4, None, tls or trusting())
        try:
            return await client(pool), on
        finally:
            pool.close()
            server.close()

    return loop_run(go())


# ---------------------------------------------------------------- the wire, over TLS


def test_answers_come_over_one_kept_alive_tls_connection(loop_run) -> None:
    async def client(pool: http1.Pool) -> list[int]:
        return [(await pool.post(HEAD, b"{}", 5)).status for _ in range(5)]

    statuses, on = over_tls(loop_run, answer_each, client)
    assert statuses == [200] * 5 and on == [1] * 5  # one handshake, five requests


def test_a_body_that_ends_with_the_tls_connection_is_read_whole(loop_run) -> None:
    async def until_closed(number: int, request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"whole": true}')
        await writer.drain()
        writer.close()  # TLS's close_notify, then the connection's end

    async def client(pool: http1.Pool) -> list[bytes]:
        return [(await pool.post(HEAD, b"{}", 5)).body for _ in range(2)]

    bodies, on = over_tls(loop_run, until_closed, client)
    assert bodies == [b'{"whole": true}'] * 2 and on == [1, 2]


@pytest.mark.parametrize(
    "sent,error",
    [
        (b"", "closed the connection without answering"),
        (b'HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{"cut', "cut off"),
        (b"SSH-2.0-OpenSSH_9.6\r\n", "not valid HTTP"),
    ],
)
def test_an_answer_broken_over_tls_is_lost_and_its_connection_never_reused(loop_run, sent: bytes, error: str) -> None:
    async def broken_first(number: int, request: bytes, writer: asyncio.StreamWriter) -> None:
        if number == 1:
            writer.write(sent)
            await writer.drain()
            writer.transport.abort()
        else:
            writer.write(ok(number))

    async def client(pool: http1.Pool) -> tuple[str, bytes]:
        with pytest.raises(http1.Lost) as lost:
            await pool.post(HEAD, b"{}", 5)
        return str(lost.value), (await pool.post(HEAD, b"{}", 5)).body

    (message, after), on = over_tls(loop_run, broken_first, client)
    assert error in message and after == b'{"n": 2}' and on == [1, 2]


def test_a_timed_out_request_over_tls_closes_its_connection(loop_run) -> None:
    async def late_first(number: int, request: bytes, writer: asyncio.StreamWriter) -> None:
        if number == 1:
            await asyncio.sleep(0.3)
        writer.write(ok(number))

    async def client(pool: http1.Pool) -> bytes:
        with pytest.raises(asyncio.TimeoutError):
            await pool.post(HEAD, b"{}", 0.1)
        await asyncio.sleep(0.3)
        return (await pool.post(HEAD, b"{}", 5)).body

    after, on = over_tls(loop_run, late_first, client)
    assert after == b'{"n": 2}' and on == [1, 2]


# ---------------------------------------------------------------- the handshake


@pytest.mark.parametrize(
    "host,tls,said",
    [
        ("127.0.0.1", trusting(OTHER_CA), "unable to get local issuer certificate"),
        ("127.0.0.1", system_context(), "unable to get local issuer certificate"),  # the test CA is no public one
        ("127.0.0.2", trusting(), "IP address mismatch"),  # the certificate is for 127.0.0.1 and localhost
    ],
    ids=["other-ca", "system-store", "other-name"],
)
def test_a_certificate_not_trusted_is_untrusted_and_nothing_is_sent(loop_run, host, tls, said) -> None:
    async def client(pool: http1.Pool) -> str:
        with pytest.raises(http1.Untrusted) as refused:
            await pool.post(HEAD, b"{}", 5)
        return str(refused.value)

    message, on = over_tls(loop_run, answer_each, client, host, tls)
    assert "certificate verify failed" in message and said in message and on == []


def test_an_https_pool_on_a_plain_http_server_is_unsent_not_untrusted(loop_run) -> None:
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)  # the client's hello, answered as a plain-http server answers what it cannot read
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        writer.close()

    async def go() -> BaseException:
        server = await asyncio.start_server(refuse, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pool = http1.Pool("127.0.0.1", port, 1, None, trusting())
        try:
            with pytest.raises(http1.Unsent) as unsent:
                await pool.post(HEAD, b"{}", 5)
            return unsent.value
        finally:
            pool.close()
            server.close()

    failed = loop_run(go())
    assert not isinstance(failed, http1.Untrusted) and "cannot connect to 127.0.0.1" in str(failed)


def test_the_host_name_is_sent_as_sni_and_an_address_is_not(loop_run) -> None:
    names: list[str | None] = []
    context = server_context()
    context.sni_callback = lambda tls, name, _: names.append(name)  # type: ignore[assignment,func-returns-value]

    async def go() -> list[int]:
        server, port, _, _ = await serve(answer_each, context)
        try:
            statuses = []
            for host in ("localhost", "127.0.0.1"):
                pool = http1.Pool(host, port, 1, None, trusting())
                statuses.append((await pool.post(HEAD, b"{}", 5)).status)
                pool.close()
            return statuses
        finally:
            server.close()

    assert loop_run(go()) == [200, 200] and names == ["localhost", None]


def hello(context: ssl.SSLContext) -> tuple[str | None, str | None]:
    """The SNI and the ALPN protocol a server sees when `context` says hello to "localhost", its
    handshake run in memory up to the certificate the client then checks."""
    names: list[str | None] = []
    server_side = server_context()
    server_side.set_alpn_protocols(["h2", "http/1.1"])
    server_side.sni_callback = lambda tls, name, _: names.append(name)  # type: ignore[assignment,func-returns-value]
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = context.wrap_bio(to_client, to_server, server_hostname="localhost")
    server = server_side.wrap_bio(to_server, to_client, server_side=True)
    for side in (client, server):
        try:
            side.do_handshake()
        except ssl.SSLWantReadError:
            pass
    return names[0], server.selected_alpn_protocol()


def test_the_system_store_s_context_is_the_one_aiohttp_makes_for_itself() -> None:
    from aiohttp.connector import _make_ssl_context

    # both made afresh: a context's store also caches what a handshake looked up in $SSL_CERT_DIR
    ours, aiohttps = system_context.__wrapped__(), _make_ssl_context(True)
    for facts in (
        lambda c: (c.protocol, c.verify_mode, c.check_hostname, c.options, c.verify_flags),
        lambda c: (c.minimum_version, c.maximum_version, c.cert_store_stats(), c.get_ca_certs()),
        hello,
    ):
        assert facts(ours) == facts(aiohttps)
    assert hello(ours) == ("localhost", "http/1.1")


# ---------------------------------------------------------------- a Client's https requests


@pytest.fixture(scope="module")
def https() -> Iterator[MockServer]:
    mock = MockServer(Config(api_key=SECRET, hang_s=5, tls=server_context())).start()
    yield mock
    mock.stop()


async def sent_by(provider: Provider, stream: bool = False) -> tuple[Answer | Failure, bool, bool]:
    """One request's outcome, whether the client has a pool, and whether aiohttp was opened."""
    async with Client(provider, SECRET, 10, 4) as client:
        outcome = await client.send(Pack.of(chat_request(stream=stream, text="over TLS")))
        return outcome, client._pool is not None, client._session is not None


def test_an_https_task_s_request_goes_through_the_pool_and_not_aiohttp(https, monkeypatch, loop_run) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(CA))
    answer, pooled, opened = loop_run(sent_by(Provider(base_url=https.base_url)))
    assert isinstance(answer, Answer) and answer.data["choices"][0]["message"]["content"] == "Echo: over TLS"
    assert pooled and not opened
    assert https.seen[-1].headers["authorization"] == f"Bearer {SECRET}"
    streamed, _, opened = loop_run(sent_by(Provider(base_url=https.base_url), stream=True))
    assert isinstance(streamed, Answer) and opened  # a streamed answer is aiohttp's, as over http


def test_a_name_the_certificate_is_not_for_stops_as_a_certificate_failure_never_billed(monkeypatch, loop_run) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(CA))

    async def go() -> tuple[Answer | Failure, bool, bool]:
        server, port, on, _ = await serve(answer_each, server_context(), "127.0.0.2")
        try:
            return await sent_by(Provider(base_url=f"https://127.0.0.2:{port}/v1"))
        finally:
            server.close()

    failure, pooled, opened = loop_run(go())
    assert isinstance(failure, Failure) and failure.cause == "certificate" and not failure.transient, failure
    assert failure.message.startswith(UNSENT) and not failure.maybe_billed and "IP address mismatch" in failure.message
    assert (
        f"not trusted by the CA bundle {CA} ($REQUESTS_CA_BUNDLE)" in failure.message and SECRET not in failure.message
    )
    assert pooled and not opened


def test_an_https_proxy_from_the_environment_keeps_requests_on_aiohttp_s_tunnel(monkeypatch, loop_run) -> None:
    heads: list[bytes] = []

    async def go() -> tuple[Answer | Failure, bool, bool]:
        async def connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            heads.append(await reader.readuntil(b"\r\n\r\n"))
            writer.close()  # no tunnel: the request fails, unsent

        proxy = await asyncio.start_server(connect, "127.0.0.1", 0)
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.sockets[0].getsockname()[1]}")
        try:
            return await sent_by(Provider(base_url="https://api.example.test/v1"))
        finally:
            proxy.close()

    failure, pooled, opened = loop_run(go())
    assert not pooled and opened and isinstance(failure, Failure) and failure.cause == "connection"
    assert heads and heads[0].startswith(b"CONNECT api.example.test:443 ") and SECRET.encode() not in heads[0]


@pytest.mark.parametrize(
    "url",
    [
        "https://api.example.com/v1/chat/completions",
        "https://api.example.com:443/v1/x",
        "https://API.Example.com:8443/v1/x",
        "http://127.0.0.1:80/v1/x",
        "http://127.0.0.1:8000/v1/x",
        "https://gateway.example.com./v1/x",
        "https://[::1]:8443/v1/x",
        "https://bücher.example/v1/x",
        "https://straße.example:8443/v1/x",
    ],
)
def test_the_host_header_and_the_name_connected_to_are_aiohttp_s(url: str) -> None:
    from yarl import URL

    assert host_header(url) == URL(url).host_port_subcomponent
    assert raw_host(url) == URL(url).raw_host


def test_no_server_over_https_is_unsent(loop_run) -> None:
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        port = spare.getsockname()[1]
        failure, pooled, _ = loop_run(sent_by(Provider(base_url=f"https://127.0.0.1:{port}/v1")))
    assert pooled and isinstance(failure, Failure) and failure.cause == "connection" and failure.transient
    assert failure.message.startswith(UNSENT) and not failure.maybe_billed


def test_a_ca_bundle_is_loaded_once_for_its_check_and_its_use(monkeypatch) -> None:
    from batchgpt.providers import trust

    made: list[str | None] = []
    real = ssl.create_default_context

    def counted(*args: Any, cafile: str | None = None, **kwargs: Any) -> ssl.SSLContext:
        made.append(cafile)
        return real(*args, cafile=cafile, **kwargs)

    monkeypatch.setattr(trust.ssl, "create_default_context", counted)
    trust._context.cache_clear()  # a system's whole bundle takes tens of ms to load
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(CA))
    assert trust.bundle_problem(str(CA)) is None  # the job's check
    trust.tls_context(Provider(base_url="https://127.0.0.1/v1"))  # the client's
    assert made == [str(CA)]
