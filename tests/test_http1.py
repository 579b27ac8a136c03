"""The plain-HTTP/1.1 pool against a real TCP server on 127.0.0.1 that answers with scripted bytes:
the wire-level cases (a body read to the connection's end, compression, a cut-off answer, bytes
that are not HTTP) that an HTTP framework on the server side would never send."""

from __future__ import annotations

import asyncio
import gzip
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from batchgpt import http1

HEAD = b"POST /v1/chat/completions HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"


def ok(n: int, extra: bytes = b"") -> bytes:
    body = b'{"n": %d}' % n
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s" % (
        extra,
        len(body),
        body,
    )


Script = Callable[[int, bytes, asyncio.StreamWriter], Awaitable[None]]


async def serve(
    script: Script, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1"
) -> tuple[asyncio.Server, int, list[int], list[bytes]]:
    """A server (over TLS with `tls`) that reads each request whole and lets `script(connection
    number, request, writer)` answer it; returns it, its port, the connection each request came on,
    and the requests."""
    on: list[int] = []
    seen: list[bytes] = []
    connections = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        number = connections
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                request = head + await reader.readexactly(length)
                on.append(number)
                seen.append(request)
                await script(number, request, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, host, 0, ssl=tls)
    return server, server.sockets[0].getsockname()[1], on, seen


def run(
    script: Script, client: Callable[[http1.Pool], Awaitable[Any]], limit: int = 4, cap: int | None = None
) -> tuple[Any, list[int]]:
    async def go() -> tuple[Any, list[int]]:
        server, port, on, _ = await serve(script)
        pool = http1.Pool("127.0.0.1", port, limit, cap)
        try:
            return await client(pool), on
        finally:
            pool.close()
            server.close()

    return asyncio.run(go())


async def answer_each(number: int, request: bytes, writer: asyncio.StreamWriter) -> None:
    writer.write(ok(len(request)))


def test_answers_come_whole_with_status_and_case_insensitive_headers() -> None:
    async def client(pool: http1.Pool) -> http1.Reply:
        return await pool.post(HEAD, b'{"model": "m"}', 5)

    reply, _ = run(answer_each, client)
    assert reply.status == 200 and reply.headers["content-type"] == "application/json"
    assert reply.body == b'{"n": %d}' % (len(HEAD) + len(b"Content-Length: 14\r\n\r\n") + 14)


def test_a_connection_is_kept_alive_and_reused_one_request_at_a_time() -> None:
    async def client(pool: http1.Pool) -> list[bytes]:
        return [(await pool.post(HEAD, b"{}", 5)).body for _ in range(5)]

    bodies, on = run(answer_each, client)
    assert len(bodies) == 5 and on == [1, 1, 1, 1, 1]


def test_concurrent_requests_open_at_most_limit_connections() -> None:
    async def slow(number: int, request: bytes, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.02)
        writer.write(ok(number))

    async def client(pool: http1.Pool) -> list[http1.Reply]:
        return list(await asyncio.gather(*(pool.post(HEAD, b"{}", 5) for _ in range(12))))

    replies, on = run(slow, client, limit=3)
    assert len(replies) == 12 and sorted(set(on)) == [1, 2, 3]


def test_connection_close_is_not_reused() -> None:
    async def closing(number: int, request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(ok(number, b"Connection: close\r\n"))
        await writer.drain()
        writer.close()

    async def client(pool: http1.Pool) -> list[bytes]:
        return [(await pool.post(HEAD, b"{}", 5)).body for _ in range(3)]

    bodies, on = run(closing, client)
    assert bodies == [b'{"n": 1}', b'{"n": 2}', b'{"n": 3}'] and on == [1, 2, 3]


def test_an_answer_past_the_cap_is_not_read_and_its_connection_is_not_reused() -> None:
    plain = b"x" * (3 << 20)
    packed = gzip.compress(b" " * (8 << 20))  # 8 KB on the wire, 8 MiB decoded

    async def answers(number: int, request: bytes, writer: asyncio.StreamWriter) -> None:
        body, coding = {1: (plain, b""), 2: (packed, b"Content-Encoding: gzip\r\n")}.get(number, (b"{}", b""))
        writer.write(b"HTTP/1.1 200 OK\r\n%sContent-Length: %d\r\n\r\n%s" % (coding, len(body), body))

    async def client(pool: http1.Pool) -> list[http1.Reply]:
        return [await pool.post(HEAD, b"{}", 5) for _ in range(3)]

    replies, on = run(answers, client, cap=1 << 20)
    assert [(r.status, r.body, r.too_large is not None) for r in replies] == [
        (200, b"", True),
        (200, b"", True),
        (200, b"{}", False),
    ]
    assert on == [1, 2, 3]  # the rest of an oversized answer is never read as the next one's


def test_a_body_without_length_ends_with_the_connection() -> None:
    async def until_closed(number: int, request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"whole": ')
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(b"true}")
        await writer.drain()
        writer.close()

    async def client(pool: http1.Pool) -> list[bytes]:
        return [(await pool.post(HEAD, b"{}", 5)).body for _ in range(2)]

    bodies, on = run(until_closed, client)
    assert bodies == [b'{"whole": true}'] * 2 and on == [1, 2]  # never reused: its end was the connection's


def test_chunked_and_gzip_answers_are_decoded() -> None:
    packed = gzip.compress(b'{"packed": true}')

    async def chunked_gzip(number: int, request: bytes, writer: asyncio.StreamWriter) -> None:
        half = len(packed) // 2
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n")
        for part in (packed[:half], packed[half:]):
            writer.write(b"%x\r\n%s\r\n" % (len(part), part))
        writer.write(b"0\r\n\r\n")

    async def client(pool: http1.Pool) -> list[bytes]:
        return [(await pool.post(HEAD, b"{}", 5)).body for _ in range(2)]

    bodies, on = run(chunked_gzip, client)
    assert bodies == [b'{"packed": true}'] * 2 and on == [1, 1]


@pytest.mark.parametrize(
    "sent,error",
    [
        (b"", "closed the connection without answering"),
        (b'HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{"cut', "cut off"),
        (b"SSH-2.0-OpenSSH_9.6\r\n", "not valid HTTP"),
        (b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 2\r\n\r\n{}", "cannot be decoded"),
    ],
)
def test_a_broken_answer_is_lost_and_its_connection_never_reused(sent: bytes, error: str) -> None:
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

    (message, after), on = run(broken_first, client)
    assert error in message and after == b'{"n": 2}' and on == [1, 2]


def test_a_timed_out_request_closes_its_connection_so_a_late_answer_is_never_read() -> None:
    async def late_first(number: int, request: bytes, writer: asyncio.StreamWriter) -> None:
        if number == 1:
            await asyncio.sleep(0.3)
        writer.write(ok(number))

    async def client(pool: http1.Pool) -> bytes:
        with pytest.raises(asyncio.TimeoutError):
            await pool.post(HEAD, b"{}", 0.1)
        await asyncio.sleep(0.3)  # the late answer would have arrived by now, on the first connection
        return (await pool.post(HEAD, b"{}", 5)).body

    after, on = run(late_first, client)
    assert after == b'{"n": 2}' and on == [1, 2]


def test_a_cancelled_request_closes_its_connection() -> None:
    async def late_first(number: int, request: bytes, writer: asyncio.StreamWriter) -> None:
        if number == 1:
            await asyncio.sleep(0.2)
        writer.write(ok(number))

    async def client(pool: http1.Pool) -> bytes:
        task = asyncio.ensure_future(pool.post(HEAD, b"{}", 5))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.25)
        return (await pool.post(HEAD, b"{}", 5)).body

    after, on = run(late_first, client)
    assert after == b'{"n": 2}' and on == [1, 2]


def test_an_idle_connection_the_server_closed_is_not_used() -> None:
    async def answer_then_close(number: int, request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(ok(number))  # says keep-alive, then closes while idle, as servers do after a while
        await writer.drain()
        writer.close()

    async def client(pool: http1.Pool) -> list[bytes]:
        first = (await pool.post(HEAD, b"{}", 5)).body
        await asyncio.sleep(0.05)
        return [first, (await pool.post(HEAD, b"{}", 5)).body]

    bodies, on = run(answer_then_close, client)
    assert bodies == [b'{"n": 1}', b'{"n": 2}'] and on == [1, 2]


def test_no_server_is_unsent() -> None:
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        port = spare.getsockname()[1]  # bound, never listening: the connection is refused

        async def go() -> str:
            with pytest.raises(http1.Unsent) as unsent:
                await http1.Pool("127.0.0.1", port, 1).post(HEAD, b"{}", 5)
            return str(unsent.value)

        assert f"cannot connect to 127.0.0.1:{port}" in asyncio.run(go())


# -- what aiohttp does with unusual answers, http1 does too (each found by an attack on it)


def test_an_answer_after_the_answer_is_nobodys_and_the_connection_is_dropped() -> None:
    async def answer_twice(number: int, request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(ok(number) + ok(99))  # a duplicate in the same write: it must never answer the next request

    async def client(pool: http1.Pool) -> list[bytes]:
        return [(await pool.post(HEAD, b"{}", 5)).body for _ in range(2)]

    bodies, on = run(answer_twice, client)
    assert bodies == [b'{"n": 1}', b'{"n": 2}'] and on == [1, 2]


def test_a_server_that_speaks_first_is_no_http_server_and_nothing_is_sent() -> None:
    async def go() -> str:
        async def banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"SSH-2.0-OpenSSH_9.6\r\n")
            await asyncio.sleep(1)
            writer.close()

        server = await asyncio.start_server(banner, "127.0.0.1", 0)
        pool = http1.Pool("127.0.0.1", server.sockets[0].getsockname()[1], 1)
        try:
            # the banner may come before the pool sees the connection, or on the request: never a crash
            with pytest.raises((http1.Unsent, http1.Lost)) as failed:
                await pool.post(HEAD, b"{}", 5)
            return str(failed.value)
        finally:
            pool.close()
            server.close()

    said = asyncio.run(go())
    assert "not an HTTP server" in said or "not valid HTTP" in said


def test_a_request_waiting_for_a_connection_past_its_timeout_times_out_and_is_not_unsent() -> None:
    async def never(number: int, request: bytes, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    async def client(pool: http1.Pool) -> list[BaseException | http1.Reply]:
        return list(await asyncio.gather(*(pool.post(HEAD, b"{}", 0.3) for _ in range(2)), return_exceptions=True))

    outcomes, _ = run(never, client, limit=1)
    assert [type(o) for o in outcomes] == [asyncio.TimeoutError, asyncio.TimeoutError]


@pytest.mark.parametrize(
    "interim", [b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"]
)
def test_an_interim_1xx_reply_is_skipped_for_the_answer_after_it(interim: bytes) -> None:
    async def hint_first(number: int, request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(interim + ok(number))

    async def client(pool: http1.Pool) -> list[tuple[int, bytes]]:
        return [(r.status, r.body) for r in [await pool.post(HEAD, b"{}", 5) for _ in range(2)]]

    replies, on = run(hint_first, client)
    assert replies == [(200, b'{"n": 1}'), (200, b'{"n": 1}')] and on == [1, 1]


def test_a_101_is_an_answer_of_its_own_and_ends_the_connection() -> None:
    async def upgrade_first(number: int, request: bytes, writer: asyncio.StreamWriter) -> None:
        if number == 1:
            writer.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x00"
            )
        else:
            writer.write(ok(number))

    async def client(pool: http1.Pool) -> tuple[list[int], list[Any]]:
        escaped: list[Any] = []  # the parser's errors reaching the loop's handler: a traceback for the user

        def handler(loop: Any, context: dict[str, Any]) -> None:
            if type(context.get("exception")).__module__.startswith("httptools"):
                escaped.append(context)

        asyncio.get_running_loop().set_exception_handler(handler)
        return [(await pool.post(HEAD, b"{}", 5)).status for _ in range(2)], escaped

    (statuses, escaped), on = run(upgrade_first, client)
    assert statuses == [101, 200] and on == [1, 2] and escaped == []


def test_answers_aiohttp_reads_leniently_are_read_too() -> None:
    async def sloppy(number: int, request: bytes, writer: asyncio.StreamWriter) -> None:
        body = b'{"n": 1}'
        writer.write(b"HTTP/1.1 200 OK\nX-Odd: a\x01b\nContent-Length: %d\n\n%s" % (len(body), body))  # bare LF

    async def client(pool: http1.Pool) -> bytes:
        return (await pool.post(HEAD, b"{}", 5)).body

    assert run(sloppy, client)[0] == b'{"n": 1}'


@pytest.mark.parametrize(
    "answer,status,body",
    [
        (b"HTTP/1.1 429 Too Many\r\nContent-Encoding: gzip\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n", 429, b""),
        (b"HTTP/1.1 200 OK\r\nContent-Encoding: foo\r\nContent-Length: 2\r\n\r\n{}", 200, b"{}"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n{}", 200, b"{}"),  # to the connection's end
    ],
)
def test_codings_are_read_as_aiohttp_reads_them(answer: bytes, status: int, body: bytes) -> None:
    async def odd(number: int, request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(answer)
        if b"identity" in answer:
            await writer.drain()
            writer.close()

    async def client(pool: http1.Pool) -> tuple[int, bytes]:
        reply = await pool.post(HEAD, b"{}", 5)
        return reply.status, reply.body

    assert run(odd, client)[0] == (status, body)


def test_a_gzip_answer_of_several_members_is_decoded_whole() -> None:
    packed = gzip.compress(b'{"a": ') + gzip.compress(b"1}")

    async def members(number: int, request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s" % (len(packed), packed)
        )

    async def client(pool: http1.Pool) -> bytes:
        return (await pool.post(HEAD, b"{}", 5)).body

    assert run(members, client)[0] == b'{"a": 1}'


def test_a_connection_idle_past_idle_s_is_not_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http1, "IDLE_S", 0.05)

    async def client(pool: http1.Pool) -> None:
        await pool.post(HEAD, b"{}", 5)
        await pool.post(HEAD, b"{}", 5)  # at once: the same connection
        await asyncio.sleep(0.1)
        await pool.post(HEAD, b"{}", 5)  # idle too long: a new one

    assert run(answer_each, client)[1] == [1, 1, 2]


def test_a_request_whose_time_runs_out_connecting_after_a_wait_for_a_free_connection_times_out(monkeypatch) -> None:
    """Waiting for the one connection took most of the second request's time, and connecting the
    rest: its own timeout, not a server that cannot be reached (it flaked so on a busy machine)."""

    async def never(number: int, request: bytes, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    async def client(pool: http1.Pool) -> list[BaseException | http1.Reply]:
        loop = asyncio.get_running_loop()
        connect, calls = loop.create_connection, []

        async def slow_second(*args: Any, **kwargs: Any) -> Any:
            calls.append(1)
            if len(calls) == 2:  # the second request's connection takes longer than the time it has left
                await asyncio.sleep(5)
            return await connect(*args, **kwargs)

        monkeypatch.setattr(loop, "create_connection", slow_second)
        posts = (pool.post(HEAD, b"{}", 0.8), pool.post(HEAD, b"{}", 1.0))  # 0.2 s left after the wait
        return list(await asyncio.gather(*posts, return_exceptions=True))

    outcomes, _ = run(never, client, limit=1)
    assert [type(o) for o in outcomes] == [asyncio.TimeoutError, asyncio.TimeoutError]
