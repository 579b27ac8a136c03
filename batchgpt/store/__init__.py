"""The run state in SQLite (see store.py): the names other layers import from `batchgpt.store`."""

from .store import (
    ANSWERED,
    DB_NAME,
    MIGRATIONS,
    SEND,
    STATE_DIR,
    VECTOR,
    WAITING,
    BatchRow,
    JobLock,
    RunInfo,
    RunTotals,
    Store,
    WaitingItem,
    decode_output,
    endpoint_of,
    endpoints,
)

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
