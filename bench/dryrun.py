"""The million-item dry run with and without its second process (dryfork.py), paired: each round
runs `batchgpt estimate` once each way, as whole processes, and the medians of wall and CPU
seconds (user + sys, children included) are printed. On a shared machine the CPU figure moves
less than the wall figure; pairing keeps a busy spell from favouring one side.

    python bench/dryrun.py              # 1,000,000 items, 3 rounds
    python bench/dryrun.py -n 200000 --rounds 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import write_job  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(ROOT.parent / "shared" / "tiktoken"))
ONE_PROCESS = "import batchgpt.dryfork as f; f.SPLIT_BYTES = 1 << 62\n"


def timed(job: Path, prelude: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one `batchgpt estimate` of `job`."""
    argv = ["batchgpt", "estimate", str(job), "--model", "gpt-4o-mini"]
    code = f"{prelude}import sys\nfrom batchgpt.cli import main\nsys.argv = {argv!r}\nmain()\n"
    before = os.times()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    after = os.times()
    if done.returncode != 0:
        sys.exit(done.stderr[-2000:])
    wall = after.elapsed - before.elapsed
    return wall, (after.children_user - before.children_user) + (after.children_system - before.children_system)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        job = Path(work) / "big.jsonl"
        write_job(job, args.n)
        figures: dict[str, list[tuple[float, float]]] = {"two processes": [], "one process": []}
        for round_ in range(args.rounds):
            for name, prelude in (("two processes", ""), ("one process", ONE_PROCESS)):
                wall, cpu = timed(job, prelude)
                figures[name].append((wall, cpu))
                print(f"round {round_ + 1}, {name}: {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)
        for name, runs in figures.items():
            wall, cpu = statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)
            print(f"{args.n:,} items, {name}: median {wall:.1f} s wall, {cpu:.1f} s CPU")


if __name__ == "__main__":
    main()
