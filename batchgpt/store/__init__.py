"""The run state in SQLite. `Store` (store.py) is the one object other layers receive; the names
they import from `batchgpt.store` are gathered here from the modules that own them."""

from .batchrows import BatchRow, WaitingItem
from .encoding import VECTOR, decode_output
from .endpoint import endpoint_of, endpoints
from .items import ANSWERED, SEND, WAITING
from .lock import DB_NAME, STATE_DIR, JobLock
from .runs import RunInfo, RunTotals
from .schema import MIGRATIONS
from .store import Store

__all__ = [
    "ANSWERED",
    "DB_NAME",
    "MIGRATIONS",
    "SEND",
    "STATE_DIR",
    "VECTOR",
    "WAITING",
    "BatchRow",
    "JobLock",
    "RunInfo",
    "RunTotals",
    "Store",
    "WaitingItem",
    "decode_output",
    "endpoint_of",
    "endpoints",
]
