"""How well batchgpt paces itself against what the server allows, scenario by scenario.

    python bench/pacing.py                  # every scenario (about four minutes)
    python bench/pacing.py headers bare     # some of them
    python bench/pacing.py --items 400      # more items where a scenario takes a count

Each scenario runs `batchgpt run` as its own process against `batchgpt mock-server` (in this
process, on a free loopback port), which enforces 10 requests a second per model over a one-second
window, as OpenAI enforces its per-minute limits over shorter periods. Figures:

- failed: items that did not end `ok`
- utilization: the rate answers were accepted at, from the first to the last, as a share of the
  server's 10 a second
- refused: 429 and 503 answers as a share of all requests the server saw

Scenarios (the figures issue 8 asks for in brackets):
- headers: told 6,000 rpm, the server says 600 in x-ratelimit-* headers (0 failed, >= 95%, <= 3%)
- bare: the same with no rate-limit headers and no Retry-After (0 failed, >= 80%, <= 10%)
- spell: 429 to everything for 20 s, then recovery (every item ok, exit 0)
- outage: nothing listening (stops within 90 s, exit 3, items skipped), then a plain rerun
  once the server is up answers every item
- pair: two jobs at once from one folder, each told 600 rpm, one 10 req/s limit (both exit 0)
- shared: the pair again with `limits.shared` on one Redis (refused <= 3%); needs redis-server
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(ROOT.parent / "shared" / "tiktoken"))
sys.path.insert(0, str(ROOT))

from batchgpt.mock import Config, Fault, MockServer  # noqa: E402

RATE = 10.0  # requests a second the server allows, per model
KEY = "sk-bench-not-a-real-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_job(folder: Path, name: str, items: int, limits: dict[str, Any]) -> Path:
    job = {
        "name": name,
        "defaults": {"model": "gpt-4o-mini", "max_tokens": 20},
        "limits": limits,
        "tasks": [{"type": "chat", "items": [{"id": f"{name}-{i}", "prompt": f"question {i}"} for i in range(items)]}],
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(job), encoding="utf-8")
    return path


def start(job: Path, base_url: str, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "OPENAI_API_KEY": KEY}
    return subprocess.Popen(
        [sys.executable, "-m", "batchgpt.cli", "run", str(job), "--base-url", base_url, "--no-progress", *extra],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )


def run(job: Path, base_url: str, *extra: str) -> tuple[int, float, str]:
    started = time.monotonic()
    process = start(job, base_url, *extra)
    _, err = process.communicate()
    return process.returncode, time.monotonic() - started, err


def statuses(job: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    with (job.parent / "out" / f"{job.stem}.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            counts[row["status"]] = counts.get(row["status"], 0) + 1
    return counts


def server_figures(server: MockServer, models: int = 1) -> str:
    accepted = [t for t, status in server.answers if status == 200]
    total = len(server.answers)
    refused = server.refused()
    if len(accepted) < 2:
        return f"requests {total}, refused {refused}"
    span = accepted[-1] - accepted[0]
    rate = (len(accepted) - 1) / span
    return (
        f"requests {total}, refused {refused} ({refused / total:.1%}), "
        f"utilization {rate / (models * RATE):.1%} ({rate:.2f} accepted/s over {span:.1f} s)"
    )


def limited_server(**config: Any) -> MockServer:
    return MockServer(Config(rpm=RATE * 60, window=1.0, **config)).start()


def scenario_headers(work: Path, items: int) -> None:
    paced(work, items, "headers", limit_headers=True, retry_after=True)


def scenario_bare(work: Path, items: int) -> None:
    paced(work, items, "bare", limit_headers=False, retry_after=False)


def paced(work: Path, items: int, name: str, **config: Any) -> None:
    server = limited_server(**config)
    try:
        job = write_job(work, name, items, {"rpm": 6000})
        code, seconds, _ = run(job, server.base_url)
        print(f"{name}: exit {code} in {seconds:.1f} s, items {statuses(job)}; {server_figures(server)}")
    finally:
        server.stop()


def scenario_spell(work: Path, items: int) -> None:
    server = MockServer(Config(faults=[Fault("429", seconds=20.0)])).start()
    try:
        job = write_job(work, "spell", min(items, 40), {})
        code, seconds, _ = run(job, server.base_url)
        print(
            f"spell: exit {code} in {seconds:.1f} s, items {statuses(job)}; requests {len(server.answers)}, "
            f"refused {server.refused()}"
        )
    finally:
        server.stop()


def scenario_outage(work: Path, items: int) -> None:
    port = free_port()
    job = write_job(work, "outage", min(items, 48), {})
    code, seconds, err = run(job, f"http://127.0.0.1:{port}/v1")
    last = [line for line in err.splitlines() if "stop" in line][-1:] or err.splitlines()[-1:]
    print(f"outage: exit {code} in {seconds:.1f} s, items {statuses(job)}; {' '.join(last)}")
    server = MockServer(Config()).start(port)
    try:
        code, seconds, _ = run(job, server.base_url)
        print(
            f"outage, rerun once the server is up: exit {code} in {seconds:.1f} s, items {statuses(job)}, "
            f"requests {len(server.answers)}"
        )
    finally:
        server.stop()


def scenario_pair(work: Path, items: int, shared: str | None = None) -> None:
    server = limited_server()
    name = "shared" if shared else "pair"
    try:
        limits: dict[str, Any] = {"rpm": 600, **({"shared": shared} if shared else {})}
        jobs = [write_job(work, f"{name}-{n}", items // 2, limits) for n in (1, 2)]
        started = time.monotonic()
        processes = [start(job, server.base_url) for job in jobs]
        errors = [p.communicate()[1] for p in processes]
        codes = [p.returncode for p in processes]
        for code, err in zip(codes, errors, strict=True):
            if code not in (0, 1, 3):
                print(err)
        seconds = time.monotonic() - started
        print(
            f"{name}: exits {codes} in {seconds:.1f} s, items {[statuses(j) for j in jobs]}; {server_figures(server)}"
        )
    finally:
        server.stop()


def scenario_shared(work: Path, items: int) -> None:
    binary = shutil.which("redis-server")
    if binary is None:
        print("shared: skipped (no redis-server on PATH)")
        return
    port = free_port()
    redis = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        scenario_pair(work, items, shared=f"redis://127.0.0.1:{port}/0")
    finally:
        redis.terminate()
        redis.wait()


SCENARIOS = {
    "headers": scenario_headers,
    "bare": scenario_bare,
    "spell": scenario_spell,
    "outage": scenario_outage,
    "pair": scenario_pair,
    "shared": scenario_shared,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenarios", nargs="*", help=f"any of {', '.join(SCENARIOS)} (default: all)")
    parser.add_argument("--items", type=int, default=200)
    args = parser.parse_args()
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    for name in args.scenarios or SCENARIOS:
        with tempfile.TemporaryDirectory() as folder:
            SCENARIOS[name](Path(folder), args.items)


if __name__ == "__main__":
    main()
