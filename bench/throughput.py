"""Requests per second, whole processes: `batchgpt run`, a bare aiohttp loop and the official openai
SDK with an asyncio semaphore, against one server, in the same run on the same machine.

    python bench/throughput.py                 # 20,000 requests, concurrency 64, 3 rounds
    python bench/throughput.py -n 10000 -c 128
    python bench/throughput.py --mock          # against `batchgpt mock-server` instead of nginx
    python bench/throughput.py --profile       # ... and where batchgpt's time goes (cProfile)
    python bench/throughput.py --in-flight     # 1,000 requests in flight against 1 s of latency

The server is nginx returning a fixed chat completion when nginx is installed (no Python on the
server side, so each client's own cost shows), else the mock server. Every client is a process
of its own, timed from its start to its exit: `batchgpt run` includes the interpreter, imports,
validation, the state store and the results and report files. Each round runs the clients back
to back; the best round of each is reported, as a ratio to the bare loop. batchgpt's bytecode is
compiled first, as an installed package's is (the libraries' is, by pip).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(ROOT.parent / "shared" / "tiktoken"))
MODEL = "gpt-4o-mini"
KEY = "sk-bench-not-a-real-key"
ANSWER = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "The answer is 42.", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 19,
        "completion_tokens": 6,
        "total_tokens": 25,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    },
    "system_fingerprint": "fp_bench",
}

BARE = """
import asyncio, json, sys
import aiohttp
base_url, n, concurrency, key, model = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
async def go():
    semaphore = asyncio.Semaphore(concurrency)
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        async def one(i):
            body = {"model": model, "messages": [{"role": "user", "content": f"Question {i}: what is {i} plus {i}?"}],
                    "max_tokens": 30}
            async with semaphore:
                async with session.post(base_url + "/chat/completions", json=body, headers=headers) as response:
                    data = json.loads(await response.read())
                    assert data["choices"][0]["message"]["content"]
        await asyncio.gather(*(one(i) for i in range(n)))
asyncio.run(go())
"""

SDK = """
import asyncio, sys
from openai import AsyncOpenAI
base_url, n, concurrency, key, model = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
async def go():
    client = AsyncOpenAI(base_url=base_url, api_key=key, max_retries=0)
    semaphore = asyncio.Semaphore(concurrency)
    async def one(i):
        async with semaphore:
            messages = [{"role": "user", "content": f"Question {i}: what is {i} plus {i}?"}]
            answer = await client.chat.completions.create(model=model, messages=messages, max_tokens=30)
            assert answer.choices[0].message.content
    await asyncio.gather(*(one(i) for i in range(n)))
    await client.close()
asyncio.run(go())
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(port: int, server: subprocess.Popen) -> subprocess.Popen:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("the server did not start")


def start_server(port: int, latency: float = 0.0) -> subprocess.Popen:
    """`batchgpt mock-server` in its own process."""
    server = subprocess.Popen(
        [sys.executable, "-m", "batchgpt.cli", "mock-server", "--port", str(port), "--latency", str(latency)],
        stderr=subprocess.DEVNULL,
    )
    return _wait_for(port, server)


def nginx() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)


def start_nginx(binary: str, port: int, work: Path) -> subprocess.Popen:
    """nginx in the foreground with one worker answering every POST with the same completion."""
    body = json.dumps(ANSWER).replace("\\", "\\\\").replace("'", "\\'")
    conf = work / "nginx.conf"
    conf.write_text(
        textwrap.dedent(
            f"""
            daemon off;
            master_process off;
            worker_processes 1;
            pid {work}/nginx.pid;
            error_log stderr error;
            events {{ worker_connections 4096; }}
            http {{
                access_log off;
                client_body_temp_path {work}/body;
                keepalive_requests 1000000;
                server {{
                    listen 127.0.0.1:{port};
                    location / {{
                        default_type application/json;
                        add_header x-request-id req_bench;
                        return 200 '{body}';
                    }}
                }}
            }}
            """
        )
    )
    server = subprocess.Popen([binary, "-c", str(conf), "-p", str(work)], stderr=subprocess.DEVNULL)
    return _wait_for(port, server)


def timed(args: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(args, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def write_job(path: Path, n: int) -> None:
    with path.open("w") as handle:
        for i in range(n):
            line = {"type": "chat", "id": f"i{i}", "prompt": f"Question {i}: what is {i} plus {i}?", "max_tokens": 30}
            handle.write(json.dumps(line) + "\n")


def batchgpt_args(base_url: str, n: int, concurrency: int, work: Path, profile: Path | None = None) -> list[str]:
    job = work / f"bench-{n}.jsonl"
    if not job.exists():
        write_job(job, n)
    state = Path(tempfile.mkdtemp(dir=work))
    cli = ["batchgpt"]
    if profile:  # main(), not the console script: its os._exit would end the process before cProfile writes
        runner = work / "profiled.py"
        runner.write_text("from batchgpt.cli import main\n\nmain()\n")
        cli = [sys.executable, "-m", "cProfile", "-o", str(profile), str(runner)]
    return [
        *cli, "run", str(job), "--base-url", base_url, "--model", MODEL, "--concurrency", str(concurrency),
        "--state", str(state), "--out", str(state / "r.csv"), "--report", str(state / "rep.csv"), "--no-progress",
    ]  # fmt: skip


def round_of(base_url: str, n: int, concurrency: int, work: Path) -> dict[str, float]:
    env = {**os.environ, "OPENAI_API_KEY": KEY}
    client = [base_url, str(n), str(concurrency), KEY, MODEL]
    return {
        "bare aiohttp": n / timed([sys.executable, "-c", BARE, *client]),
        "batchgpt": n / timed(batchgpt_args(base_url, n, concurrency, work), env),
        "openai SDK": n / timed([sys.executable, "-c", SDK, *client]),
    }


def profile(base_url: str, n: int, concurrency: int, work: Path) -> None:
    import pstats

    out = work / "batchgpt.prof"
    timed(batchgpt_args(base_url, n, concurrency, work, out), {**os.environ, "OPENAI_API_KEY": KEY})
    print(f"\nwhere batchgpt's time goes ({n:,} requests, cProfile, tottime):")
    pstats.Stats(str(out)).sort_stats("tottime").print_stats(25)


def in_flight(n: int, concurrency: int, latency: float) -> None:
    """`batchgpt run` with `concurrency` requests in flight against the mock server answering after
    `latency` s: the rate over the whole run and in its steady state (between the 10th and the 90th
    percentile of answer times, from the store), and the peak RSS."""
    import resource
    import sqlite3

    port = free_port()
    server = start_server(port, latency)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            args = batchgpt_args(f"http://127.0.0.1:{port}/v1", n, concurrency, work)
            elapsed = timed(args, {**os.environ, "OPENAI_API_KEY": KEY})
            peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            state = Path(args[args.index("--state") + 1])
            answered = [
                r[0] for r in sqlite3.connect(state / "state.db").execute("SELECT answered FROM items ORDER BY 1")
            ]
    finally:
        server.terminate()
        server.wait()
    low, high = answered[len(answered) // 10], answered[len(answered) * 9 // 10]
    steady = (len(answered) * 8 // 10) / (high - low)
    ideal = concurrency / latency
    print(f"{n:,} requests, {concurrency:,} in flight, {latency:g} s latency (at most {ideal:,.0f} req/s):")
    print(f"  whole run    {n / elapsed:8,.0f} req/s  {n / elapsed / ideal:.0%} of the most ({elapsed:.1f} s)")
    print(f"  steady state {steady:8,.0f} req/s  {steady / ideal:.0%} of the most")
    print(f"  peak RSS     {peak_mb:8,.0f} MB")


def compile_batchgpt() -> None:
    """Bytecode for batchgpt's modules, as an installed wheel has it: with PYTHONDONTWRITEBYTECODE
    set (or an editable install in a read-only checkout) every run would compile them again."""
    import compileall

    compileall.compile_dir(str(ROOT / "batchgpt"), quiet=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=20000, help="requests per client per round")
    parser.add_argument("-c", "--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mock", action="store_true", help="the mock server even where nginx is installed")
    parser.add_argument("--profile", action="store_true", help="then profile one batchgpt run")
    parser.add_argument("--in-flight", action="store_true", help="1,000 in flight against 1 s latency instead")
    args = parser.parse_args()
    compile_batchgpt()
    if args.in_flight:
        in_flight(args.n if args.n != 20000 else 30000, 1000, 1.0)
        return
    port = free_port()
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        binary = None if args.mock else nginx()
        server = start_nginx(binary, port, work) if binary else start_server(port)
        base_url = f"http://127.0.0.1:{port}/v1"
        print(f"server: {'nginx' if binary else 'batchgpt mock-server'}", flush=True)
        try:
            for round_ in range(1, args.rounds + 1):
                figures = round_of(base_url, args.n, args.concurrency, work)
                print(f"round {round_}: " + ", ".join(f"{k} {v:,.0f} req/s" for k, v in figures.items()), flush=True)
                for name, value in figures.items():
                    best[name] = max(best.get(name, 0.0), value)
            if args.profile:
                profile(base_url, args.n, args.concurrency, work)
        finally:
            server.terminate()
            server.wait()
    print(f"\n{args.n:,} requests, concurrency {args.concurrency}, whole processes, best of {args.rounds} rounds:")
    for name, value in best.items():
        print(f"  {name:<13} {value:8,.0f} req/s   {value / best['bare aiohttp']:.2f}x bare aiohttp")
    print(f"  batchgpt / openai SDK: {best['batchgpt'] / best['openai SDK']:.1f}x")


if __name__ == "__main__":
    main()
