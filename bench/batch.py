"""Batch mode against online mode for the same job: time, peak memory and cost.

    python bench/batch.py                 # 100,000 chat items
    python bench/batch.py --items 20000

Each step runs `batchgpt run` as its own process (under /usr/bin/time for its peak RSS) against
`batchgpt mock-server` in this process on a free loopback port, with a state directory of its own:

- online: the job sent as it is (concurrency 64);
- submit: the same job with --batch: validate, write the files, upload, create, exit 5;
- collect: the batches made to end at once, then the same command again: poll, download, map
  each line back to its item, write the results (exit 0).

Figures: seconds, peak RSS, the run's cost (from its JSON summary) and, for batch mode, the
ratio of its cost and time to the online run's.
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
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(ROOT.parent / "shared" / "tiktoken"))
sys.path.insert(0, str(ROOT))

from batchgpt.mock import Config, MockServer  # noqa: E402

KEY = "sk-bench-not-a-real-key"


def step(job: Path, state: Path, server: MockServer, *extra: str) -> dict[str, Any]:
    """One `batchgpt run` process: its exit code, seconds, peak RSS (MB) and summary."""
    command = ["/usr/bin/time", "-f", "RSS %M", sys.executable, "-m", "batchgpt.cli", "run", str(job)]
    command += ["--base-url", server.base_url, "--state", str(state), "--log-format", "json", *extra]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OPENAI_API_KEY": KEY})
    seconds = time.monotonic() - started
    summary = next(json.loads(x) for x in done.stderr.splitlines() if x.startswith("{") and '"event": "summary"' in x)
    rss = int(re.findall(r"RSS (\d+)", done.stderr)[-1]) / 1024
    return {
        "exit": done.returncode,
        "seconds": seconds,
        "rss_mb": rss,
        "cost": summary["cost_usd"],
        "ok": summary["ok"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    args = parser.parse_args()
    server = MockServer(Config(api_key=KEY, record=False)).start()
    try:
        with tempfile.TemporaryDirectory() as folder:
            base = Path(folder)
            rows = (json.dumps({"id": f"i{n}", "prompt": f"Say {n} in French"}) for n in range(args.items))
            (base / "items.jsonl").write_text("\n".join(rows) + "\n")
            job = base / "job.yaml"
            job.write_text(
                "name: bench\ndefaults: {model: gpt-4o-mini, max_tokens: 20}\nlimits: {concurrency: 64}\n"
                "tasks: [{type: chat, items_from: items.jsonl}]\n"
            )
            online = step(job, base / "online", server)
            server.config.batch_delay = 10**6  # nothing ends until told
            submit = step(job, base / "batch", server, "--batch")
            for batch in server.batch.batches.values():
                batch.created -= 10**6
            collect = step(job, base / "batch", server, "--batch")
    finally:
        server.stop()
    print(f"{args.items:,} chat items")
    for name, figures in (("online", online), ("submit", submit), ("collect", collect)):
        print(
            f"  {name:8} exit {figures['exit']}  {figures['seconds']:6.1f} s  peak RSS {figures['rss_mb']:5.0f} MB"
            f"  ok {figures['ok']:,}  cost ${figures['cost'] or 0:.4f}"
        )
    batch_seconds = submit["seconds"] + collect["seconds"]
    print(
        f"  batch mode / online: cost {collect['cost'] / online['cost']:.2f}x, "
        f"time on this machine {batch_seconds / online['seconds']:.2f}x "
        "(submit + collect; the provider's 24 h not included)"
    )


if __name__ == "__main__":
    main()
