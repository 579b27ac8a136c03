"""Requests per second, whole processes: `batchgpt run`, a bare aiohttp loop and the official openai
SDK with an asyncio semaphore, against one server over http and over https, in the same run on
the same machine.

    python bench/throughput.py                 # 20,000 requests, concurrency 64, 3 rounds, http and https
    python bench/throughput.py -n 10000 -c 128 --transport https
    python bench/throughput.py --tls-port 8443 --cert my.pem --key my.key --ca my-ca.pem
    python bench/throughput.py --batchgpt-loop both   # batchgpt on uvloop and on asyncio's own loop
    python bench/throughput.py --mock          # against `batchgpt mock-server` instead of nginx
    python bench/throughput.py --profile       # ... and where batchgpt's time goes (cProfile)
    python bench/throughput.py --in-flight     # 1,000 requests in flight against 1 s of latency

The server is nginx returning a fixed chat completion when nginx is installed (no Python on the
server side, so each client's own cost shows), else the mock server; it listens for http and, on
another port, for https with a certificate (tests/tls's, for 127.0.0.1, by default). Each client
is given the CA that signed it: `--ca-bundle` for batchgpt, an SSLContext for the bare loop and
the SDK. Every client is a process of its own, timed from its start to its exit: `batchgpt run`
includes the interpreter, imports, validation, the state store and the results and report
files, on uvloop where it is installed, as the command line runs (the bare loop and the SDK run
on asyncio's own loop). Each round runs the clients back to back, http then https; the best
round of each is reported, as a ratio to the bare loop over the same transport, and so is the
CPU each request cost (user and system, the client's processes), which moves less than the wall
clock where other work shares the machine. batchgpt's bytecode is compiled first, as an
installed package's is (the libraries' is, by pip).
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
from servers import free_port, nginx, start_mock_tls, start_nginx, start_server  # noqa: E402  (the other benches' too)

ROOT = Path(__file__).resolve().parents[1]
TLS = ROOT / "tests" / "tls"  # a test CA's certificate for 127.0.0.1 and localhost (tests/test_tls.py)
os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(ROOT.parent / "shared" / "tiktoken"))
MODEL = "gpt-4o-mini"
KEY = "sk-bench-not-a-real-key"

BARE = """
import asyncio, json, ssl, sys
import aiohttp
base_url, n, concurrency, key, model, ca = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:]
async def go():
    semaphore = asyncio.Semaphore(concurrency)
    headers = {"Authorization": f"Bearer {key}"}
    trusting = ssl.create_default_context(cafile=ca) if ca else True
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency, ssl=trusting)) as session:
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
import asyncio, ssl, sys
from openai import AsyncOpenAI, DefaultAsyncHttpxClient
base_url, n, concurrency, key, model, ca = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:]
async def go():
    http = DefaultAsyncHttpxClient(verify=ssl.create_default_context(cafile=ca)) if ca else None
    client = AsyncOpenAI(base_url=base_url, api_key=key, max_retries=0, http_client=http)
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


def timed(args: list[str], env: dict[str, str] | None = None) -> float:
    return cpu_timed(args, env)[0]


def cpu_timed(args: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """The seconds from the command's start to its exit, and the CPU seconds (user and system) of
    its processes: on a machine other work shares, the CPU a request costs moves less than the wall."""
    import resource

    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run(args, check=True, env=env, stdout=subprocess.DEVNULL)
    wall, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def write_job(path: Path, n: int) -> None:
    with path.open("w") as handle:
        for i in range(n):
            line = {"type": "chat", "id": f"i{i}", "prompt": f"Question {i}: what is {i} plus {i}?", "max_tokens": 30}
            handle.write(json.dumps(line) + "\n")


ASYNCIO = "import sys; sys.modules['uvloop'] = None; from batchgpt.cli import main; main()"  # no uvloop to find


def batchgpt_args(
    base_url: str,
    n: int,
    concurrency: int,
    work: Path,
    ca: str = "",
    profile: Path | None = None,
    cli: str = "batchgpt",
) -> list[str]:
    """`batchgpt run` of `n` chat items; `cli` "asyncio": on asyncio's own loop, as where uvloop is
    not installed."""
    job = work / f"bench-{n}.jsonl"
    if not job.exists():
        write_job(job, n)
    state = Path(tempfile.mkdtemp(dir=work))
    command = ["batchgpt"] if cli == "batchgpt" else [sys.executable, "-c", ASYNCIO]
    if profile:  # main(), not the console script: its os._exit would end the process before cProfile writes
        runner = work / "profiled.py"
        runner.write_text("from batchgpt.cli import main\n\nmain()\n")
        command = [sys.executable, "-m", "cProfile", "-o", str(profile), str(runner)]
    return [
        *command, "run", str(job), "--base-url", base_url, "--model", MODEL, "--concurrency", str(concurrency),
        "--state", str(state), "--out", str(state / "r.csv"), "--report", str(state / "rep.csv"), "--no-progress",
        *(["--ca-bundle", ca] if ca else []),
    ]  # fmt: skip


def round_of(
    base_url: str, n: int, concurrency: int, work: Path, ca: str, loops: list[str]
) -> dict[str, tuple[float, float]]:
    """Each client's requests per second and CPU µs per request, one after the other; `ca`: the CA
    an https server is trusted by; `loops`: batchgpt's runs, as the command line ("batchgpt") or
    on "asyncio"."""
    env = {**os.environ, "OPENAI_API_KEY": KEY}
    client = [base_url, str(n), str(concurrency), KEY, MODEL, ca]
    runs = {"bare aiohttp": [sys.executable, "-c", BARE, *client]}
    for loop in loops:
        runs["batchgpt" if loop == "batchgpt" else "batchgpt, asyncio"] = batchgpt_args(
            base_url, n, concurrency, work, ca, cli=loop
        )
    runs["openai SDK"] = [sys.executable, "-c", SDK, *client]
    figures = {}
    for name, args in runs.items():
        wall, cpu = cpu_timed(args, env)
        figures[name] = (n / wall, cpu / n * 1e6)
    return figures


def profile(base_url: str, n: int, concurrency: int, work: Path, ca: str) -> None:
    import pstats

    out = work / "batchgpt.prof"
    timed(batchgpt_args(base_url, n, concurrency, work, ca, out), {**os.environ, "OPENAI_API_KEY": KEY})
    print(f"\nwhere batchgpt's time goes over {base_url[:5].rstrip(':')} ({n:,} requests, cProfile, tottime):")
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


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=20000, help="requests per client per round")
    parser.add_argument("-c", "--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--transport", choices=["http", "https", "both"], default="both")
    parser.add_argument("--port", type=int, default=0, help="the server's http port (default: a free one)")
    parser.add_argument("--tls-port", type=int, default=0, help="the server's https port (default: a free one)")
    parser.add_argument("--cert", type=Path, default=TLS / "server.pem", help="the https certificate, for 127.0.0.1")
    parser.add_argument("--key", type=Path, default=TLS / "server.key", help="its private key")
    parser.add_argument("--ca", type=Path, default=TLS / "ca.pem", help="the CA certificate the clients trust")
    parser.add_argument(
        "--batchgpt-loop",
        choices=["cli", "asyncio", "both"],
        default="cli",
        help="batchgpt as the command line runs (on uvloop where installed), on asyncio's own loop, or both",
    )
    parser.add_argument("--mock", action="store_true", help="the mock server even where nginx is installed")
    parser.add_argument("--profile", action="store_true", help="then profile one batchgpt run (the last transport)")
    parser.add_argument("--in-flight", action="store_true", help="1,000 in flight against 1 s latency instead")
    return parser.parse_args()


def start(args: argparse.Namespace, work: Path) -> tuple[dict[str, str], list[subprocess.Popen]]:
    """The server(s) for the transports asked for: each transport's base URL, and the processes."""
    port, tls_port = args.port or free_port(), args.tls_port or free_port()
    cert, key = args.cert.resolve(), args.key.resolve()
    urls = {"http": f"http://127.0.0.1:{port}/v1", "https": f"https://127.0.0.1:{tls_port}/v1"}
    if args.transport != "both":
        urls = {args.transport: urls[args.transport]}
    binary = None if args.mock else nginx()
    print(f"server: {'nginx' if binary else 'batchgpt mock-server'}; " + ", ".join(urls.values()), flush=True)
    if binary:
        return urls, [start_nginx(binary, port, work, (tls_port, cert, key) if "https" in urls else None)]
    servers = [start_server(port)] if "http" in urls else []
    return urls, servers + ([start_mock_tls(tls_port, cert, key)] if "https" in urls else [])


def loop_of_the_cli() -> str:
    try:
        import uvloop
    except ImportError:
        return "asyncio's own loop (uvloop is not installed)"
    return f"uvloop {uvloop.__version__}"


def report(rounds: dict[str, list[dict[str, tuple[float, float]]]], args: argparse.Namespace) -> None:
    """Each client's best round (req/s) and its least CPU per request, as ratios to the bare loop's
    over the same transport (above 1: faster, or less CPU), and batchgpt's ratio round by round."""
    print(f"\n{args.n:,} requests, concurrency {args.concurrency}, whole processes, best of {args.rounds} rounds:")
    for transport, figures in rounds.items():
        rate = {name: max(f[name][0] for f in figures) for name in figures[0]}
        cpu = {name: min(f[name][1] for f in figures) for name in figures[0]}
        print(f"  {transport}:{'req/s':>22}   vs bare   CPU µs/req   bare's CPU / its")
        for name in rate:
            faster, leaner = rate[name] / rate["bare aiohttp"], cpu["bare aiohttp"] / cpu[name]
            print(f"    {name:<17} {rate[name]:8,.0f}   {faster:5.2f}x   {cpu[name]:8,.0f}   {leaner:10.2f}x")
        ours = "batchgpt" if "batchgpt" in rate else "batchgpt, asyncio"
        by_round = sorted(f[ours][0] / f["bare aiohttp"][0] for f in figures)
        print(f"    {ours} / bare aiohttp by round: {', '.join(f'{r:.2f}x' for r in by_round)}", end="")
        print(f"; {ours} / openai SDK: {rate[ours] / rate['openai SDK']:.1f}x")


def main() -> None:
    args = arguments()
    compile_batchgpt()
    if args.in_flight:
        in_flight(args.n if args.n != 20000 else 30000, 1000, 1.0)
        return
    loops = {"cli": ["batchgpt"], "asyncio": ["asyncio"], "both": ["batchgpt", "asyncio"]}[args.batchgpt_loop]
    print(f"batchgpt's loop as the command line runs it: {loop_of_the_cli()}; the bare loop's and the SDK's: asyncio's")
    rounds: dict[str, list[dict[str, tuple[float, float]]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        urls, servers = start(args, work)
        try:
            for round_ in range(1, args.rounds + 1):
                for transport, base_url in urls.items():
                    ca = str(args.ca.resolve()) if transport == "https" else ""
                    figures = round_of(base_url, args.n, args.concurrency, work, ca, loops)
                    said = ", ".join(f"{k} {rate:,.0f} req/s ({cpu:,.0f} µs CPU)" for k, (rate, cpu) in figures.items())
                    print(f"round {round_} {transport}: {said}", flush=True)
                    rounds.setdefault(transport, []).append(figures)
            if args.profile:
                transport, base_url = list(urls.items())[-1]
                profile(
                    base_url, args.n, args.concurrency, work, str(args.ca.resolve()) if transport == "https" else ""
                )
        finally:
            for server in servers:
                server.terminate()
                server.wait()
    report(rounds, args)


if __name__ == "__main__":
    main()
