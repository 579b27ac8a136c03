"""Sending requests with an attached image: how fast bodies go out, and how much memory it takes.

    python bench/attachments.py                  # 100 requests, a 1 MB image each, 8 at once
    python bench/attachments.py -n 400 --mb 5 --concurrency 16

Each request is a chat request whose image part holds a marker (attachments.py); `Client.send`
streams it with the file's base64 in place. Every combination runs in a process of its own, so
each peak RSS is its own (ru_maxrss only grows):
- transport: `http` (http1's pool) and `https` (aiohttp over TLS, with tests/tls's certificate);
- files: `distinct` (each request its own image: read and encoded once per request) and `shared`
  (one image for all: encoded twice, then served from the encoding cache, encoded.py);
- `whole`, for comparison: the same bodies built whole in memory before sending (b"".join of
  encoded.Body.chunks), as a sender that does not stream would.
The server is a bare HTTP/1.1 sink in another process (reads each body, answers a small JSON), so
neither its CPU nor its memory is counted. MB/s is of bodies sent (base64 included); peak RSS is the
sending process's, and "over start" its growth from before the first request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(ROOT.parent / "shared" / "tiktoken"))
sys.path.insert(0, str(ROOT))

from batchgpt.attachments import Attachment, marker, sent_size  # noqa: E402
from batchgpt.client import Client  # noqa: E402
from batchgpt.encoded import Encodings  # noqa: E402
from batchgpt.records import Pack, Provider, Request, dump  # noqa: E402

KEY = "sk-bench-not-a-real-key"
TLS = ROOT / "tests" / "tls"
ANSWER = json.dumps({"choices": [{"message": {"role": "assistant", "content": "ok"}}], "usage": {}}).encode()


# ---------------------------------------------------------------- the sink (its own process)


async def sink(tls: bool) -> None:
    context = None
    if tls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(TLS / "server.pem", TLS / "server.key")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                left = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                while left:
                    left -= len(await reader.read(min(left, 1 << 18)))
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(ANSWER)
                )
                writer.write(ANSWER)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context, limit=1 << 20)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


# ---------------------------------------------------------------- the sender (one process a run)


def request(n: int, photo: Path) -> Request:
    part = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{marker(0)}", "detail": "low"}}
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": [{"type": "text", "text": f"#{n}"}, part]}],
    }
    return Request(
        seq=n,
        id=f"i{n}",
        task="t",
        type="chat",
        model="gpt-4o-mini",
        endpoint="/chat/completions",
        body=body,
        payload=dump(body),
        hash=f"h{n}",
        provider=Provider(),
        attachments=(Attachment("image", str(photo), "image/png", "low", size=photo.stat().st_size),),
    )


async def send_all(base_url: str, requests: list[Request], concurrency: int, whole: bool) -> int:
    provider = Provider(base_url=base_url, ca_bundle=str(TLS / "ca.pem"))  # the test CA, trusted as a user's
    async with Client(provider, KEY, 120, concurrency) as client:
        queue = list(reversed(requests))

        async def worker() -> None:
            while queue:
                r = queue.pop()
                if whole:  # built whole first, as a sender that does not stream would
                    data = b"".join(Encodings().body(r.payload, r.attachments).chunks())
                    body = json.loads(data)
                    r = Request(**{**r.__dict__, "body": body, "payload": data, "attachments": ()})
                outcome = await client.send(Pack.of(r))
                assert getattr(outcome, "status", None) == 200, outcome

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return sum(sent_size(r.payload, r.attachments) for r in requests)


def sender(args: argparse.Namespace) -> None:
    folder = Path(args.folder)
    photos = sorted(folder.glob("p*.png"))
    requests = [request(n, photos[0] if args.files == "shared" else photos[n]) for n in range(args.n)]
    base_url = f"{args.transport}://127.0.0.1:{args.port}/v1"
    import aiohttp  # noqa: F401  (imported before the start is measured: its memory is no body's)

    start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    sent = asyncio.run(send_all(base_url, requests, args.concurrency, args.whole))
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(
        json.dumps(
            {
                "mb_s": sent / 10**6 / seconds,
                "seconds": seconds,
                "peak_mib": peak / 1024,
                "over_mib": (peak - start) / 1024,
            }
        )
    )


# ---------------------------------------------------------------- the whole bench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=100, help="requests")
    parser.add_argument("--mb", type=float, default=1.0, help="each image's size (MB)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--sink", choices=["http", "https"], help=argparse.SUPPRESS)
    parser.add_argument("--send", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--transport", default="http", help=argparse.SUPPRESS)
    parser.add_argument("--files", default="distinct", help=argparse.SUPPRESS)
    parser.add_argument("--whole", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        asyncio.run(sink(args.sink == "https"))
    elif args.send:
        sender(args)
    else:
        bench(args)


def bench(args: argparse.Namespace) -> None:
    size = int(args.mb * 10**6)
    with tempfile.TemporaryDirectory() as folder:
        for n in range(args.n):
            (Path(folder) / f"p{n:06d}.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(size - 8))
        print(f"{args.n} requests, a {args.mb:g} MB image each, {args.concurrency} at once")
        for transport in ("http", "https"):
            sink_process = subprocess.Popen(
                [sys.executable, __file__, "--sink", transport], stdout=subprocess.PIPE, text=True
            )
            assert sink_process.stdout is not None
            port = sink_process.stdout.readline().strip()
            try:
                for files, whole in (("distinct", False), ("shared", False), ("distinct", True)):
                    command = [sys.executable, __file__, "--send", "--transport", transport, "--files", files]
                    command += ["--port", port, "--folder", folder, "-n", str(args.n)]
                    command += ["--concurrency", str(args.concurrency)] + ["--whole"] * whole
                    done = subprocess.run(command, capture_output=True, text=True, check=True)
                    figures = json.loads(done.stdout.strip().splitlines()[-1])
                    name = f"{transport:5} {files:8} {'built whole' if whole else 'streamed':11}"
                    print(
                        f"{name} {figures['mb_s']:7.1f} MB/s  {figures['seconds']:6.2f} s  "
                        f"peak RSS {figures['peak_mib']:6.1f} MiB ({figures['over_mib']:+.1f} over start)"
                    )
            finally:
                sink_process.terminate()
                sink_process.wait()


if __name__ == "__main__":
    main()
