"""Sending requests that carry attached files, online, on both transports: http1's pool (http, and
https over real TLS as in test_tls.py) and aiohttp (any streamed request). What the server
RECEIVED is checked byte for byte (the mock reads image parts as text it ignores, so a server that
keeps the raw body stands beside it); the body is streamed with its exact Content-Length, in memory
bounded by a few chunks whatever the file's size, each attempt reading the file afresh, and a file
changed since the job was checked fails its item without sending a wrong body."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import os
import socket
import ssl
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.streams import StreamReader
from conftest import SECRET
from PIL import Image
from test_tls import CA, server_context

from batchgpt import http1
from batchgpt.attachments import Attachment, marker, sent_size
from batchgpt.client import Answer, Client
from batchgpt.encoded import Body, Encodings
from batchgpt.mock import Config, MockServer
from batchgpt.records import Failure, Pack, Provider, Request, dump

MIB = 2**20


def png(path: Path, width: int = 64, height: int = 48) -> Path:
    """A real PNG, as an encoder writes one."""
    Image.new("RGB", (width, height), (200, 30, 90)).save(path, format="PNG")
    return path


def image_request(paths: list[Path], item: str = "a", stream: bool = False, text: str = "describe") -> Request:
    """A chat request with each file as an image part whose data URL holds its marker."""
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}]
    parts += [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{marker(n)}", "detail": "low"}}
        for n in range(len(paths))
    ]
    body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": parts}]}
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    attached = tuple(Attachment("image", str(p), "image/png", "low", size=p.stat().st_size) for p in paths)
    return Request(
        seq=0,
        id=item,
        task="t",
        type="chat",
        model="gpt-4o-mini",
        endpoint="/chat/completions",
        body=body,
        payload=dump(body),
        hash=f"h-{item}",
        provider=Provider(),
        attachments=attached,
    )


def expanded(request: Request) -> bytes:
    return b"".join(Encodings().body(request.payload, request.attachments).chunks())


class Keeping(MockServer):
    """The mock server, keeping every POST's raw body and headers as they arrived."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.raw: list[tuple[dict[str, str], bytes]] = []

    def app(self) -> web.Application:
        app = super().app()
        app.middlewares.append(self._keep)
        return app

    @web.middleware
    async def _keep(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.method == "POST":
            try:
                raw = await request.read()
            except ConnectionResetError:  # a body cut short on purpose: no server error to log
                return web.Response(status=400)
            self.raw.append(({k.lower(): v for k, v in request.headers.items()}, raw))
            # the mock reads its body from the stream, which the read above used up: a fresh one
            fresh = StreamReader(request.protocol, 1 << 16, loop=asyncio.get_running_loop())
            fresh.feed_data(raw)
            fresh.feed_eof()
            request._payload = fresh
        return await handler(request)


@pytest.fixture(scope="module")
def plain() -> Iterator[Keeping]:
    mock = Keeping(Config(api_key=SECRET, hang_s=5))
    mock.start()
    yield mock
    mock.stop()


@pytest.fixture(scope="module")
def tls() -> Iterator[Keeping]:
    mock = Keeping(Config(api_key=SECRET, hang_s=5, tls=server_context()))
    mock.start()
    yield mock
    mock.stop()


@pytest.fixture(autouse=True)
def _trust_the_test_ca(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(CA))


@pytest.fixture(params=["http", "https", "http-streamed"])
def way(request: pytest.FixtureRequest, plain: Keeping, tls: Keeping) -> tuple[Keeping, bool]:
    """A server and whether the request streams its answer: http and https go through http1's
    pool unless the answer is streamed (then aiohttp)."""
    server = tls if request.param == "https" else plain
    server.raw.clear()
    return server, request.param == "http-streamed"


def send_all(
    base_url: str, requests: list[Request], encodings: Encodings | None = None, cap: int | None = None
) -> list[Answer | Failure]:
    async def go() -> list[Answer | Failure]:
        async with Client(Provider(base_url=base_url), SECRET, 20, 4, cap, encodings) as client:
            assert client._pool is not None  # http1's pool for http and https alike, with no proxy
            return [await client.send(Pack.of(r)) for r in requests]

    return asyncio.run(go())


# ---------------------------------------------------------------- what arrives


def test_a_body_with_attachments_arrives_as_the_expanded_json_with_its_exact_length(
    way: tuple[Keeping, bool], tmp_path: Path
) -> None:
    server, stream = way
    photos = [png(tmp_path / "a.png"), png(tmp_path / "b.png", 300, 200)]
    request = image_request(photos, stream=stream)
    [answer] = send_all(server.base_url, [request])
    assert isinstance(answer, Answer) and answer.status == 200, answer
    assert "Echo: describe" in json.dumps(answer.data)
    [(headers, body)] = server.raw
    assert body == expanded(request)
    assert headers["content-length"] == str(sent_size(request.payload, request.attachments)) == str(len(body))
    assert "transfer-encoding" not in headers  # not chunked: a length the API reads before the body
    assert headers["content-type"] == "application/json" and headers["authorization"] == f"Bearer {SECRET}"
    parts = json.loads(body)["messages"][0]["content"]
    for part, photo in zip(parts[1:], photos, strict=True):
        url = part["image_url"]["url"]
        assert url.startswith("data:image/png;base64,") and base64.b64decode(url.split(",", 1)[1]) == photo.read_bytes()
    assert SECRET.encode() not in body


def test_each_attempt_reads_the_file_afresh_and_one_items_file_is_never_kept(
    way: tuple[Keeping, bool], tmp_path: Path
) -> None:
    server, stream = way
    head = png(tmp_path / "head.png").read_bytes()  # a real image (the mock reads it), then filler
    photo = tmp_path / "p.png"
    photo.write_bytes(head + b"A" * 5000)
    request = image_request([photo], stream=stream)
    encodings = Encodings()

    async def go() -> None:
        async with Client(Provider(base_url=server.base_url), SECRET, 20, 4, None, encodings) as client:
            for content in (b"A", b"A", b"A", b"B"):  # the same size, written without a new mtime
                if content == b"B":
                    mtime = photo.stat().st_mtime_ns
                    photo.write_bytes(head + content * 5000)
                    os.utime(photo, ns=(mtime, mtime))
                assert isinstance(await client.send(Pack.of(request)), Answer)

    asyncio.run(go())
    sent = [json.loads(body)["messages"][0]["content"][1]["image_url"]["url"] for _, body in server.raw]
    assert [base64.b64decode(url.split(",", 1)[1])[-1:] for url in sent[-4:]] == [b"A", b"A", b"A", b"B"]
    # attempts of one item: the file read for each, none kept (a retried photo is not a shared one)
    assert (encodings.encodes, encodings.hits, encodings.kept) == (4, 0, 0)


# ---------------------------------------------------------------- a file changed since it was checked


@pytest.mark.parametrize("change", ["resized", "gone"])
def test_a_file_changed_since_it_was_checked_fails_its_item_and_nothing_is_sent(
    way: tuple[Keeping, bool], tmp_path: Path, change: str
) -> None:
    server, stream = way
    photo = png(tmp_path / "cat.png")
    request = image_request([photo], stream=stream)
    if change == "resized":
        photo.write_bytes(photo.read_bytes() + b"more")
    else:
        photo.unlink()
    [failure] = send_all(server.base_url, [request])
    assert isinstance(failure, Failure) and failure.cause == "attachment"
    assert not failure.transient and not failure.maybe_billed  # an error a retry cannot cure, and nothing billed
    assert str(photo) in failure.message and (
        "changed since it was checked" in failure.message or "gone" in failure.message
    )
    assert "not sent" in failure.describe()
    assert server.raw == []


class Truncating(Encodings):
    """Encodings that cut a file in half just after checking it: the race the check cannot close."""

    def body(self, payload: bytes, attachments: Any, item: str = "") -> Body:
        body = super().body(payload, attachments, item)
        for attachment in attachments:
            path = Path(attachment.source)
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        return body


def test_a_file_that_changes_while_its_body_is_written_cuts_the_body_short(
    way: tuple[Keeping, bool], tmp_path: Path
) -> None:
    server, stream = way
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 * MIB))  # several chunks: the change is found part way
    changed, after = image_request([big], "changed", stream), image_request([png(tmp_path / "ok.png")], "after", stream)
    seen = len(server.seen)

    async def go() -> tuple[Answer | Failure, Answer | Failure]:
        async with Client(Provider(base_url=server.base_url), SECRET, 20, 1, None, Truncating()) as client:
            first = await client.send(Pack.of(changed))
            client.encodings = Encodings()
            return first, await client.send(Pack.of(after))  # on the one connection there may be

    first, second = asyncio.run(go())
    assert isinstance(first, Failure) and first.cause == "attachment" and not first.transient, first
    assert str(big) in first.message and "changed since it was checked" in first.message
    assert isinstance(second, Answer) and second.status == 200, second
    assert [s.body["messages"][0]["content"][1]["image_url"]["url"][-10:] for s in server.seen[seen:]] == [
        json.loads(expanded(after))["messages"][0]["content"][1]["image_url"]["url"][-10:]
    ]  # the cut body never reached a handler: only the next request did


# ---------------------------------------------------------------- memory


class Sink:
    """A server on threads of its own that reads each request's body a piece at a time into a hash,
    never whole, and answers with its length and hash (or with `answer(body)` when given one,
    then keeping the body): the mock would read a 27 MB body whole, and count in the measure."""

    def __init__(self, tls: bool = False, answer: Callable[[bytes], bytes] | None = None) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._tls = server_context() if tls else None
        self._answer = answer
        self.port = self._listener.getsockname()[1]
        self.base_url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}/v1"
        self.received: list[tuple[int, str]] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        try:
            if self._tls is not None:
                connection = self._tls.wrap_socket(connection, server_side=True)
            reader = connection.makefile("rb")
            while head := _head(reader):
                length = int(head["content-length"])
                digest, left, kept = hashlib.sha256(), length, io.BytesIO()
                while left:
                    piece = reader.read(min(left, 1 << 16))
                    digest.update(piece)
                    if self._answer is not None:
                        kept.write(piece)
                    left -= len(piece)
                self.received.append((length, digest.hexdigest()))
                body = (
                    self._answer(kept.getvalue())
                    if self._answer
                    else json.dumps({"length": length, "sha256": digest.hexdigest()}).encode()
                )
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                    % (len(body), body)
                )
        except (OSError, ValueError, ssl.SSLError):
            pass
        finally:
            connection.close()

    def stop(self) -> None:
        """Closing alone does not wake a thread in accept(): a shutdown does, and it is joined, so
        no thread outlives the test (a dry run in the same process then declines to fork)."""
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        self._thread.join(5)


def _head(reader: Any) -> dict[str, str] | None:
    headers: dict[str, str] = {}
    line = reader.readline()
    if not line:
        return None
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return headers


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_20_mb_image_is_sent_in_memory_bounded_by_a_few_chunks(tmp_path: Path, scheme: str) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(os.urandom(20 * 10**6))
    small, request = image_request([png(tmp_path / "s.png")], "warm"), image_request([big], "big")
    sink = Sink(tls=scheme == "https")

    async def go() -> tuple[Answer | Failure, int]:
        async with Client(Provider(base_url=sink.base_url), SECRET, 60, 4) as client:
            assert isinstance(await client.send(Pack.of(small)), Answer)  # the connection made, imports done
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                answer = await client.send(Pack.of(request))
                return answer, tracemalloc.get_traced_memory()[1] - before
            finally:
                tracemalloc.stop()

    try:
        answer, peak = asyncio.run(go())
    finally:
        sink.stop()
    expected = hashlib.sha256()
    for piece in Encodings().body(request.payload, request.attachments).chunks():
        expected.update(piece)
    assert isinstance(answer, Answer) and answer.data == {
        "length": sent_size(request.payload, request.attachments),
        "sha256": expected.hexdigest(),
    }
    encoded = 4 * 20 * 10**6 // 3  # 26.7 MB: held whole, or as the five copies of a body built whole
    assert peak < 6 * MIB, f"{peak / MIB:.1f} MiB at its peak"  # a chunk is 1 MiB of base64
    assert peak < encoded / 4


# ---------------------------------------------------------------- the same file for many items


def test_a_file_attached_to_many_items_is_encoded_once_more_then_served_kept(plain: Keeping, tmp_path: Path) -> None:
    plain.raw.clear()
    logo = png(tmp_path / "logo.png", 500, 400)
    requests = [image_request([logo], f"item{n}", text=f"item {n}") for n in range(10)]
    encodings = Encodings()
    answers = send_all(plain.base_url, requests, encodings)
    assert all(isinstance(a, Answer) for a in answers)
    assert [body for _, body in plain.raw] == [expanded(r) for r in requests]
    # the first item's use reads it (it may be the only one), the second keeps it, eight are served kept
    assert (encodings.encodes, encodings.hits) == (2, 8)
    assert encodings.kept == 4 * ((logo.stat().st_size + 2) // 3)

    # changed on disk (same size, a later mtime): read afresh, never the kept encoding
    data = bytearray(logo.read_bytes())
    data[-20] ^= 0xFF
    logo.write_bytes(bytes(data))
    os.utime(logo, ns=(logo.stat().st_atime_ns, logo.stat().st_mtime_ns + 10**9))
    plain.raw.clear()
    send_all(plain.base_url, [image_request([logo], "again")], encodings)
    [(_, body)] = plain.raw
    url = json.loads(body)["messages"][0]["content"][1]["image_url"]["url"]
    assert base64.b64decode(url.split(",", 1)[1]) == bytes(data) and encodings.hits == 8


def test_what_is_kept_stays_within_its_budget_least_recently_used_dropped_first(tmp_path: Path) -> None:
    files = []
    for n in range(4):
        path = tmp_path / f"f{n}.bin"
        path.write_bytes(bytes([n]) * 3000)  # 4,000 bytes of base64 each
        files.append(path)
    encodings = Encodings(budget=10_000, entry=5_000)

    def use(path: Path, item: str) -> bytes:
        request = image_request([path], item)
        body = b"".join(encodings.body(request.payload, request.attachments, item).chunks())
        assert body == expanded(request)
        return body

    for path in files:  # each by two items: kept from the second on
        use(path, "x")
        use(path, "y")
    assert encodings.kept == 8_000 and encodings.kept <= encodings.budget  # two of the four fit
    hits = encodings.hits
    use(files[3], "z")
    use(files[2], "z")
    assert encodings.hits == hits + 2  # the two most recent are the ones kept
    use(files[0], "z")
    assert encodings.hits == hits + 2  # the oldest was dropped: read again (and kept once more)
    too_big = tmp_path / "big.bin"
    too_big.write_bytes(b"x" * 6000)  # 8,000 of base64: past `entry`, never kept
    use(too_big, "x")
    use(too_big, "y")
    use(too_big, "z")
    assert encodings.kept <= encodings.budget and (too_big_kept := encodings.hits - hits) == 2, too_big_kept


# ---------------------------------------------------------------- answers, caps, the key


def test_our_bodies_go_out_as_they_are_and_an_answer_echoing_them_loses_only_the_key(tmp_path: Path) -> None:
    photo, holding = tmp_path / "p.bin", tmp_path / "k.bin"
    photo.write_bytes(os.urandom(2 * MIB))
    holding.write_bytes(os.urandom(1000) + SECRET.encode() + os.urandom(1000))  # the key's bytes in a file
    request = image_request([photo, holding])

    def echo(body: bytes) -> bytes:
        url = json.loads(body)["messages"][0]["content"][1]["image_url"]["url"]
        return json.dumps({"said": url, "key": f"Bearer {SECRET}", "choices": []}).encode()

    sink = Sink(answer=echo)
    try:
        [answer] = send_all(sink.base_url, [request])
    finally:
        sink.stop()
    assert isinstance(answer, Answer), answer
    # we redact answers, not our bodies: the file holding the key's bytes went out byte for byte
    assert sink.received == [
        (sent_size(request.payload, request.attachments), hashlib.sha256(expanded(request)).hexdigest())
    ]
    # 2.8 MB of base64 in an answer: screened for the key's encodings, none found, kept whole
    assert answer.data["said"] == json.loads(expanded(request))["messages"][0]["content"][1]["image_url"]["url"]
    assert answer.data["key"] == "Bearer ****"


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_an_answer_past_its_cap_is_still_a_failure_for_a_request_with_attachments(tmp_path: Path, scheme: str) -> None:
    request = image_request([png(tmp_path / "p.png")])
    sink = Sink(tls=scheme == "https", answer=lambda body: b'{"pad": "' + b"x" * 300_000 + b'"}')
    try:
        [failure] = send_all(sink.base_url, [request], cap=100_000)
    finally:
        sink.stop()
    assert isinstance(failure, Failure) and failure.cause == "oversized" and failure.maybe_billed
    assert sink.received[0][0] == sent_size(request.payload, request.attachments)


# ---------------------------------------------------------------- an answer before the body's end


def test_an_answer_before_the_body_is_read_ends_the_body_and_its_connection(tmp_path: Path) -> None:
    """A server may refuse a request from its head (a 413, a 401) without reading the body: the
    pool stops writing (no wait for a buffer that never drains) and never sends another request
    on that connection, where the rest of the body would be read as one."""
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(24 * MIB))  # more than loopback's socket buffers take
    small = png(tmp_path / "s.png")
    connections: list[int] = []

    async def go() -> tuple[http1.Reply, http1.Reply]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            connections.append(len(connections))
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            if length > MIB:  # refused from its head; the body is never read
                writer.write(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 2\r\n\r\n{}")
                await asyncio.sleep(3600)
            else:
                await reader.readexactly(length)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        pool = http1.Pool("127.0.0.1", server.sockets[0].getsockname()[1], 1)
        head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: test\r\n"
        try:
            encodings = Encodings()
            large, fine = image_request([big], "big"), image_request([small], "small")
            # no timeout of the request's own ends the wait: without the stop it would hang (to 60 s)
            refused = await asyncio.wait_for(
                pool.post(head, encodings.body(large.payload, large.attachments), 3600), 60
            )
            answered = await pool.post(head, encodings.body(fine.payload, fine.attachments), 10)
        finally:
            pool.close()
            server.close()
        return refused, answered

    refused, answered = asyncio.run(go())
    assert (refused.status, answered.status) == (413, 200)
    assert connections == [0, 1]  # the refused body's connection was not used again
