"""The servers the throughput benches send to, each in a process of its own: `batchgpt
mock-server` (over https too, with a certificate), and nginx answering every POST with one fixed
chat completion (no Python on the server side, so each client's own cost shows), on an http port
and, with a certificate, on an https one."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

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


MOCK_TLS = """
import ssl, sys, threading
from batchgpt.mock import Config, MockServer
port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)
MockServer(Config(tls=context, record=False)).start(port)
threading.Event().wait()
"""


def start_mock_tls(port: int, cert: Path, key: Path) -> subprocess.Popen:
    """The mock server over https with `cert`, in its own process (the command has no TLS option)."""
    server = subprocess.Popen(
        [sys.executable, "-c", MOCK_TLS, str(port), str(cert), str(key)], stderr=subprocess.DEVNULL
    )
    return _wait_for(port, server)


def nginx() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)


def start_nginx(binary: str, port: int, work: Path, tls: tuple[int, Path, Path] | None = None) -> subprocess.Popen:
    """nginx in the foreground with one worker answering every POST with the same completion, on
    `port` and, with `tls` (a port, a certificate and its key), over https on another."""
    body = json.dumps(ANSWER).replace("\\", "\\\\").replace("'", "\\'")
    listen_tls = ""
    if tls:
        tls_port, cert, key = tls
        listen_tls = f"listen 127.0.0.1:{tls_port} ssl; ssl_certificate {cert}; ssl_certificate_key {key};"
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
                    {listen_tls}
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
    return _wait_for(tls[0], _wait_for(port, server)) if tls else _wait_for(port, server)
