"""Requests per second against `batchgpt mock-server` (no latency): batchgpt, a bare aiohttp loop,
and the official openai SDK with an asyncio semaphore, in the same run on the same machine.

    python bench/throughput.py                 # 20,000 requests, concurrency 64, 3 rounds
    python bench/throughput.py -n 10000 -c 128

batchgpt is timed from loading the job to the results file being written, so validation, the
state store and the export are all in its figure. The server runs in its own process; each
round runs the three clients back to back and the best round of each is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(ROOT.parent / "shared" / "tiktoken"))
MODEL = "gpt-4o-mini"
KEY = "sk-bench-not-a-real-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int, latency: float = 0.0) -> subprocess.Popen:
    server = subprocess.Popen(
        [sys.executable, "-m", "batchgpt.cli", "mock-server", "--port", str(port), "--latency", str(latency)],
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return server
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the mock server did not start")


def prompts(n: int) -> list[str]:
    return [f"Question {i}: what is {i} plus {i}?" for i in range(n)]


def bench_batchgpt(base_url: str, n: int, concurrency: int, work: Path) -> float:
    from batchgpt.jobs import Overrides, load
    from batchgpt.runner import RunOptions, run_job

    job_path = work / "bench.jsonl"
    with job_path.open("w") as handle:
        for i, prompt in enumerate(prompts(n)):
            handle.write(json.dumps({"type": "chat", "id": f"i{i}", "prompt": prompt, "max_tokens": 30}) + "\n")
    state = Path(tempfile.mkdtemp(dir=work))
    os.environ["OPENAI_API_KEY"] = KEY
    started = time.perf_counter()
    job = load(
        job_path,
        Overrides(
            base_url=base_url,
            model=MODEL,
            concurrency=concurrency,
            out=str(state / "r.csv"),
            report=str(state / "rep.csv"),
        ),
    )
    summary = run_job(job, RunOptions(state_dir=state, progress=False))
    elapsed = time.perf_counter() - started
    assert summary.ok == n, summary
    return n / elapsed


def bench_bare(base_url: str, n: int, concurrency: int) -> float:
    async def go() -> None:
        semaphore = asyncio.Semaphore(concurrency)
        headers = {"Authorization": f"Bearer {KEY}"}
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

            async def one(prompt: str) -> None:
                body = {"model": MODEL, "messages": [{"role": "user", "content": prompt}], "max_tokens": 30}
                async with semaphore:
                    async with session.post(base_url + "/chat/completions", json=body, headers=headers) as response:
                        data = await response.json()
                        assert data["choices"][0]["message"]["content"]

            await asyncio.gather(*(one(p) for p in prompts(n)))

    started = time.perf_counter()
    asyncio.run(go())
    return n / (time.perf_counter() - started)


def bench_openai(base_url: str, n: int, concurrency: int) -> float:
    from openai import AsyncOpenAI

    async def go() -> None:
        client = AsyncOpenAI(base_url=base_url, api_key=KEY, max_retries=0)
        semaphore = asyncio.Semaphore(concurrency)

        async def one(prompt: str) -> None:
            async with semaphore:
                answer = await client.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": prompt}], max_tokens=30
                )
                assert answer.choices[0].message.content

        await asyncio.gather(*(one(p) for p in prompts(n)))
        await client.close()

    started = time.perf_counter()
    asyncio.run(go())
    return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=20000, help="requests per client per round")
    parser.add_argument("-c", "--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    port = free_port()
    server = start_server(port)
    base_url = f"http://127.0.0.1:{port}/v1"
    best: dict[str, float] = {}
    try:
        bench_bare(base_url, 200, args.concurrency)  # warm the server (tiktoken loads on first use)
        with tempfile.TemporaryDirectory() as work:
            for round_ in range(1, args.rounds + 1):
                figures = {
                    "bare aiohttp": bench_bare(base_url, args.n, args.concurrency),
                    "batchgpt": bench_batchgpt(base_url, args.n, args.concurrency, Path(work)),
                    "openai SDK": bench_openai(base_url, args.n, args.concurrency),
                }
                print(f"round {round_}: " + ", ".join(f"{k} {v:,.0f} req/s" for k, v in figures.items()), flush=True)
                for name, value in figures.items():
                    best[name] = max(best.get(name, 0.0), value)
    finally:
        server.terminate()
        server.wait()
    print(f"\n{args.n} requests, concurrency {args.concurrency}, best of {args.rounds} rounds:")
    for name, value in best.items():
        print(f"  {name:<13} {value:8,.0f} req/s   {value / best['bare aiohttp']:.2f}x bare aiohttp")


if __name__ == "__main__":
    main()
