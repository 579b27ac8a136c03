"""What the command line owns of the process: the console script's way in and out."""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading

from batchgpt.errors import EXIT_SIGINT

from . import interrupts
from .group import main


def entry() -> None:
    """The console script: main(), then out of the process without the interpreter's teardown,
    which frees every object one by one: `bench/startup.py --exit` measured it at 15 ms of CPU of
    `--help`'s 0.10 s and 86 ms of a dry run's 0.56 s (30 ms after a 20,000-item run). What an exit
    must do is still done: exit handlers (logging's flushes), and the output flushed. A process
    that still has threads ends the usual way, so that they finish (a daemon thread, such as a
    stalled tokenizer download, tokens.py, would not: it ends with the process either way).

    Ctrl-C interrupts once (interrupts.py): pressed again and again, it reached this way out and
    cut it short with a traceback."""
    interrupts.install()
    try:
        code = _main()
        interrupts.ignore()
    except KeyboardInterrupt:  # outside a command, which says it itself (group.py)
        print("batchgpt: interrupted", file=sys.stderr)
        code = EXIT_SIGINT
    if code is not None and not isinstance(code, int):  # sys.exit("message"), as Python says it
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):  # None where the descriptor was closed (`>&-`, a daemon)
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (`| head`), a closed stream
            if stream is not None:
                stream.flush()
    os._exit(code or 0)


def _main() -> object:
    """main()'s exit code (click ends every command with SystemExit)."""
    try:
        main()
    except SystemExit as exc:
        if any(not thread.daemon for thread in threading.enumerate() if thread is not threading.main_thread()):
            raise
        return exc.code
    return 0  # pragma: no cover - click's standalone mode always exits
