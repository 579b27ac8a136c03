"""Embedding a corpus of short texts with packing (many inputs a request) against one input per
request, through `batchgpt run`, against `batchgpt mock-server` with no latency: requests sent
and wall time of each, same machine, same run.

    python bench/embeddings.py                      # 100,000 texts, 256 dimensions
    python bench/embeddings.py -n 20000 --dimensions 1536
    python bench/embeddings.py -n 20000 --latency 0.2   # closer to a real API's round trip

Results go to Parquet (the vector as a list column), so the figure includes writing them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import free_port, start_server  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(ROOT.parent / "shared" / "tiktoken"))


def run(job: Path, base_url: str, out: Path) -> tuple[float, int]:
    """(seconds, requests sent) of one `batchgpt run`."""
    env = {**os.environ, "OPENAI_API_KEY": "sk-bench"}
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "batchgpt.cli",
            "run",
            str(job),
            "--base-url",
            base_url,
            "--out",
            str(out),
            "--no-progress",
            "--log-format",
            "json",
            "--fresh",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(done.stderr[-3000:])
    summary = json.loads(done.stderr.strip().splitlines()[-1])
    return elapsed, summary["sent"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=100_000)
    parser.add_argument("--dimensions", type=int, default=256)
    parser.add_argument("-c", "--concurrency", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=256, help="inputs a request when packing")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds the server takes per request")
    args = parser.parse_args()
    port = free_port()
    server = start_server(port, args.latency)
    try:
        with tempfile.TemporaryDirectory() as work:
            data = Path(work) / "corpus.csv"
            data.write_text(
                "id,text\n" + "".join(f"d{i},Short text number {i} about topic {i % 97}\n" for i in range(args.n))
            )
            figures = {}
            for label, batch_size in (("packed", args.batch_size), ("one per request", 1)):
                job = Path(work) / f"{batch_size}.yaml"
                job.write_text(
                    json.dumps(
                        {
                            "name": f"embed-{batch_size}",
                            "limits": {"concurrency": args.concurrency},
                            "tasks": [
                                {
                                    "type": "embedding",
                                    "dimensions": args.dimensions,
                                    "batch_size": batch_size,
                                    "items_from": str(data),
                                }
                            ],
                        }
                    )
                )
                seconds, sent = run(job, f"http://127.0.0.1:{port}/v1", Path(work) / f"{batch_size}.parquet")
                figures[label] = (seconds, sent)
                print(
                    f"{label:>16}: {sent:>7,} requests, {seconds:6.1f} s, {args.n / seconds:8,.0f} texts/s", flush=True
                )
    finally:
        server.terminate()
        server.wait()
    (packed_s, packed_n), (single_s, single_n) = figures["packed"], figures["one per request"]
    print(
        f"\n{args.n:,} texts, {args.dimensions} dimensions, concurrency {args.concurrency}, server latency "
        f"{args.latency:g} s: packing sends "
        f"{single_n / packed_n:,.0f}x fewer requests and is {single_s / packed_s:.1f}x faster"
    )


if __name__ == "__main__":
    main()
