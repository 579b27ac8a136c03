"""Shared fixtures: the mock server on 127.0.0.1, a job-file writer and a CLI runner.

Tests need no internet: every request goes to batchgpt's own mock server on a free local
port, and tiktoken reads its encodings from its cache (TIKTOKEN_CACHE_DIR, else ../shared/tiktoken
beside the checkout, else tiktoken's default). Where the cache lacks them, the suite still passes:
counts are approximate, as for a user offline, and a test whose subject is exact counts asks for
the `exact_encodings` fixture, which skips it saying why (fails it under BATCHGPT_REQUIRE_ENCODINGS,
as .ci/run sets).
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

_SHARED = Path(__file__).resolve().parents[2] / "shared" / "tiktoken"
if "TIKTOKEN_CACHE_DIR" not in os.environ and _SHARED.is_dir():
    os.environ["TIKTOKEN_CACHE_DIR"] = str(_SHARED)
# The price cache (pricing.py) of this test session, never the user's ~/.cache
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="batchgpt-test-cache-")

from batchgpt import tokens  # noqa: E402
from batchgpt.cli import main  # noqa: E402
from batchgpt.mock import Config, Fault, MockServer  # noqa: E402

# Decided once, in the first process (xdist's workers and the tests' subprocesses inherit it): a
# download that cannot happen is not waited for, by any test or any batchgpt the tests start.
_MISSING = "BATCHGPT_TEST_ENCODINGS_MISSING"
if _MISSING not in os.environ:
    os.environ[_MISSING] = " ".join(name for name in tokens.ENCODINGS if not tokens.cached(name))
    if os.environ[_MISSING]:
        os.environ.setdefault("BATCHGPT_TOKENIZER_TIMEOUT", "0")

SECRET = "sk-test-SECRET-0123456789abcdef"


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto` (pyproject.toml's addopts): two workers a core, since many tests mostly wait (on
    a child process, a server's latency, a signal's grace period) and another can compute meanwhile."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return 2 * cores


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # COLUMNS too: a terminal's width would fit the CLI's tables to it (tests that want one set it)
    for name in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "HTTPS_PROXY",
        "HTTP_PROXY",
        "https_proxy",
        "http_proxy",
        "COLUMNS",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def exact_encodings() -> None:
    """For a test whose subject is exact token counts: tiktoken's encodings must be in its cache."""
    missing = os.environ[_MISSING].split()
    if missing:
        why = (
            f"exact counts need tiktoken's {' and '.join(missing)}, and its cache ({tokens.cache_dir() or 'off'}) "
            "lacks them: fill it once with `python -m batchgpt.tokens` (online), or set TIKTOKEN_CACHE_DIR"
        )
        if os.environ.get("BATCHGPT_REQUIRE_ENCODINGS"):
            pytest.fail(why)
        pytest.skip(why)


@pytest.fixture
def server() -> Iterator[MockServer]:
    mock = MockServer(Config(api_key=SECRET, hang_s=5)).start()
    if os.environ[_MISSING]:  # the mock's counter says so now, not inside a test's captured log
        for name in tokens.ENCODINGS:
            mock.counter.encoding(name)
    yield mock
    mock.stop()


def faults(server: MockServer, *specs: str) -> None:
    server.config.faults = [Fault.parse(s) for s in specs]


@pytest.fixture
def write_job(tmp_path: Path):
    def write(job: dict[str, Any], name: str = "job.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(job, allow_unicode=True, sort_keys=False), encoding="utf-8")
        return path

    return write


@pytest.fixture
def cli(server: MockServer, monkeypatch: pytest.MonkeyPatch):
    """Run the real CLI in-process against the mock server with the secret key set."""
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)

    def invoke(*args: str, base_url: bool = True) -> Any:
        extra = ["--base-url", server.base_url] if base_url and "run" in args else []
        return CliRunner().invoke(main, [*args, *extra], catch_exceptions=False)

    return invoke


def store_dump(directory: Path) -> str:
    """Everything in a state store as text, to look for secrets in it."""
    db = sqlite3.connect(directory / "state.db")
    try:
        return "\n".join(repr(row) for table in ("runs", "items") for row in db.execute(f"SELECT * FROM {table}"))
    finally:
        db.close()


def chat_job(prompts: list[str], **extra: Any) -> dict[str, Any]:
    job: dict[str, Any] = {
        "name": "t",
        "defaults": {"model": "gpt-4o-mini"},
        "limits": {"concurrency": 4, "timeout": 2, "max_retries": 4},
        "tasks": [{"type": "chat", "items": [{"id": f"p{i}", "prompt": p} for i, p in enumerate(prompts)]}],
    }
    job.update(extra)
    return job


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A real redis-server on a free loopback port (.ci/run installs it where it is missing)."""
    import shutil
    import socket
    import subprocess
    import time

    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("BATCHGPT_REQUIRE_REDIS"):
            pytest.fail("redis-server is not on PATH (apt-get install redis-server)")
        pytest.skip("redis-server is not on PATH (apt-get install redis-server)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(10)
