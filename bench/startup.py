"""How long `batchgpt --help` and `batchgpt --version` take, whole processes (issue 11: under 0.3 s),
which heavy libraries `import batchgpt` loads (none), and what the console script's way out of the
process is worth.

    python bench/startup.py             # 10 runs of each, best and median
    python bench/startup.py --exit      # ... and the way out, paired: os._exit against a plain exit

`--exit` times `--help`, `--version` and `run jobs/translate.yaml --dry-run` twice each, in turns
(so a slow minute of this shared machine hits both): once through the console script, `entry()`,
which leaves with os._exit after the exit handlers and the flushes, skipping the interpreter's
teardown; once through `main()` as a plain script, which tears down as every Python process does.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("aiohttp", "pandas", "pyarrow", "tiktoken", "jsonschema", "genai_prices", "batchgpt.lifecycle")
ENTRY = [sys.executable, "-c", "from batchgpt.cli import entry; entry()"]  # the console script, as installed
PLAIN = [sys.executable, "-c", "from batchgpt.cli import main; main()"]  # click's own exit: SystemExit
PAIRED = (["--help"], ["--version"], ["run", str(ROOT / "jobs" / "translate.yaml"), "--dry-run"])


def seconds(args: list[str]) -> float:
    return timed(args)[0]


def timed(args: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one whole process; CPU time is what a loaded machine blurs least."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env())
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TIKTOKEN_CACHE_DIR", str(ROOT.parent / "shared" / "tiktoken"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def paired(args: list[str], runs: int) -> None:
    """The same command through entry() and through main(), in turns; medians and their difference."""
    through_entry: list[tuple[float, float]] = []
    through_main: list[tuple[float, float]] = []
    for _ in range(runs):
        through_entry.append(timed(ENTRY + args))
        through_main.append(timed(PLAIN + args))
    name = " ".join(args).replace(str(ROOT) + "/", "")
    for what, index in (("wall", 0), ("CPU", 1)):
        a = statistics.median(t[index] for t in through_entry)
        b = statistics.median(t[index] for t in through_main)
        print(
            f"batchgpt {name:<36} {what:<4} os._exit {a:.3f} s, plain exit {b:.3f} s, "
            f"os._exit saves {1000 * (b - a):+.1f} ms (medians of {runs}, in turns)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--exit", action="store_true", help="also compare os._exit with a plain exit, paired")
    args = parser.parse_args()
    for flag in ("--help", "--version"):
        times = [seconds(ENTRY + [flag]) for _ in range(args.runs)]
        print(f"batchgpt {flag:<10} best {min(times):.3f} s, median {statistics.median(times):.3f} s")
    code = "import sys, batchgpt; print(' '.join(sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    print(f"import batchgpt loads: {', '.join(m for m in HEAVY if m in loaded) or 'none of ' + ', '.join(HEAVY)}")
    if args.exit:
        for command in PAIRED:
            paired(command, args.runs)


if __name__ == "__main__":
    main()
