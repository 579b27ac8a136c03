"""Ctrl-C in the command line's own process (entry, process.py): the first one interrupts
(KeyboardInterrupt, which a command turns into exit 130), and the ones after it are ignored while
the process ends. A run asks its own handlers to stop it meanwhile (loop.py), and once it has
recorded how it ended, nothing is left to interrupt: Ctrl-C pressed again and again reached the way
out and cut it short with a traceback, or with click's "Aborted!" (issue 24, item 17)."""

from __future__ import annotations

import signal
import threading
from types import FrameType


def install() -> None:
    """Interrupt once, from now on (the process's main thread only: signals are its own)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, interrupt_once)


def interrupt_once(number: int, frame: FrameType | None) -> None:
    ignore()
    raise KeyboardInterrupt


def ignore() -> None:
    """No more interrupts: what is left is the way out."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
