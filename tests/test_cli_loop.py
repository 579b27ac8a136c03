"""The event loop: uvloop's where it is installed, asyncio's own where it is not; and a CLI that
answers --help and --version without importing the heavy libraries the run needs."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from batchgpt.cli import loop as aio

HEAVY = ("aiohttp", "pandas", "pyarrow", "tiktoken", "jsonschema", "rich", "batchgpt.lifecycle", "batchgpt.api")


async def _loop_kind() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_runs_on_uvloop_when_it_is_installed():
    pytest.importorskip("uvloop")
    assert aio.run(_loop_kind()).startswith("uvloop")


def test_falls_back_to_asyncio_without_uvloop(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as if it were not installed (Windows)
    assert aio.run(_loop_kind()).startswith("asyncio")


def _loaded_after(code: str) -> set[str]:
    shown = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return {name for name in HEAVY if name in shown}


HELP = """
import sys
from batchgpt.cli import main
sys.argv = ["batchgpt", "--help"]
try:
    main()
except SystemExit:
    pass
"""


def test_import_and_help_load_nothing_heavy():
    assert _loaded_after("import batchgpt") == set()
    assert _loaded_after(HELP) == set()


def test_the_python_api_is_there_on_first_use():
    assert _loaded_after("import batchgpt\nassert callable(batchgpt.run) and callable(batchgpt.validate)") >= {
        "batchgpt.api"
    }
    import batchgpt

    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        batchgpt.nothing  # noqa: B018


def test_a_run_collects_garbage_seldom_and_puts_the_collector_back():
    import gc

    before = gc.get_threshold()

    async def during() -> tuple[int, int]:
        return gc.get_threshold()[0], gc.get_freeze_count()

    threshold, frozen = aio.run(during())
    assert threshold == aio.YOUNG_THRESHOLD and frozen > 0
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


LATE_CTRL_C = """
import asyncio, os, signal, threading, time
from batchgpt.cli.loop import run_stoppable

def ctrl_c_while_the_loop_shuts_down():
    time.sleep(0.3)  # the run has ended: the loop is waiting for this thread, its executor's
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.3)

async def start(stop):
    asyncio.get_running_loop().run_in_executor(None, ctrl_c_while_the_loop_shuts_down)
    return "recorded"

print(run_stoppable(start))
print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)  # as it found it
"""


def test_a_ctrl_c_while_the_loop_shuts_down_after_the_run_is_no_traceback():
    """Issue 24, item 17: Ctrl-C pressed again and again reached the loop's shutdown, after the run's
    handlers were gone, and ended the process with KeyboardInterrupt's traceback."""
    done = subprocess.run([sys.executable, "-c", LATE_CTRL_C], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert done.stdout.split() == ["recorded", "True"]
