"""The Batch API backend: a job's requests written into batch files, submitted, polled and
collected by later runs (runner.py and its parts: settle.py, submit.py, collect.py; the files'
lines in files.py and read.py; finding a batch again in find.py, and the user's word on one in
resolve.py). The lifecycle (batchgpt/lifecycle.py) wires it and runs it."""

from .states import EXIT_SUBMITTED, EXIT_UNRESOLVED

__all__ = ["EXIT_SUBMITTED", "EXIT_UNRESOLVED"]
