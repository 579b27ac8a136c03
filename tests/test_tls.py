"""The https transport (aiohttp's) over real TLS: the mock server with a test certificate, and raw
TLS servers that break where the mock cannot (in the handshake, in the middle of an answer).

tests/tls/ holds a test CA and a server certificate it signed for 127.0.0.1 and localhost, valid
from 2000 to 2100 (made once with `openssl ca`; the CA's own key was thrown away). The client
trusts the CA as a user trusts a private one: through SSL_CERT_FILE (a subprocess, since aiohttp
reads the trust store once, at import), or here in-process through the connector's `ssl` context.
"""

from __future__ import annotations

import asyncio
import csv
import os
import socket
import ssl
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import aiohttp
import pytest
from conftest import SECRET, chat_job, faults
from test_client import chat_request

from batchgpt.client import Answer, Client
from batchgpt.mock import Config, MockServer
from batchgpt.records import UNSENT, Failure, Pack, Provider

TLS = Path(__file__).parent / "tls"
CA = TLS / "ca.pem"


def server_context() -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(TLS / "server.pem", TLS / "server.key")
    return context


@pytest.fixture(scope="module")
def https() -> Iterator[MockServer]:
    """The mock server over https; shared, so tests that change its faults set them back."""
    mock = MockServer(Config(api_key=SECRET, hang_s=5, tls=server_context())).start()
    yield mock
    mock.stop()


@pytest.fixture
def trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client's connector verifies certificates against the test CA (hostname included)."""
    monkeypatch.setattr(
        aiohttp, "TCPConnector", partial(aiohttp.TCPConnector, ssl=ssl.create_default_context(cafile=CA))
    )


def send(base_url: str, stream: bool = False, timeout: float = 30.0) -> Answer | Failure:
    async def go() -> Answer | Failure:
        async with Client(Provider(base_url=base_url), SECRET, timeout, 4) as client:
            return await client.send(Pack.of(chat_request(stream=stream, text="over TLS")))

    return asyncio.run(go())


@pytest.mark.parametrize("stream", [False, True])
def test_answers_arrive_over_tls(https, trusted, stream):
    answer = send(https.base_url, stream)
    assert https.base_url.startswith("https://")
    assert isinstance(answer, Answer) and answer.status == 200
    assert answer.data["choices"][0]["message"]["content"] == "Echo: over TLS"
    assert https.seen[-1].headers["authorization"] == f"Bearer {SECRET}"  # the key went inside the tunnel


def test_other_routes_go_over_tls_too(https, trusted):
    async def go() -> Answer | Failure:
        async with Client(Provider(base_url=https.base_url), SECRET, 30, 4) as client:
            return await client.call("GET", "/models")

    answer = asyncio.run(go())
    assert isinstance(answer, Answer) and "gpt-4o-mini" in [m["id"] for m in answer.data["data"]]


def test_an_untrusted_certificate_says_how_to_trust_it(https):
    before = len(https.seen)
    failure = send(https.base_url)
    assert isinstance(failure, Failure) and failure.cause == "certificate" and not failure.transient
    assert failure.message.startswith(UNSENT) and not failure.maybe_billed  # nothing was sent, nothing billed
    assert "certificate" in failure.message and "SSL_CERT_FILE" in failure.message
    assert len(https.seen) == before


def test_an_untrusted_certificate_stops_the_run_at_once(cli, https, write_job, tmp_path):
    # No retry makes the server trusted: one attempt, then no new request, and the run says how to
    # trust it. The items are not at fault, so a plain rerun (with SSL_CERT_FILE set) sends them.
    path = write_job(chat_job(["a", "b", "c"], limits={"timeout": 30, "max_retries": 5, "concurrency": 1}))
    result = cli("run", str(path), "--base-url", https.base_url, base_url=False)
    assert result.exit_code != 0 and "SSL_CERT_FILE" in result.output
    with (tmp_path / "out" / "t.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["status"] for r in rows] == ["error", "skipped", "skipped"]
    assert rows[0]["attempts"] == "1" and "certificate" in rows[0]["error"]


def test_ssl_cert_file_is_the_fix_the_error_names(https, write_job, tmp_path):
    path = write_job(chat_job(["through a private CA"], limits={"timeout": 30, "max_retries": 1}))
    env = {**os.environ, "OPENAI_API_KEY": SECRET, "SSL_CERT_FILE": str(CA)}
    done = subprocess.run(
        [sys.executable, "-m", "batchgpt.cli", "run", str(path), "--base-url", https.base_url],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Echo: through a private CA" in (tmp_path / "out" / "t.csv").read_text(encoding="utf-8")


def test_a_connection_the_server_drops_over_tls_may_have_been_billed(https, trusted):
    faults(https, "drop")
    try:
        failure = send(https.base_url)
    finally:
        faults(https)
    assert isinstance(failure, Failure) and failure.cause == "connection" and failure.maybe_billed


# ---------------------------------------------------------------- servers that break


def serve_once(handle: Callable[[socket.socket], None]) -> Iterator[str]:
    """A server on a free loopback port that hands each connection to `handle`; yields its base URL."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                try:
                    handle(connection)
                except OSError:
                    pass  # the client gave up first

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{listener.getsockname()[1]}/v1"
    finally:
        stop.set()
        listener.shutdown(socket.SHUT_RDWR)  # wakes accept(), which close() alone does not
        listener.close()
        thread.join(10)


def reset(connection: socket.socket) -> None:
    """Read the client's hello, then reset the connection (SO_LINGER 0 sends RST, not FIN)."""
    connection.recv(4096)
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def read_request(tls: ssl.SSLSocket) -> None:
    """The request's head and body, all of it (so the client waits for the answer, not to send)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += tls.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    while len(body) < length:
        body += tls.recv(65536)


def cut(answer: bytes, connection: socket.socket) -> None:
    """Answer part of `answer` over TLS, then close the connection."""
    with server_context().wrap_socket(connection, server_side=True) as tls:
        read_request(tls)
        tls.sendall(answer)


CUT_JSON = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{"id": "chatcmpl-1", "cho'
EVENT = b'data: {"choices": [{"index": 0, "delta": {"content": "Hi"}}]}\n\n'
CUT_STREAM = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    + f"{len(EVENT):x}\r\n".encode()
    + EVENT
    + b"\r\n"
)


def test_a_handshake_reset_is_a_connection_never_made():
    for base_url in serve_once(reset):
        failure = send(base_url)
        assert isinstance(failure, Failure) and failure.cause == "connection"
        assert failure.message.startswith(UNSENT) and not failure.maybe_billed


@pytest.mark.parametrize("answer,stream", [(CUT_JSON, False), (CUT_STREAM, True)], ids=["json", "stream"])
def test_an_answer_cut_off_over_tls_may_have_been_billed(trusted, answer, stream):
    for base_url in serve_once(partial(cut, answer)):
        failure = send(base_url, stream)
        assert isinstance(failure, Failure) and failure.cause == "connection" and "cut off" in failure.message
        assert failure.maybe_billed and not failure.message.startswith(UNSENT)
