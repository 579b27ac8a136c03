"""Big inputs take time in proportion to their size: a Batch API output file of one huge line, and
a CSV of thousands of columns.

    python bench/linear.py                    # a 50 MB and a 100 MB line; 16,000 and 32,000 columns
    python bench/linear.py --mb 100 200 --columns 32000 64000

- line: an output file of one JSONL line (a chat answer of N MB of text) served on 127.0.0.1 by
  a bare aiohttp server in this process, downloaded by `Client.download` (split into lines and
  stripped of secrets as it arrives), then read back as the batch runner reads it (`read_files`).
  Before the fix each 1 MiB chunk was appended to the line read so far: a 200 MB line took 64 s.
- columns: `jobs.load` of a job whose items_from CSV has N columns (kept with `keep: all`), one
  row. Before the fix each header name was counted over the whole header: 32,000 columns, 30 s.

Figures: the best of three runs of each size, and the ratio of the larger to the smaller, which
is about 2 when the work is linear in the size (4 when quadratic).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(ROOT.parent / "shared" / "tiktoken"))
sys.path.insert(0, str(ROOT))

from aiohttp import web  # noqa: E402

from batchgpt.batch.read import Tally, read_files  # noqa: E402
from batchgpt.client import Client  # noqa: E402
from batchgpt.jobs import load  # noqa: E402
from batchgpt.records import Provider  # noqa: E402

KEY = "sk-bench-not-a-real-key"


def answer_line(mb: int) -> bytes:
    text = b"x" * (mb * 10**6)
    body = b'{"choices": [{"message": {"role": "assistant", "content": "' + text + b'"}}], "usage": {}}'
    return b'{"id": "r", "custom_id": "a", "response": {"status_code": 200, "body": ' + body + b"}}\n"


def serve(files: dict[str, bytes]) -> int:
    """A server of `files` (GET /v1/files/NAME/content) on a free port, in a thread of its own."""
    ready = threading.Event()
    port: list[int] = []

    async def content(request: web.Request) -> web.Response:
        return web.Response(body=files[request.match_info["name"]], content_type="application/octet-stream")

    def run() -> None:
        loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_get("/v1/files/{name}/content", content)
        runner = web.AppRunner(app)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        port.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        ready.set()
        loop.run_forever()

    threading.Thread(target=run, daemon=True).start()
    ready.wait(10)
    return port[0]


def line_seconds(port: int, name: str, folder: Path) -> float:
    destination = folder / f"{name}.jsonl"

    async def download() -> None:
        async with Client(Provider(base_url=f"http://127.0.0.1:{port}/v1"), KEY, 600, 2) as client:
            assert await client.download(f"/files/{name}/content", destination, 2**40) is None

    started = time.perf_counter()
    asyncio.run(download())
    lines = list(read_files([("output", destination)], Tally({})))
    seconds = time.perf_counter() - started
    assert len(lines) == 1 and lines[0].body is not None
    destination.unlink()
    return seconds


def columns_seconds(columns: int, folder: Path) -> float:
    names = ["id", "prompt", *(f"c{n}" for n in range(columns))]
    with (folder / f"wide{columns}.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows([names, ["a", "hello", *(f"v{n}" for n in range(columns))]])
    job = folder / f"wide{columns}.yaml"
    task = f"{{type: chat, items_from: wide{columns}.csv, keep: all}}"
    job.write_text(f"defaults: {{model: gpt-4o-mini}}\ntasks:\n  - {task}\n")
    started = time.perf_counter()
    load(job)
    return time.perf_counter() - started


def best(run: Callable[[], float], times: int = 3) -> float:
    return min(run() for _ in range(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, nargs=2, default=[50, 100], help="the two line sizes (MB)")
    parser.add_argument("--columns", type=int, nargs=2, default=[16000, 32000], help="the two CSV widths")
    args = parser.parse_args()
    files = {f"line{mb}": answer_line(mb) for mb in args.mb}
    port = serve(files)
    with tempfile.TemporaryDirectory() as folder:
        lines = [best(lambda mb=mb: line_seconds(port, f"line{mb}", Path(folder))) for mb in args.mb]  # type: ignore[misc]
        wide = [best(lambda n=n: columns_seconds(n, Path(folder))) for n in args.columns]  # type: ignore[misc]
    small, large = args.mb
    print(
        f"batch output line: {small} MB {lines[0]:.2f} s, {large} MB {lines[1]:.2f} s, ratio {lines[1] / lines[0]:.2f}"
    )
    small, large = args.columns
    print(f"CSV columns: {small:,} {wide[0]:.3f} s, {large:,} {wide[1]:.3f} s, ratio {wide[1] / wide[0]:.2f}")


if __name__ == "__main__":
    main()
