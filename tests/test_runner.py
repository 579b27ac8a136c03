"""The engine end to end through the CLI: pacing by what the server says, waiting out rate limits,
outages, and which failures a rerun sends again. Figures for the real limits are in bench/pacing.py;
these runs use faster limits so that the suite stays quick, and assert what must always hold."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import SECRET, chat_job, faults

from batchgpt.mock import Config, Fault, MockServer


def rows_of(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def statuses(path: Path) -> Counter:
    return Counter(r["status"] for r in rows_of(path))


@pytest.fixture
def limited() -> Iterator[Any]:
    """Start mock servers with the given settings; all are stopped after the test."""
    started: list[MockServer] = []

    def start(**config: Any) -> MockServer:
        server = MockServer(Config(api_key=SECRET, **config)).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def run_against(cli, server: MockServer, job: Path, *extra: str):
    return cli("run", str(job), "--base-url", server.base_url, *extra, base_url=False)


def test_told_ten_times_the_limit_the_run_paces_by_the_servers_headers(cli, limited, write_job, tmp_path):
    server = limited(rpm=1200, window=1)  # 20 a second, a one-second burst; said in x-ratelimit-*
    job = write_job(chat_job([f"q{i}" for i in range(80)], limits={"rpm": 12000, "concurrency": 16}))
    result = run_against(cli, server, job)
    assert result.exit_code == 0, result.output
    assert statuses(tmp_path / "out" / "t.csv") == {"ok": 80}
    assert server.refused() <= 0.05 * len(server.answers)


def test_without_any_rate_limit_headers_the_run_backs_off_and_loses_nothing(cli, limited, write_job, tmp_path):
    server = limited(rpm=1200, window=1, limit_headers=False, retry_after=False)
    job = write_job(chat_job([f"q{i}" for i in range(80)], limits={"rpm": 12000, "max_retries": 1}))
    result = run_against(cli, server, job)
    assert result.exit_code == 0, result.output  # 429s used up none of the single retry
    assert statuses(tmp_path / "out" / "t.csv") == {"ok": 80}
    assert 0 < server.refused() <= 0.2 * len(server.answers)
    assert "refused by rate limits and waited out" in result.stderr


def test_a_spell_of_429s_is_waited_out(cli, limited, write_job, tmp_path):
    server = limited(faults=[Fault("429", seconds=2.5)])
    job = write_job(chat_job([f"q{i}" for i in range(3)], limits={"max_retries": 1, "concurrency": 1}))
    result = run_against(cli, server, job)
    assert result.exit_code == 0, result.output
    rows = rows_of(tmp_path / "out" / "t.csv")
    assert {r["status"] for r in rows} == {"ok"}
    assert int(rows[0]["attempts"]) >= 3  # refused more often than max_retries allows, yet answered


def test_a_limit_that_never_lets_up_fails_its_items_after_patience_and_a_rerun_sends_them(
    cli, server, write_job, tmp_path
):
    faults(server, "429")
    job = write_job(chat_job(["a", "b", "c"], limits={"patience": 1.5, "concurrency": 2}))
    started = time.monotonic()
    result = cli("run", str(job))
    assert result.exit_code == 1 and time.monotonic() - started < 15
    rows = rows_of(tmp_path / "out" / "t.csv")
    assert {r["status"] for r in rows} == {"error"}
    assert all("HTTP 429" in r["error"] and "limits.patience" in r["error"] for r in rows)
    assert "a plain rerun sends them again" in result.stderr
    faults(server)
    assert cli("run", str(job)).exit_code == 0
    assert statuses(tmp_path / "out" / "t.csv") == {"ok": 3}


def test_nothing_listening_stops_the_run_with_items_skipped_and_a_rerun_answers_them(cli, write_job, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    job = write_job(chat_job([f"q{i}" for i in range(10)], limits={"outage": 2, "max_retries": 1}))
    started = time.monotonic()
    result = cli("run", str(job), "--base-url", f"http://127.0.0.1:{port}/v1", base_url=False)
    assert result.exit_code == 3 and time.monotonic() - started < 15
    assert f"127.0.0.1:{port}" in result.stderr and "no answer from the endpoint for 2 s" in result.stderr
    assert statuses(tmp_path / "out" / "t.csv") == {"skipped": 10}
    server = MockServer(Config(api_key=SECRET)).start(port)
    try:
        rerun = cli("run", str(job), "--base-url", server.base_url, base_url=False)
        assert rerun.exit_code == 0, rerun.output
        assert statuses(tmp_path / "out" / "t.csv") == {"ok": 10} and len(server.seen) == 10
    finally:
        server.stop()


def test_a_rerun_sends_transient_failures_again_and_permanent_ones_only_when_asked(cli, server, write_job, tmp_path):
    faults(server, "400:match=BAD", "malformed:match=FLAKY")
    job = write_job(chat_job(["fine", "BAD", "FLAKY"], limits={"max_retries": 1}))
    first = cli("run", str(job))
    assert first.exit_code == 1
    assert "1 for a passing reason" in first.stderr and "1 for a reason in the request" in first.stderr
    assert "--retry-failed" in first.stderr
    faults(server)
    sent = len(server.seen)
    second = cli("run", str(job))
    assert second.exit_code == 1  # BAD is still failed
    assert [s.body["messages"][-1]["content"] for s in server.seen[sent:]] == ["FLAKY"]
    third = cli("run", str(job), "--retry-failed")
    assert third.exit_code == 0 and server.seen[-1].body["messages"][-1]["content"] == "BAD"


def test_one_item_failing_among_answers_is_an_error_not_an_outage(cli, server, write_job, tmp_path):
    server.config.latency = 0.05
    faults(server, "500:match=POISON")
    job = write_job(
        chat_job(["POISON"] + [f"q{i}" for i in range(59)], limits={"max_retries": 2, "concurrency": 2, "outage": 3})
    )
    result = cli("run", str(job))
    assert result.exit_code == 1, result.output  # not held until an outage verdict (exit 3)
    rows = {r["id"]: r for r in rows_of(tmp_path / "out" / "t.csv")}
    assert rows["p0"]["status"] == "error" and rows["p0"]["attempts"] == "3"
    assert statuses(tmp_path / "out" / "t.csv") == {"ok": 59, "error": 1}
    sent = len(server.seen)
    rerun = cli("run", str(job))  # a 500 is transient: the rerun sends it again
    assert {s.body["messages"][-1]["content"] for s in server.seen[sent:]} == {"POISON"}
    # Alone, an item failing with 5xx cannot be told from an endpoint that is down: it is held,
    # then skipped by the outage watch, for the next run to try again.
    assert rerun.exit_code == 3 and "no answer from the endpoint for 3 s" in rerun.stderr


def test_a_request_bigger_than_its_token_limit_fails_at_once_and_for_good(cli, server, write_job, tmp_path):
    job = write_job(chat_job(["small", "big"], limits={"tpm": 600}))
    job_data = __import__("yaml").safe_load(job.read_text())
    job_data["tasks"][0]["items"][1]["max_tokens"] = 1000  # more than a minute of 600 tokens
    job.write_text(__import__("yaml").safe_dump(job_data))
    result = cli("run", str(job))
    assert result.exit_code == 1
    rows = {r["id"]: r for r in rows_of(tmp_path / "out" / "t.csv")}
    assert rows["p0"]["status"] == "ok" and rows["p1"]["status"] == "error"
    assert "more than the limit of 600 tokens a minute" in rows["p1"]["error"] and rows["p1"]["attempts"] == "0"
    assert [s.body["messages"][-1]["content"] for s in server.seen] == ["small"]
    assert cli("run", str(job)).exit_code == 1 and len(server.seen) == 1  # permanent: not sent again


def test_an_overloaded_server_gets_fewer_requests_at_once_and_every_item_completes(cli, limited, write_job, tmp_path):
    server = limited(capacity=2, latency=0.05)
    job = write_job(chat_job([f"q{i}" for i in range(60)], limits={"concurrency": 8}))
    result = run_against(cli, server, job, "--log-format", "json")
    assert result.exit_code == 0, result.output
    assert statuses(tmp_path / "out" / "t.csv") == {"ok": 60}
    assert server.refused() <= 13  # about 10; 16 or more when 503s do not cut the requests in flight
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert any(e["event"] == "pace" and "in flight" in e["message"] for e in events)


def test_each_model_is_paced_by_its_own_limit_and_the_log_says_how(cli, limited, write_job, tmp_path):
    server = limited(rpm=1200, window=1)
    job = write_job(
        {
            "name": "t",
            "limits": {"concurrency": 8},
            "tasks": [
                {
                    "type": "chat",
                    "model": model,
                    "items": [{"id": f"{model}-{i}", "prompt": f"q{i}"} for i in range(30)],
                }
                for model in ("gpt-4o-mini", "gpt-4.1")
            ],
        }
    )
    result = run_against(cli, server, job, "--log-format", "json")
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    paced = {e["message"].split(" at ")[0] for e in events if e["event"] == "pace" and "x-ratelimit" in e["message"]}
    assert paced == {"gpt-4o-mini", "gpt-4.1"}
    assert server.refused() <= 0.05 * len(server.answers)


def start_job(job: Path, base_url: str) -> subprocess.Popen[str]:
    env = {**os.environ, "OPENAI_API_KEY": SECRET}
    return subprocess.Popen(
        [sys.executable, "-m", "batchgpt.cli", "run", str(job), "--base-url", base_url, "--no-progress"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_jobs_at_once_from_one_folder_on_one_limit_both_finish(limited, write_job, tmp_path):
    server = limited(rpm=1200, window=1)
    jobs = [
        write_job({**chat_job([f"{n}-{i}" for i in range(60)], limits={"rpm": 1200}), "name": n}, f"{n}.yaml")
        for n in ("one", "two")
    ]
    children = [start_job(job, server.base_url) for job in jobs]
    outputs = [child.communicate(timeout=120) for child in children]
    assert [c.returncode for c in children] == [0, 0], [err for _, err in outputs]
    assert all("Traceback" not in err for _, err in outputs)
    assert statuses(tmp_path / "out" / "one.csv") == statuses(tmp_path / "out" / "two.csv") == {"ok": 60}


# ----------------------------------------------------------------------------- the engine alone, on a fake clock


class FakeTime:
    """A clock that moves only when the engine sleeps: backoff costs no real time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def engine_run(job_spec: dict, base_url: str, tmp_path: Path, fake: FakeTime, draw: float = 0.5):
    """Run a job through the Engine itself, with injected time; (engine, rows by id)."""
    import io

    from batchgpt.jobs import Overrides, load
    from batchgpt.online.parts import Timing
    from batchgpt.progress import Progress
    from batchgpt.runoptions import RunOptions
    from batchgpt.store import Store
    from batchgpt.wiring import online_engine

    os.environ["OPENAI_API_KEY"] = SECRET
    job = load({**job_spec, "output": {"results": str(tmp_path / "r.csv")}}, Overrides(base_url=base_url))
    store = Store(tmp_path / "state")
    run_id = store.begin_run(job.name, None)
    with Progress(job.name, job.count, bar=False, stream=io.StringIO()) as progress:
        engine = online_engine(job, store, run_id, RunOptions(), progress, Timing(fake.clock, lambda: draw, fake.sleep))
        asyncio.run(engine.run())
    rows = {row["id"]: row for row in store.results(job.name, run_id)}
    store.close()
    return engine, rows


def test_retries_back_off_exponentially_on_the_engines_clock(server, tmp_path):
    faults(server, "500:first=3")
    fake = FakeTime()
    started = time.monotonic()
    engine, rows = engine_run(chat_job(["a"], limits={"max_retries": 3}), server.base_url, tmp_path, fake, draw=0.0)
    assert rows["p0"]["status"] == "ok" and rows["p0"]["attempts"] == 4
    assert fake.slept == [0.5, 1.0, 2.0]  # the policy's backoff, with no jitter drawn
    assert time.monotonic() - started < 5  # and none of it waited for real


def test_an_outage_is_declared_by_the_engines_clock(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    fake = FakeTime()
    job = chat_job(["a", "b"], limits={"outage": 60, "max_retries": 2, "concurrency": 1})
    engine, rows = engine_run(job, f"http://127.0.0.1:{port}/v1", tmp_path, fake)
    assert engine.stopped is not None and "no answer from the endpoint for 60 s" in engine.stopped
    assert {row["status"] for row in rows.values()} == {"skipped"}
    assert sum(fake.slept) >= 60  # held past max_retries until the spell was long enough


def test_a_limit_refusing_everything_fails_its_items_after_patience_on_the_engines_clock(server, tmp_path):
    faults(server, "429-no-retry-after")
    fake = FakeTime()
    engine, rows = engine_run(chat_job(["a"], limits={"patience": 120}), server.base_url, tmp_path, fake)
    [row] = rows.values()
    assert row["status"] == "error" and "limits.patience" in row["error"]
    assert 120 <= sum(fake.slept) < 160 and row["attempts"] > 7  # waited, not counted against max_retries


def test_an_answer_with_nothing_else_in_flight_is_committed_at_once(cli, write_job, tmp_path, monkeypatch):
    """The commit window lets answers arriving together share a commit; with no other answer
    awaited, none can join it, so waiting it out would only idle. A window of a minute shows it:
    one at a time, three items still finish at once."""
    from batchgpt.online import commits

    monkeypatch.setattr(commits, "COMMIT_WINDOW_S", 60.0)
    job = write_job(chat_job(["a", "b", "c"], limits={"concurrency": 1}))
    started = time.monotonic()
    result = cli("run", str(job))
    assert result.exit_code == 0, result.output
    assert statuses(tmp_path / "out" / "t.csv") == {"ok": 3}
    assert time.monotonic() - started < 30  # three windows would be 180 s
