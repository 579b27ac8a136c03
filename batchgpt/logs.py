"""How batchgpt's log lines look: readable text with a time, or one JSON object a line.

The library only logs, through `logging.getLogger(__name__)` under the `batchgpt` logger; the CLI
picks the look here, once, for every line: progress, pace, warnings, retries and stops alike, so
`--log-format json` gives a log shipper nothing but JSON. A run's events carry their name and
fields in the record (`extra`), so the JSON keeps them as fields and the text can word them.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Any, TextIO

ROOT = "batchgpt"


def event(logger: logging.Logger, name: str, message: str, job: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one event of a run: `message` for people, `name` and `fields` for machines."""
    logger.log(level, message, extra={"event": name, "job": job, "fields": fields})


class TextFormatter(logging.Formatter):
    """`2026-11-26 02:00:07 nightly: 120/2,000 done ...`; warnings and errors say so."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
        level = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
        return f"{stamp} {getattr(record, 'job', 'batchgpt')}: {level}{record.getMessage()}"


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
        return json.dumps(line, ensure_ascii=False, default=str)


class Redact(logging.Filter):
    """Defence in depth (the client strips secrets from what servers send): no line shows the
    value of a variable whose name says it holds a key or a token."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        for name, value in os.environ.items():
            if value and len(value) >= 8 and ("KEY" in name or "TOKEN" in name) and value in message:
                message = message.replace(value, "****")
        record.msg, record.args = message, ()
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
    """Send batchgpt's log lines to `stream` (stderr by default) in the chosen format."""
    handler: logging.Handler = _Stderr() if stream is None else logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(Redact())
    logger = logging.getLogger(ROOT)
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False
