"""The mock server behind a real gateway: LiteLLM's proxy in front of `batchgpt mock-server`, and
batchgpt run through it, as README's "Rehearse a gateway (LiteLLM)" documents: its config file
(jobs/gateway/litellm.yaml, its port 8000 replaced) and its `litellm` command line (its ports
replaced), so that the documented set-up is the tested one.

LiteLLM is found as $BATCHGPT_LITELLM (the path of a `litellm` executable: it belongs in a
virtualenv of its own, as it pins versions of packages the suite shares), else as `litellm` on
PATH. Without it the test that needs it is skipped, saying so; BATCHGPT_REQUIRE_LITELLM=1 makes
that a failure (for a CI job that installs it). LiteLLM takes 15 s of CPU to start, so one test
holds every check that needs it: pytest-xdist would give two tests two workers and two LiteLLMs.

What LiteLLM passes through, as checked here: the usage (the streamed one too, in its last chunk),
structured answers, `x-ratelimit-limit-*` and `x-ratelimit-remaining-*`. What it does not:
`x-ratelimit-reset-*`, a 429's `retry-after` and `retry-after-ms` (it sends them on only as
`llm_provider-*` headers), and an error's type and code (an empty quota's `insufficient_quota`
comes out as type `throttling_error`, code "429", with OpenAI's message kept). batchgpt waits out
such a 429 by its own backoff, and knows the empty quota by its message (records.Failure); the
last test holds that with the mock alone.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from conftest import chat_job, faults
from leaks import leaks

from batchgpt.cli import main
from batchgpt.mock import Config, Fault, MockServer
from batchgpt.retry import BACKOFF_BASE

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "jobs" / "gateway" / "litellm.yaml"
README = ROOT / "README.md"
MASTER = "sk-litellm-master-SECRET-7d1c9e3a5b"  # the gateway's key: batchgpt's OPENAI_API_KEY
RPM = 6000  # the mock's limit, sent as x-ratelimit-* headers
READY_S = 240.0  # LiteLLM's start-up, bounded: 15 s of CPU, several times that on a busy machine
PRICE = {"input": 0.15, "output": 0.6}  # gpt-4o-mini, USD per 1M tokens (genai-prices, openai provider)
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "rank": {"type": "integer"}},
    "required": ["city", "rank"],
    "additionalProperties": False,
}


def litellm_path() -> str | None:
    return os.environ.get("BATCHGPT_LITELLM") or shutil.which("litellm")


def documented() -> tuple[str, list[str]]:
    """README's gateway section: its config block and the lines of its command block."""
    text = README.read_text(encoding="utf-8")
    section = text.split("### Rehearse a gateway (LiteLLM)\n", 1)[1].split("\n## ", 1)[0]
    [config] = re.findall(r"```yaml\n(.*?)```", section, re.S)
    [commands] = re.findall(r"```text\n(.*?)```", section, re.S)
    return config, commands.splitlines()


def litellm_line(lines: list[str]) -> tuple[dict[str, str], list[str]]:
    """The documented `litellm` command: the variables it sets, and its arguments."""
    [line] = [line for line in lines if "litellm --config" in line]
    words = [word for word in shlex.split(line) if word != "&"]
    env = dict(word.split("=", 1) for word in words if re.fullmatch(r"[A-Z_]+=\S*", word))
    return env, words[len(env) + 1 :]


def test_the_readme_documents_the_config_and_the_commands_the_test_runs():
    config, lines = documented()
    assert config == CONFIG.read_text(encoding="utf-8")
    env, args = litellm_line(lines)
    assert args[args.index("--config") + 1] == str(CONFIG.relative_to(ROOT))
    assert "batchgpt mock-server --port 8000 &" in lines and "api_base: http://127.0.0.1:8000/v1" in config
    [batchgpt] = [line for line in lines if " batchgpt run " in line]
    port = args[args.index("--port") + 1]
    assert batchgpt.startswith(f"OPENAI_API_KEY={env['LITELLM_MASTER_KEY']} batchgpt run ")
    assert batchgpt.endswith(f" --base-url http://127.0.0.1:{port}/v1")


@dataclass(frozen=True)
class Gateway:
    mock: MockServer
    base_url: str
    upstream_key: str  # the key the gateway sends the mock, from the config file


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def wait_ready(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + READY_S
    while not ready(f"http://127.0.0.1:{port}/health/readiness"):
        tail = log.read_text(errors="replace")[-3000:]
        assert process.poll() is None, f"litellm exited ({process.returncode}):\n{tail}"
        assert time.monotonic() < deadline, f"litellm not ready after {READY_S:g} s:\n{tail}"
        time.sleep(0.25)


def command(binary: str, config: Path, port: int) -> tuple[list[str], dict[str, str]]:
    """README's litellm command on this machine: its executable, the config written for this mock,
    a free port, its variables (the master key this test's)."""
    told, args = litellm_line(documented()[1])
    args[args.index("--config") + 1] = str(config)
    args[args.index("--port") + 1] = str(port)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LITELLM_")) and "PROXY" not in k}
    # NO_PROXY: the mock is on this machine, whatever proxy the environment names
    env.update(told, LITELLM_MASTER_KEY=MASTER, NO_PROXY="*")
    return [binary, *args], env


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    binary = litellm_path()
    if binary is None:
        reason = "litellm is not installed: set BATCHGPT_LITELLM to its executable, or put it on PATH"
        if os.environ.get("BATCHGPT_REQUIRE_LITELLM"):
            pytest.fail(reason)
        pytest.skip(reason)
    text = CONFIG.read_text(encoding="utf-8")
    upstream = yaml.safe_load(text)["model_list"][0]["litellm_params"]["api_key"]
    mock = MockServer(Config(api_key=upstream, rpm=RPM, tpm=10_000_000)).start()
    folder = tmp_path_factory.mktemp("litellm")
    config = folder / "litellm.yaml"
    config.write_text(text.replace("127.0.0.1:8000", f"127.0.0.1:{mock.port}"), encoding="utf-8")
    port = free_port()
    argv, env = command(binary, config, port)
    log = folder / "litellm.log"
    with log.open("wb") as out:
        # its own process group, ended with it
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        wait_ready(process, port, log)
        yield Gateway(mock, f"http://127.0.0.1:{port}/v1", upstream)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        mock.stop()


def run(gateway: Gateway, job: dict[str, Any], folder: Path, *args: str) -> Result:
    folder.mkdir()
    gateway.mock.seen.clear()
    gateway.mock.billed.clear()
    path = folder / "job.yaml"
    path.write_text(yaml.safe_dump(job, sort_keys=False), encoding="utf-8")
    return CliRunner().invoke(main, ["run", str(path), "--base-url", gateway.base_url, *args])


def rows(folder: Path, name: str) -> list[dict[str, str]]:
    with (folder / "out" / f"{name}.csv").open(encoding="utf-8") as file:
        return list(csv.DictReader(file))


def nothing_holds_the_key(folder: Path, result: Result) -> None:
    written = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert any(p.name == "state.db" for p in written)
    found = [str(p) for p, data in written.items() if leaks(data, MASTER)]
    assert found == [] and not leaks(result.output.encode(), MASTER)


def usd(prompt: int, completion: int) -> float:
    return (prompt * PRICE["input"] + completion * PRICE["output"]) / 1e6


def costs_what_the_mock_billed(gateway: Gateway, folder: Path) -> None:
    """Plain, streamed and structured chat through the gateway: each row's usage and cost are what
    the mock billed, each answer bought once, and the gateway's rate-limit headers pace the run."""
    job = {
        "name": "gateway",
        "defaults": {"model": "gpt-4o-mini", "max_tokens": 60},
        "limits": {"concurrency": 4, "timeout": 30, "max_retries": 2},
        "tasks": [
            {"type": "chat", "name": "plain", "items": [{"id": f"p{i}", "prompt": "one " * (i + 1)} for i in range(3)]},
            {"type": "chat", "name": "streamed", "stream": True, "items": [{"id": "s0", "prompt": "two " * 5}]},
            {
                "type": "chat",
                "name": "structured",
                "schema": SCHEMA,
                "items": [{"id": "j0", "prompt": "Where is far?"}],
            },
        ],
    }
    result = run(gateway, job, folder, "-v")
    assert result.exit_code == 0, result.output
    got = rows(folder, "gateway")
    assert len(got) == 5 and {r["status"] for r in got} == {"ok"}
    bills = [(b["usage"]["prompt_tokens"], b["usage"]["completion_tokens"]) for b in gateway.mock.billed]
    assert Counter(bills) == Counter((int(r["prompt_tokens"]), int(r["completion_tokens"])) for r in got)
    assert sum(float(r["cost_usd"]) for r in got) == pytest.approx(sum(usd(*bill) for bill in bills))
    for row in got:
        assert float(row["cost_usd"]) == pytest.approx(usd(int(row["prompt_tokens"]), int(row["completion_tokens"])))
    [streamed] = [s.body for s in gateway.mock.seen if s.body.get("stream")]
    assert streamed["stream_options"] == {"include_usage": True}
    [stream_row] = [r for r in got if r["task"] == "streamed"]
    assert stream_row["ttft_s"] and stream_row["output"] == "Echo: " + "two " * 5
    [answer] = [json.loads(r["output"]) for r in got if r["task"] == "structured"]
    assert set(answer) == {"city", "rank"}
    # the gateway spoke to the mock with its own key, never batchgpt's
    assert {s.headers.get("authorization") for s in gateway.mock.seen} == {f"Bearer {gateway.upstream_key}"}
    pattern = r"pacing at ([\d.]+) req/s, [\d,]+ tokens/s, from the server's x-ratelimit headers"
    [paced] = set(re.findall(pattern, result.output))
    assert 0.9 * RPM / 60 <= float(paced) <= RPM / 60, result.output
    nothing_holds_the_key(folder, result)


def waits_out_429s(gateway: Gateway, folder: Path) -> None:
    """A 429 through the gateway, which keeps the mock's retry-after behind: waited out by
    batchgpt's own backoff, once (the gateway retries none), and every item answered."""
    gateway.mock.config.faults = [Fault.parse("429:first=1")]  # each request's first try refused
    try:
        result = run(gateway, chat_job(["a", "b", "c"], limits={"concurrency": 3, "timeout": 30}), folder, "-v")
    finally:
        gateway.mock.config.faults = []
    assert result.exit_code == 0, result.output
    assert {r["status"] for r in rows(folder, "t")} == {"ok"} and len(gateway.mock.billed) == 3
    assert Counter(s.fault for s in gateway.mock.seen) == {"429": 3, None: 3}
    # not the mock's retry-after-ms (50 ms): batchgpt's first backoff (0.5 s, less up to a quarter)
    waits = [float(w) for w in re.findall(r"retrying p\d in ([\d.]+)s \(waiting for the limit\)", result.output)]
    assert len(waits) == 3 and min(waits) >= BACKOFF_BASE * 0.75, result.output
    nothing_holds_the_key(folder, result)


def stops_at_an_empty_quota(gateway: Gateway, folder: Path) -> None:
    """The gateway's empty quota (type throttling_error, code "429") stops the run at once."""
    gateway.mock.config.faults = [Fault.parse("quota")]
    try:
        result = run(gateway, chat_job(["a", "b", "c"], limits={"concurrency": 1, "patience": 10}), folder)
    finally:
        gateway.mock.config.faults = []
    assert result.exit_code == 3, result.output
    assert "out of quota" in result.output and len(gateway.mock.seen) == 1
    assert [r["status"] for r in rows(folder, "t")] == ["error", "skipped", "skipped"]
    nothing_holds_the_key(folder, result)


@pytest.mark.timeout(READY_S + 120)
def test_batchgpt_through_litellm(gateway, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", MASTER)
    costs_what_the_mock_billed(gateway, tmp_path / "billed")
    waits_out_429s(gateway, tmp_path / "limited")
    stops_at_an_empty_quota(gateway, tmp_path / "empty")


def test_an_empty_quota_as_a_gateway_relays_it_stops_the_run(cli, server, write_job, tmp_path):
    """LiteLLM answers an empty quota as type throttling_error, code "429", keeping OpenAI's message
    (the mock's `quota-relayed`): without the message read, the run took it for a rate limit and
    waited (and asked again) until its patience ran out."""
    faults(server, "quota-relayed:match=QUOTA")
    prompts = ["one", "two QUOTA", "three", "four"]
    result = cli("run", str(write_job(chat_job(prompts, limits={"concurrency": 1, "patience": 5}))))
    assert result.exit_code == 3, result.output
    assert "out of quota" in result.stderr
    assert "HTTP 429 429" not in result.stderr  # a code that only repeats the status is not shown
    with (tmp_path / "out" / "t.csv").open(encoding="utf-8") as file:
        got = list(csv.DictReader(file))
    assert [r["status"] for r in got] == ["ok", "error", "skipped", "skipped"]
    assert len(server.seen) == 2  # nothing after the quota answer, and it is not asked again
