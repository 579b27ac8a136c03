"""https over real TLS, on both transports (http1's pool for a whole answer, aiohttp for a streamed
one): the mock server with a test certificate, and raw TLS servers that break where the mock
cannot (in the handshake, in the middle of an answer). test_http1_tls.py has the pool's own cases.

tests/tls/ holds a test CA and a server certificate it signed for 127.0.0.1 and localhost, valid
from 2000 to 2100 (made once with `openssl ca`; the CA's own key was thrown away), and another CA
certificate that signs nothing here (other-ca.pem, `openssl req -x509`, its key thrown away too).
The client trusts the test CA as a user trusts a private one: through `provider.ca_bundle`
(--ca-bundle), $REQUESTS_CA_BUNDLE or $SSL_CERT_FILE, read when a client opens (providers/trust.py).
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


@pytest.fixture(autouse=True)
def _no_bundle_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many machines set these to the system's store (this one does): a test that trusts the test CA
    some other way, or none, must not find them."""
    for name in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def https() -> Iterator[MockServer]:
    """The mock server over https; shared, so tests that change its faults set them back."""
    mock = MockServer(Config(api_key=SECRET, hang_s=5, tls=server_context())).start()
    yield mock
    mock.stop()


@pytest.fixture
def trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client verifies certificates against the test CA (hostname included), as a user's
    REQUESTS_CA_BUNDLE makes it (providers/trust.py)."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(CA))


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
    # trust it. The items are not at fault, so a plain rerun (with a CA bundle set) sends them.
    path = write_job(chat_job(["a", "b", "c"], limits={"timeout": 30, "max_retries": 5, "concurrency": 1}))
    result = cli("run", str(path), "--base-url", https.base_url, base_url=False)
    assert result.exit_code != 0 and "not trusted" in result.output
    assert "provider.ca_bundle" in result.output and "SSL_CERT_FILE" in result.output
    with (tmp_path / "out" / "t.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["status"] for r in rows] == ["error", "skipped", "skipped"]
    assert rows[0]["attempts"] == "1" and "certificate" in rows[0]["error"]


def test_ssl_cert_file_is_the_fix_the_error_names(https, write_job, tmp_path):
    path = write_job(chat_job(["through a private CA"], limits={"timeout": 30, "max_retries": 1}))
    env = {**os.environ, "OPENAI_API_KEY": SECRET, "SSL_CERT_FILE": str(CA)}  # the autouse fixture cleared
    # REQUESTS_CA_BUNDLE, which would win
    done = subprocess.run(
        [sys.executable, "-m", "batchgpt.cli", "run", str(path), "--base-url", https.base_url],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Echo: through a private CA" in (tmp_path / "out" / "t.csv").read_text(encoding="utf-8")


# ---------------------------------------------------------------- a CA bundle (issue 24, item 11)

OTHER_CA = TLS / "other-ca.pem"  # a CA certificate that signs nothing here (its key was thrown away)


def bundled(tmp_path: Path, source: Path = CA) -> str:
    """A copy of `source` under tmp_path/certs, as a job's CA bundle beside it; its relative path."""
    (tmp_path / "certs").mkdir(exist_ok=True)
    (tmp_path / "certs" / source.name).write_bytes(source.read_bytes())
    return f"certs/{source.name}"


def run_over_tls(cli, https, write_job, *args: str, **job: object):
    path = write_job(chat_job(["over TLS"], limits={"timeout": 30, "max_retries": 1}, **job))
    return cli("run", str(path), "--base-url", https.base_url, *args, base_url=False)


def answered(tmp_path: Path) -> bool:
    return "Echo: over TLS" in (tmp_path / "out" / "t.csv").read_text(encoding="utf-8")


def test_the_ca_bundle_setting_trusts_the_server_relative_to_the_job_file(cli, https, write_job, tmp_path):
    refused = run_over_tls(cli, https, write_job)
    assert refused.exit_code == 3 and "set provider.ca_bundle (or --ca-bundle)" in refused.stderr
    result = run_over_tls(cli, https, write_job, provider={"ca_bundle": bundled(tmp_path)})
    assert result.exit_code == 0, result.output
    assert answered(tmp_path)


def test_the_ca_bundle_option_is_relative_to_the_current_folder(cli, https, write_job, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_over_tls(cli, https, write_job, "--ca-bundle", bundled(tmp_path))
    assert result.exit_code == 0, result.output
    assert answered(tmp_path)


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"])
def test_the_environment_s_ca_bundle_trusts_the_server_too(cli, https, write_job, tmp_path, monkeypatch, variable):
    monkeypatch.setenv(variable, str(CA))  # in process: read when the client opens, not at import
    result = run_over_tls(cli, https, write_job)
    assert result.exit_code == 0, result.output
    assert answered(tmp_path)


def test_the_setting_wins_over_requests_ca_bundle_which_wins_over_ssl_cert_file(
    cli, https, write_job, tmp_path, monkeypatch
):
    monkeypatch.setenv("SSL_CERT_FILE", str(CA))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(OTHER_CA))
    refused = run_over_tls(cli, https, write_job)
    assert refused.exit_code == 3
    assert f"not trusted by the CA bundle {OTHER_CA} ($REQUESTS_CA_BUNDLE)" in refused.stderr
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(CA))
    refused = run_over_tls(cli, https, write_job, provider={"ca_bundle": bundled(tmp_path, OTHER_CA)})
    assert refused.exit_code == 3 and "(provider.ca_bundle)" in refused.stderr
    trusted = run_over_tls(cli, https, write_job, provider={"ca_bundle": bundled(tmp_path)})
    assert trusted.exit_code == 0 and answered(tmp_path)


@pytest.mark.parametrize(
    "content,said",
    [(None, "no such file {}"), (b"", "{} holds no certificate in PEM form"), (b"junk\n", "{} holds no certificate")],
)
def test_a_ca_bundle_that_cannot_be_read_is_refused_before_anything_is_sent(
    cli, https, write_job, tmp_path, monkeypatch, content, said
):
    bundle = tmp_path / "bundle.pem"
    if content is not None:
        bundle.write_bytes(content)
    said = said.format(bundle)
    before = len(https.seen)
    in_job = run_over_tls(cli, https, write_job, provider={"ca_bundle": "bundle.pem"})
    assert in_job.exit_code == 2 and f"provider.ca_bundle: {said}" in in_job.stderr
    assert "(at /provider/ca_bundle)" in in_job.stderr and "job.yaml:" in in_job.stderr
    option = run_over_tls(cli, https, write_job, "--ca-bundle", str(bundle))
    assert option.exit_code == 2 and f"--ca-bundle: {said}" in option.stderr
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    env = run_over_tls(cli, https, write_job)
    assert env.exit_code == 2 and f"$REQUESTS_CA_BUNDLE: {said}" in env.stderr
    assert len(https.seen) == before
    assert "Traceback" not in in_job.output + option.output + env.output


def test_the_ca_bundle_serves_the_batch_api_and_balance(cli, https, write_job, tmp_path):
    bundle = bundled(tmp_path)
    done = run_over_tls(cli, https, write_job, "--batch", "--wait", "--poll", "0", provider={"ca_bundle": bundle})
    assert done.exit_code == 0, done.output
    assert answered(tmp_path)
    untrusted = cli("balance", "--base-url", https.base_url)
    assert untrusted.exit_code == 1 and "provider.ca_bundle" in untrusted.stderr
    balance = cli("balance", "--base-url", https.base_url, "--ca-bundle", str(tmp_path / bundle))
    assert balance.exit_code == 0 and "limit $100.00" in balance.stdout


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
