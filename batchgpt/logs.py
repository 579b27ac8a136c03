"""How batchgpt's log lines look: readable text with a time, or one JSON object a line.

The library only logs, through `logging.getLogger(__name__)` under the `batchgpt` logger; the CLI
picks the look here, once, for every line: progress, pace, warnings, retries and stops alike, so
`--log-format json` gives a log shipper nothing but JSON. A run's events carry their name and
fields in the record (`extra`), so the JSON keeps them as fields and the text can word them.

What others write to stderr takes the same look: other libraries' warnings (asyncio's, say),
Python's warnings, and under JSON a crash's traceback; the CLI sends its own lines (the summary,
problems, errors) through here too. Every line names the job once the CLI knows it (JOB).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import sys
import time
import warnings
from contextvars import ContextVar
from types import TracebackType
from typing import Any, TextIO

from .redact import Secrets

ROOT = "batchgpt"
JOB: ContextVar[str | None] = ContextVar("batchgpt_job", default=None)  # the job every line names
_others: logging.Handler | None = None  # ours on the root logger, for other libraries' warnings


def event(
    logger: logging.Logger, name: str, message: str, job: str | None = None, level: int = logging.INFO, **fields: Any
) -> None:
    """Log one event of a run: `message` for people, `name` and `fields` for machines."""
    logger.log(level, message, extra={"event": name, "job": job, "fields": fields})


class TextFormatter(logging.Formatter):
    """`2026-11-26 02:00:07 nightly: 120/2,000 done ...`; warnings and errors say so."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
        level = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
        line = f"{stamp} {getattr(record, 'job', None) or 'batchgpt'}: {level}{record.getMessage()}"
        return f"{line}\n{record.exc_text}" if record.exc_text else line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": round(record.created, 3),
            "level": record.levelname.lower(),
            "event": getattr(record, "event", "log"),
            "job": getattr(record, "job", None),
            "message": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_text:  # Redact formatted it
            line["traceback"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=str)


class Redact(logging.Filter):
    """Defence in depth (the client strips secrets from what servers send): no line shows the
    value of a variable whose name says it holds a key or a token, in any encoding redact.py knows."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self.redacted(record.getMessage()), ()
        if record.exc_info and not record.exc_text:  # a traceback's messages may hold them too
            record.exc_text = self.redacted(logging.Formatter().formatException(record.exc_info))
        return True

    @staticmethod
    def redacted(text: str) -> str:
        found = tuple(
            value for name, value in os.environ.items() if len(value) >= 8 and _SECRET_NAME.search(name.upper())
        )
        return _secrets(found).text(text)


_SECRET_NAME = re.compile("KEY|TOKEN|SECRET|PASSWORD")


@functools.lru_cache(maxsize=4)
def _secrets(values: tuple[str, ...]) -> Secrets:
    return Secrets(values)  # once for the environment's secrets, not for every line


class NameJob(logging.Filter):
    """A line logged without a job (a library's warning, a message of the CLI's) names the job the
    CLI is running, so a log that several jobs share says whose every line is."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "job", None) is None:
            record.job = JOB.get()
        return True


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]  # typeshed's generic; ours holds any stream
    """Writes to whatever sys.stderr is when a line is logged: a progress bar redirects it, and the
    line then prints above the bar instead of through it."""

    @property  # StreamHandler sets it in __init__; here it is looked up each time
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def setup(verbose: bool = False, log_format: str = "text", stream: TextIO | None = None) -> None:
    """Send batchgpt's log lines, and other libraries' warnings, to `stream` (stderr by default)
    in the chosen format."""
    global _others
    logger = logging.getLogger(ROOT)
    logger.handlers[:] = [_handler(log_format, stream)]
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False
    # Other libraries log through the root logger (asyncio's "Unclosed client session"), and
    # Python's warnings print plain text to stderr unless logging takes them: a JSON log must hold
    # nothing else. Only our handler is replaced, so a host's own handlers stay.
    root = logging.getLogger()
    if _others is not None:
        root.removeHandler(_others)
    _others = _handler(log_format, stream, logging.WARNING)
    root.addHandler(_others)
    # logging.captureWarnings(True) does nothing once called, even when something has replaced
    # warnings.showwarning since: this puts ours back every time.
    warnings.showwarning = _show_warning
    if log_format == "json":
        sys.excepthook = _crash  # a traceback is a JSON line too, its text in `traceback`
    elif sys.excepthook is _crash:
        sys.excepthook = sys.__excepthook__


def _handler(log_format: str, stream: TextIO | None, level: int = logging.NOTSET) -> logging.Handler:
    handler: logging.Handler = _Stderr() if stream is None else logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(Redact())
    handler.addFilter(NameJob())
    handler.setLevel(level)
    return handler


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    text = warnings.formatwarning(message, category, filename, lineno, line).rstrip()
    logging.getLogger("py.warnings").warning("%s", text)


def _crash(kind: type[BaseException], value: BaseException, traceback: TracebackType | None) -> None:
    logging.getLogger(ROOT).critical(
        "crashed: %s: %s (a bug: please report it with this traceback)",
        kind.__name__,
        value,
        exc_info=(kind, value, traceback),
        extra={"event": "crash"},
    )
