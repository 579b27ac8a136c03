"""The cost of the SQLite run state per item: the same job through the engine with the real store
(WAL on disk, a commit per event-loop turn) and with a store that keeps nothing, against
`batchgpt mock-server` with no latency, alternating, best of each.

    python bench/store_cost.py              # 20,000 items, concurrency 64, 3 rounds each
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import free_port, start_server  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(ROOT.parent / "shared" / "tiktoken"))
os.environ["OPENAI_API_KEY"] = "sk-bench"

from batchgpt.jobs import Overrides, load  # noqa: E402
from batchgpt.progress import Progress  # noqa: E402
from batchgpt.runoptions import RunOptions  # noqa: E402
from batchgpt.store import Store  # noqa: E402
from batchgpt.wiring import online_engine  # noqa: E402


class NoStore:
    """Everything the engine asks of a store, remembering nothing: the baseline."""

    def claim(self, *args: object, **kwargs: object) -> bool:
        return True

    def skip(self, *args: object) -> None:
        pass

    def record(self, *args: object) -> None:
        pass

    def commit(self) -> None:
        pass


def timed(job, store) -> float:
    engine = online_engine(
        job, store, 1, RunOptions(progress=False), Progress(job.name, job.count, bar=False, stream=io.StringIO())
    )
    started = time.perf_counter()
    asyncio.run(engine.run())
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=20_000)
    parser.add_argument("-c", "--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    port = free_port()
    server = start_server(port)
    try:
        with tempfile.TemporaryDirectory() as work:
            path = Path(work) / "job.jsonl"
            path.write_text(
                "".join(
                    f'{{"type": "chat", "id": "i{i}", "prompt": "Question {i}?", "max_tokens": 20}}\n'
                    for i in range(args.n)
                )
            )
            job = load(
                path,
                Overrides(base_url=f"http://127.0.0.1:{port}/v1", model="gpt-4o-mini", concurrency=args.concurrency),
            )
            with_store, without = [], []
            for round_ in range(args.rounds):
                store = Store(Path(work) / f"state{round_}")
                with_store.append(timed(job, store))
                store.close()
                without.append(timed(job, NoStore()))
                print(
                    f"round {round_ + 1}: with the store {with_store[-1]:.2f} s, without {without[-1]:.2f} s",
                    flush=True,
                )
    finally:
        server.terminate()
        server.wait()
    best_with, best_without = min(with_store), min(without)
    per_item = (best_with - best_without) / args.n * 1e6
    print(f"\n{args.n:,} items, concurrency {args.concurrency}, best of {args.rounds}:")
    print(f"  with the SQLite store  {best_with:.2f} s  ({args.n / best_with:,.0f} items/s)")
    print(f"  without                {best_without:.2f} s  ({args.n / best_without:,.0f} items/s)")
    print(f"  the store costs {per_item:.1f} µs per item ({best_with / best_without:.2f}x the run time)")


if __name__ == "__main__":
    main()
