"""Slow is not down: a server that accepts connections and answers late is waited for, with fewer
requests at once, and never taken for an outage; one that accepts no connection is down."""

from __future__ import annotations

import asyncio
import csv
import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SECRET, chat_job

from batchgpt import http1
from batchgpt.client import Client
from batchgpt.mock import Config, Fault, MockServer
from batchgpt.records import UNSENT, Failure, Pack, Provider, Request
from batchgpt.slow import LONGEST, Deadline, Unconfirmed, unconfirmed_line

TIMEOUT = Failure("timeout", "no complete answer within 60 s")


def test_a_timeout_at_the_current_wait_doubles_it_up_to_the_longest():
    deadline = Deadline(60.0)
    deadline.timed_out(60.0)
    assert deadline.seconds == 120.0
    deadline.timed_out(60.0)  # sent before the last growth: nothing new
    assert deadline.seconds == 120.0
    for _ in range(5):
        deadline.timed_out(deadline.seconds)
    assert deadline.seconds == deadline.longest == 60.0 * LONGEST


def test_only_a_timeout_at_the_longest_wait_may_look_like_an_outage():
    deadline = Deadline(60.0)
    assert not deadline.hopeless(TIMEOUT, 60.0) and not deadline.hopeless(TIMEOUT, 120.0)
    assert deadline.hopeless(TIMEOUT, deadline.longest)
    assert deadline.hopeless(Failure("connection", f"{UNSENT}: refused"), 60.0)


def test_attempts_that_may_have_been_billed_are_told_with_their_worst_case():
    tally = Unconfirmed()
    tally.add(TIMEOUT, 0.002)
    tally.add(TIMEOUT, 0.001)
    tally.add(Failure("connection", "the answer was cut off"), 0.001)
    assert (tally.attempts, tally.timed_out, tally.worst_usd) == (3, 2, pytest.approx(0.004))
    line = unconfirmed_line(tally.attempts, tally.timed_out, tally.worst_usd)
    assert "2 attempts timed out and 1 attempt was cut off" in line and "up to $0.004000" in line
    tally.add(TIMEOUT, None)  # a model without a price
    assert "unknown" in unconfirmed_line(tally.attempts, tally.timed_out, tally.worst_usd)


# ----------------------------------------------------------------------------- no connection is down


@pytest.fixture
def no_room() -> Iterator[int]:
    """A port whose listener never accepts and whose backlog is full: a connection to it is never
    made (as to a host that drops packets)."""
    with socket.socket() as listener, socket.socket() as first:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        first.connect(("127.0.0.1", port))  # takes the backlog's one place
        yield port


def test_a_connection_never_made_is_unsent_not_a_timeout(no_room):
    async def go() -> str:
        pool = http1.Pool("127.0.0.1", no_room, 1)
        with pytest.raises(http1.Unsent) as unsent:
            await pool.post(b"POST /v1/x HTTP/1.1\r\nHost: test\r\n", b"{}", 0.6)
        return str(unsent.value)

    assert "no connection to 127.0.0.1" in asyncio.run(go())


def test_through_aiohttp_too_a_connection_never_made_is_unsent(no_room):
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    request = Request(
        seq=1,
        id="p0",
        task="t",
        type="chat",
        model="gpt-4o-mini",
        endpoint="/chat/completions",
        body=body,
        payload=json.dumps(body).encode(),
        hash="h",
        provider=Provider(base_url=f"http://127.0.0.1:{no_room}/v1"),
    )

    async def go() -> object:
        async with Client(request.provider, SECRET, 0.6, 1) as client:  # a stream: sent through aiohttp
            return await client.send(Pack.of(request))

    failure = asyncio.run(go())
    assert isinstance(failure, Failure) and failure.cause == "connection"
    assert failure.message.startswith(UNSENT) and not failure.maybe_billed


# ----------------------------------------------------------------------------- end to end


@pytest.fixture
def relay() -> Iterator[MockServer]:
    """A relay that queues what passes its limit of 2 at once (answered in 0.1 s): held 1.3 s (longer than the job's
    1 s timeout), then answered and billed, whether the client still waits or not."""
    server = MockServer(Config(api_key=SECRET, latency=0.1, hang_s=1.3, faults=[Fault("hang", over=2)])).start()
    yield server
    server.stop()


def rows_of(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_queuing_relay_is_slow_not_down_every_item_is_answered_and_a_rerun_sends_nothing(
    cli, relay, write_job, tmp_path
):
    # The defaults, scaled down: limits.timeout and limits.outage are both 60 s by default.
    job = write_job(chat_job([f"q{i}" for i in range(24)], limits={"timeout": 1, "outage": 1}))
    result = cli("run", str(job), "--base-url", relay.base_url, base_url=False)
    assert result.exit_code == 0, result.output
    assert {r["status"] for r in rows_of(tmp_path / "out" / "t.csv")} == {"ok"}
    # Each timed-out attempt reached the relay, which answered (and billed) it all the same: the
    # summary says how many, and what they may have cost.
    said = re.search(r"(\d+) attempts? timed out: .* up to \$(\d+\.\d+) at worst", result.stderr)
    assert said is not None, result.stderr
    timed_out = int(said.group(1))
    assert timed_out > 0 and float(said.group(2)) > 0
    assert len(relay.seen) == 24 + timed_out
    sent = len(relay.seen)
    rerun = cli("run", str(job), "--base-url", relay.base_url, base_url=False)
    assert rerun.exit_code == 0 and len(relay.seen) == sent


def test_a_server_that_never_answers_is_still_stopped_once_the_longest_wait_passes(cli, server, write_job, tmp_path):
    server.config.faults = [Fault("hang")]  # held 5 s: longer than the longest wait, 4 x 0.2 s
    job = write_job(chat_job(["a", "b"], limits={"timeout": 0.2, "outage": 0.5, "concurrency": 1}))
    result = cli("run", str(job))
    assert result.exit_code == 3 and "no answer from the endpoint" in result.stderr
    assert {r["status"] for r in rows_of(tmp_path / "out" / "t.csv")} == {"skipped"}


def test_the_mock_holds_only_what_arrives_past_its_limit():
    from batchgpt.mock.faults import FaultPicker

    fault = Fault.parse("hang:over=2")
    assert fault == Fault("hang", over=2)
    picker = FaultPicker(__import__("random").Random(0))
    assert [picker.pick([fault], b"{}", n) for n in (1, 2, 3)] == [None, None, fault]
