"""Bodies read up to a cap: decoded a bounded step at a time (a gzip or deflate bomb never inflates
past the cap), streamed lines split whatever their length, and nothing read past the cap."""

from __future__ import annotations

import asyncio
import csv
import gzip
import json
import tracemalloc
import zlib
from collections.abc import AsyncIterator

import pytest
import test_client
from conftest import SECRET, chat_job, faults
from test_client import chat_request, stream

from batchgpt.bodies import HEAD, MIB, Lines, LongLine, TooLarge, capped_lines, decode, read_capped
from batchgpt.client import Answer, Client
from batchgpt.estimate import Estimator
from batchgpt.jobs import load, requests
from batchgpt.mock.faults import gzip_bomb
from batchgpt.pricing import Pricing
from batchgpt.records import Failure, Pack, Provider, Request
from batchgpt.retry import transient

hostile = test_client.hostile  # the fixture: a server that answers the bytes a test gives it
BOMB = gzip_bomb(600)  # 0.6 MB that inflates to 600 MiB


def deflate_bomb(mib: int, wrapped: bool) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
    zeros = bytes(MIB)
    return b"".join(compressor.compress(zeros) for _ in range(mib)) + compressor.flush()


def peak_of(work) -> int:
    """The most memory Python held while `work` ran, in bytes."""
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip"])
def test_a_gzip_bomb_stops_at_the_cap_without_inflating(encoding):
    def work() -> None:
        with pytest.raises(TooLarge) as caught:
            decode(BOMB, encoding, MIB)
        assert "limits.max_answer_mb (1 MiB)" in str(caught.value)

    assert len(BOMB) < 700_000
    assert peak_of(work) < 8 * MIB  # inflated whole it would take 600 MiB


@pytest.mark.parametrize("wrapped", [True, False], ids=["zlib", "raw"])
def test_a_deflate_bomb_stops_at_the_cap(wrapped):
    bomb = deflate_bomb(8, wrapped)
    with pytest.raises(TooLarge):
        decode(bomb, "deflate", MIB)
    assert decode(bomb, "deflate", 8 * MIB) == bytes(8 * MIB)  # at the cap: whole


def test_bodies_within_the_cap_decode_as_before():
    text = b'{"choices": []}' * 1000
    assert decode(gzip.compress(text) + gzip.compress(b"more"), "gzip", MIB) == text + b"more"  # every member
    assert decode(gzip.compress(text) + b"\x00" * 8, "gzip", MIB) == text  # trailing zeros, as gzip allows
    assert decode(zlib.compress(text), "Deflate", MIB) == text
    assert decode(text, "identity", MIB) == text and decode(text, "compress", MIB) == text  # unknown: passed on
    assert decode(b"", "gzip", MIB) == b""
    with pytest.raises(EOFError):
        decode(gzip.compress(text)[:-20], "gzip", MIB)  # cut short
    with pytest.raises(zlib.error):
        decode(b"not gzip at all", "gzip", MIB)
    with pytest.raises(ValueError, match="more than 1024 gzip members"):
        decode(gzip.compress(b"a") * 1025, "gzip", MIB)  # each member a decoder: as many as aiohttp takes
    with pytest.raises(ValueError, match="br"):
        decode(b"\x1b\x00", "br", MIB)  # no decoder installed: refused, never guessed at


def chunks(*parts: bytes, pulled: list[int] | None = None) -> AsyncIterator[bytes]:
    async def give() -> AsyncIterator[bytes]:
        for part in parts:
            if pulled is not None:
                pulled.append(len(part))
            yield part

    return give()


def test_reading_stops_at_the_cap_and_asks_for_nothing_more():
    pulled: list[int] = []
    with pytest.raises(TooLarge):
        asyncio.run(read_capped(chunks(b"a" * 600, b"b" * 600, b"c" * 600, pulled=pulled), 1000))
    assert pulled == [600, 600]  # the third chunk is never read
    assert asyncio.run(read_capped(chunks(b"a" * 600, b"b" * 400), 1000)) == b"a" * 600 + b"b" * 400


def test_streamed_lines_come_whole_whatever_their_length_until_the_body_passes_its_cap():
    async def lines(cap: int, *parts: bytes) -> list[bytes]:
        return [line async for line in capped_lines(chunks(*parts), cap)]

    long = b"data: " + b"x" * (3 * MIB)  # far past aiohttp's 512 KiB for a line
    parts = [long[i : i + 65536] for i in range(0, len(long), 65536)]
    assert asyncio.run(lines(8 * MIB, b"data: 1\n\n", *parts, b"\n\ndata: [DONE]")) == [
        b"data: 1",
        b"",
        long,
        b"",
        b"data: [DONE]",
    ]
    with pytest.raises(TooLarge):
        asyncio.run(lines(MIB, b"data: 1\n\n", *parts))


@pytest.mark.parametrize("size", [1, 7, 4096, 1 << 16])
def test_lines_split_across_any_chunking_are_the_lines_of_the_whole(size):
    text = b"".join(b"line %d %s\n" % (n, b"y" * (n * 37 % 2000)) for n in range(100)) + b"last, unended"
    splitter = Lines()
    found = [line for i in range(0, len(text), size) for line in splitter.feed(text[i : i + size])]
    found.append(splitter.end())
    assert found == text.split(b"\n")


def test_a_big_line_in_small_chunks_comes_whole():
    line = b'{"custom_id": "a", "text": "' + b"z" * (16 * MIB) + b'"}'
    splitter = Lines(32 * MIB)
    found = [got for i in range(0, len(line), 4096) for got in splitter.feed(line[i : i + 4096])]
    found += list(splitter.feed(b"\nnext\n"))
    assert found == [line, b"next"] and splitter.end() == b""


def test_a_line_past_its_cap_is_dropped_but_for_its_start():
    line = b'{"id": "batch_req_1", "custom_id": "item \\"7\\"", "response": {"body": "' + b"q" * 5000 + b'"}}'
    splitter = Lines(1000)
    found = [got for i in range(0, len(line), 300) for got in splitter.feed(line[i : i + 300])]
    found += list(splitter.feed(b"\nsmall\n"))
    [long, small] = found
    assert isinstance(long, LongLine) and long.size == len(line) and small == b"small"
    assert line.startswith(long.head) and len(long.head) >= min(HEAD, 1000) and long.custom_id() == 'item "7"'
    whole = list(Lines(10).feed(b"x" * 50 + b"\n"))  # past the cap in one piece: its start kept all the same
    assert whole == [LongLine(b"x" * 50, 50)] and whole[0].custom_id() is None


# ----------------------------------------------------------------------------- the client, end to end


def send_capped(provider: Provider, request: Request, cap: int = MIB) -> Answer | Failure:
    async def go() -> Answer | Failure:
        async with Client(provider, SECRET, 30, 4, max_answer=cap) as client:
            return await client.send(Pack.of(request))

    return asyncio.run(go())


@pytest.fixture(params=["http1", "aiohttp"])
def transport(request, monkeypatch) -> str:
    """Each of the client's transports: its own http1 pool, and aiohttp (a proxy, a streamed answer)."""
    if request.param == "aiohttp":
        monkeypatch.setattr(Client, "_plain_pool", lambda self: None)
    return request.param


def assert_oversized(outcome: Answer | Failure, status: int = 200) -> None:
    assert isinstance(outcome, Failure), outcome
    assert (outcome.cause, outcome.status) == ("oversized", status)
    assert "larger than limits.max_answer_mb (1 MiB)" in outcome.describe()
    assert outcome.maybe_billed and not outcome.transient and not transient(outcome)


def test_a_gzip_bomb_from_the_server_is_an_oversized_failure_in_bounded_memory(server, transport):
    assert isinstance(send_capped(Provider(base_url=server.base_url), chat_request()), Answer)  # its tokenizer loaded
    faults(server, "gzip-bomb")
    outcome: list[Answer | Failure] = []
    peak = peak_of(lambda: outcome.append(send_capped(Provider(base_url=server.base_url), chat_request())))
    assert_oversized(outcome[0])
    assert peak < 32 * MIB  # the answer inflates to 600 MiB


def test_a_plain_answer_past_the_cap_is_not_read(hostile, transport):
    body = json.dumps({"choices": [{"message": {"content": "x" * (3 * MIB)}}]}).encode()
    assert_oversized(send_capped(hostile(200, "application/json", body), chat_request()))
    assert isinstance(send_capped(hostile(200, "application/json", body), chat_request(), 4 * MIB), Answer)


def test_an_oversized_answer_is_not_asked_again_whatever_the_server_says(hostile):
    body = b'{"choices": []}' + b" " * (2 * MIB)
    outcome = send_capped(hostile(200, "application/json", body, {"x-should-retry": "true"}), chat_request())
    assert_oversized(outcome)  # another attempt would be billed again
    assert outcome.headers is not None and "x-should-retry" not in outcome.headers


def test_an_error_answer_past_the_cap_is_judged_by_its_status(hostile, transport):
    outcome = send_capped(hostile(502, "text/html", b"<html>" + b"x" * (2 * MIB)), chat_request())
    assert isinstance(outcome, Failure) and (outcome.cause, outcome.status) == ("http", 502)
    assert "limits.max_answer_mb" in outcome.message and transient(outcome) and not outcome.maybe_billed


def test_a_stream_past_the_cap_is_oversized_and_a_long_event_is_read(hostile):
    text = "y" * (MIB - 4096)  # one event longer than aiohttp reads as a line (512 KiB)
    event = json.dumps({"choices": [{"delta": {"content": text}, "finish_reason": "stop"}]}).encode()
    answer = send_capped(hostile(200, "text/event-stream", stream(event)), chat_request(stream=True), 2 * MIB)
    assert isinstance(answer, Answer) and answer.data["choices"][0]["message"]["content"] == text
    assert_oversized(send_capped(hostile(200, "text/event-stream", stream(event, event)), chat_request(stream=True)))


def test_an_oversized_answer_is_an_error_row_the_run_goes_on_and_sends_it_once(cli, server, write_job, tmp_path):
    job = chat_job(["one", "BOMB", "three"])
    job["limits"].update(concurrency=1, max_answer_mb=1)
    faults(server, "gzip-bomb,match=BOMB")
    result = cli("run", str(write_job(job)))
    assert result.exit_code == 1, result.output
    rows = {r["id"]: r for r in csv.DictReader((tmp_path / "out" / "t.csv").open(encoding="utf-8"))}
    assert [rows[i]["status"] for i in ("p0", "p1", "p2")] == ["ok", "error", "ok"]
    assert rows["p1"]["error"].startswith("oversized answer (HTTP 200): the answer is larger than limits.max_answer_mb")
    assert sum("BOMB" in json.dumps(seen.body) for seen in server.seen) == 1
    assert "1 attempt was cut off or unreadable: the server may have done the work and billed it" in result.output
    assert "Traceback" not in result.output and SECRET not in result.output


def test_an_oversized_answer_stays_spent_at_its_worst_case(cli, server, write_job, tmp_path):
    job = chat_job(["BOMB", "OKAY"], defaults={"model": "gpt-4o-mini", "max_tokens": 100})
    job["limits"].update(concurrency=1, max_answer_mb=1)
    path = write_job(job)
    worst = [Estimator(Pricing()).worst_cost(request) for request in requests(load(path))]
    assert worst[0] == worst[1] and worst[0] is not None
    job["budget_usd"] = worst[0] * 1.5  # room for one answer: the oversized one, paid at its worst
    faults(server, "gzip-bomb,match=BOMB")
    result = cli("run", str(write_job(job)))
    assert result.exit_code == 3 and "budget" in result.output, result.output
    assert [seen.body["messages"][-1]["content"] for seen in server.seen] == ["BOMB"]
