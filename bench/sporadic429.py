"""Sporadic 429s are not a limit: the throughput of a whole `batchgpt run` against a server that
refuses a few requests at random, as a ratio to the same run against the same server without them.

    python bench/sporadic429.py                       # 2,000 items, 3% 429s, 5 pairs
    python bench/sporadic429.py --rate 0.05 --kind 429-no-retry-after
    python bench/sporadic429.py --serve               # start the two servers, print the two commands

Both servers are `batchgpt mock-server` processes told no limit (no --rpm: no x-ratelimit-*
headers); one of them refuses --rate of the requests at random with a rate-limit 429 (`--fault
429:0.03`: with `retry-after-ms: 50`; `429-no-retry-after`: no header at all). The job is told no
limit either. Each pair runs the faulty run (A) and the clean one (B) one after the other, each
a process of its own with `--fresh`, timed from start to exit; the figure is the median of the
pairs' throughput ratios A/B (issue 24 asks for at least 0.80). Every item must end `ok`, or the
run's figure is not printed.

With --serve the servers stay up until Ctrl-C (or SIGTERM) and the two command lines are printed, so that any
outside timer (`/usr/bin/time -v`, hyperfine) can time them.
"""

from __future__ import annotations

import argparse
import csv
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(ROOT.parent / "shared" / "tiktoken"))
KEY = "sk-bench-not-a-real-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(*fault: str) -> tuple[subprocess.Popen[bytes], str]:
    """A mock server process, and its base URL once it accepts connections."""
    port = free_port()
    command = [sys.executable, "-m", "batchgpt.cli", "mock-server", "--port", str(port), "--seed", "1", *fault]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return process, f"http://127.0.0.1:{port}/v1"
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit(f"the mock server on port {port} did not start")


def write_job(folder: Path, items: int, concurrency: int) -> Path:
    job = {
        "name": "sporadic",
        "defaults": {"model": "gpt-4o-mini", "max_tokens": 20},
        "limits": {"concurrency": concurrency},
        "tasks": [{"type": "chat", "items": [{"id": f"q{i}", "prompt": f"question {i}"} for i in range(items)]}],
    }
    path = folder / "sporadic.yaml"
    path.write_text(yaml.safe_dump(job), encoding="utf-8")
    return path


def command(job: Path, base_url: str, name: str) -> list[str]:
    folder = job.parent / name
    return [
        *(sys.executable, "-m", "batchgpt.cli", "run", str(job), "--base-url", base_url, "--fresh", "--no-progress"),
        *("--state", str(folder / "state"), "--out", str(folder / "out.csv"), "--report", str(folder / "report.csv")),
    ]


def timed(argv: list[str]) -> float:
    started = time.monotonic()
    done = subprocess.run(argv, env={**os.environ, "OPENAI_API_KEY": KEY}, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"exit {done.returncode}: {' '.join(argv)}\n{done.stderr[-2000:]}")
    return seconds


def all_ok(results: Path, items: int) -> bool:
    with results.open(encoding="utf-8", newline="") as handle:
        statuses = [row["status"] for row in csv.DictReader(handle)]
    return len(statuses) == items and set(statuses) == {"ok"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rate", type=float, default=0.03, help="share of requests refused at random")
    parser.add_argument("--kind", choices=("429", "429-no-retry-after"), default="429")
    parser.add_argument("--runs", type=int, default=5, help="pairs of runs")
    parser.add_argument("--serve", action="store_true", help="start the servers and print the commands")
    args = parser.parse_args()
    faulty, faulty_url = serve("--fault", f"{args.kind}:{args.rate}")
    clean, clean_url = serve()
    try:
        with tempfile.TemporaryDirectory() as folder:
            job = write_job(Path(folder), args.items, args.concurrency)
            a, b = command(job, faulty_url, "faulty"), command(job, clean_url, "clean")
            if args.serve:
                signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # the servers stop with this process
                print(f"OPENAI_API_KEY={KEY}\nA (faulty): {' '.join(a)}\nB (clean):  {' '.join(b)}", flush=True)
                try:
                    faulty.wait()
                except KeyboardInterrupt:
                    pass
                return
            pairs = compare(a, b, job.parent, args)
            ratios = [wb / wa for wa, wb in pairs]
            print(
                f"{args.items} items, {args.kind} at {args.rate:.0%}: "
                f"faulty median {statistics.median(wa for wa, _ in pairs):.2f} s, "
                f"clean median {statistics.median(wb for _, wb in pairs):.2f} s; "
                f"throughput ratio faulty/clean median {statistics.median(ratios):.2f} "
                f"(min {min(ratios):.2f}, max {max(ratios):.2f})"
            )
    finally:
        for process in (faulty, clean):
            process.terminate()
            process.wait()


def compare(a: list[str], b: list[str], folder: Path, args: argparse.Namespace) -> list[tuple[float, float]]:
    """(A's seconds, B's seconds) for each pair, after one warm-up pair that is not counted."""
    pairs: list[tuple[float, float]] = []
    for n in range(args.runs + 1):
        wa, wb = timed(a), timed(b)
        for name in ("faulty", "clean"):
            if not all_ok(folder / name / "out.csv", args.items):
                raise SystemExit(f"{name}: not every item ended ok")
        if n:
            pairs.append((wa, wb))
            print(f"pair {n}: faulty {wa:.2f} s, clean {wb:.2f} s, ratio {wb / wa:.2f}", flush=True)
    return pairs


if __name__ == "__main__":
    main()
