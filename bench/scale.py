"""A million-item JSONL job: how long `batchgpt estimate` takes and how much memory `estimate` and
`run` need at their peak (RSS from /usr/bin/time), against `batchgpt mock-server` with no latency;
with --run, also the size of the run's HTML page (issue 12: under 2 MB for 1,000,000 items).

    python bench/scale.py                    # 1,000,000 items: estimate only
    python bench/scale.py --run              # ... and a full run (a few minutes)
    python bench/scale.py -n 100000 --run

Each command runs in its own process, so the peak RSS is that command's alone.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import free_port, start_server  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(ROOT.parent / "shared" / "tiktoken"))


def write_job(path: Path, n: int) -> None:
    with path.open("w") as handle:
        for i in range(n):
            handle.write(
                json.dumps(
                    {"type": "chat", "id": f"i{i}", "prompt": f"Question {i}: what is {i} plus {i}?", "max_tokens": 20}
                )
                + "\n"
            )


def timed(args: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """(seconds, peak RSS in MB, exit code) of one command."""
    started = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-v", *args], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    if done.returncode not in (0, 1):
        print(done.stderr[-2000:], file=sys.stderr)
    return elapsed, int(match.group(1)) / 1024 if match else float("nan"), done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=1_000_000)
    parser.add_argument("--run", action="store_true", help="also run the job against the mock server")
    parser.add_argument("-c", "--concurrency", type=int, default=64)
    args = parser.parse_args()
    env = {**os.environ, "OPENAI_API_KEY": "sk-bench"}
    with tempfile.TemporaryDirectory() as work:
        job = Path(work) / "big.jsonl"
        write_job(job, args.n)
        print(f"{args.n:,} items, {job.stat().st_size / 2**20:.0f} MiB of JSONL", flush=True)
        cli = [sys.executable, "-m", "batchgpt.cli"]
        seconds, rss, code = timed([*cli, "estimate", str(job), "--model", "gpt-4o-mini"], env)
        print(
            f"estimate: {seconds:.1f} s ({args.n / seconds:,.0f} items/s), peak RSS {rss:.0f} MB, exit {code}",
            flush=True,
        )
        if args.run:
            port = free_port()
            server = start_server(port)
            try:
                seconds, rss, code = timed(
                    [
                        *cli,
                        "run",
                        str(job),
                        "--model",
                        "gpt-4o-mini",
                        "--base-url",
                        f"http://127.0.0.1:{port}/v1",
                        "--concurrency",
                        str(args.concurrency),
                        "--out",
                        str(Path(work) / "r.jsonl"),
                        "--no-progress",
                    ],
                    env,
                )
            finally:
                server.terminate()
                server.wait()
            print(f"run: {seconds:.1f} s ({args.n / seconds:,.0f} requests/s), peak RSS {rss:.0f} MB, exit {code}")
            page = Path(work) / "out" / "big-report.html"  # beside the default report, out/big-report.csv
            print(f"HTML page: {page.stat().st_size / 1024:,.0f} KB" if page.exists() else "HTML page: not written")


if __name__ == "__main__":
    main()
