"""How long `batchgpt --help` and `batchgpt --version` take, whole processes (issue 11: under 0.3 s),
and which heavy libraries `import batchgpt` loads (none).

    python bench/startup.py             # 10 runs of each, best and median
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

HEAVY = ("aiohttp", "pandas", "pyarrow", "tiktoken", "jsonschema", "genai_prices", "batchgpt.lifecycle")


def seconds(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    for flag in ("--help", "--version"):
        times = [seconds([sys.executable, "-m", "batchgpt.cli", flag]) for _ in range(args.runs)]
        print(f"batchgpt {flag:<10} best {min(times):.3f} s, median {statistics.median(times):.3f} s")
    code = "import sys, batchgpt; print(' '.join(sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    print(f"import batchgpt loads: {', '.join(m for m in HEAVY if m in loaded) or 'none of ' + ', '.join(HEAVY)}")


if __name__ == "__main__":
    main()
