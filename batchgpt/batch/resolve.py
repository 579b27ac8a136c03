"""Settling by hand a batch whose creation the provider cannot confirm or deny (batchfind.py):
`batchgpt batches JOB --adopt INTENT=BATCH_ID` says which batch it is, `--lost INTENT` that
there is none. Until then a run creates nothing for the intent and exits 7, so its items are
never paid for twice.

Both act on the job's open batches in the store, under the job's lock, and call no API: the
next run polls an adopted batch (and gives it up if it carries another intent or another input
file), and submits a lost one's items again.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from batchgpt.errors import StateError, UsageError
from batchgpt.jobs import load
from batchgpt.store import DB_NAME, BatchRow, JobLock, Store
from batchgpt.words import count

ADOPTED, LOST = "adopted", "lost"  # the batch statuses these commands write


def resolve(state_dir: Path, job: Path, adopt: Sequence[str], lost: Sequence[str]) -> list[str]:
    """Apply each INTENT=BATCH_ID of `adopt` and each INTENT of `lost` to JOB's open batches; what
    was done, a line each. An intent may be given by its first characters, as long as one fits."""
    if not (state_dir / DB_NAME).is_file():
        raise StateError(f"no run state in {state_dir.absolute()}: name the job file, or its state folder with --state")
    name = load(job).name if job.exists() else job.stem
    with JobLock(state_dir, name):
        store = Store(state_dir)
        try:
            return [_adopt(store, name, pair) for pair in adopt] + [_lose(store, name, intent) for intent in lost]
        finally:
            store.close()


def _adopt(store: Store, job: str, pair: str) -> str:
    intent, equals, batch_id = (part.strip() for part in pair.partition("="))
    if not equals or not batch_id or any(c.isspace() for c in batch_id):
        raise UsageError(f"--adopt {pair!r}: write INTENT=BATCH_ID, as the run's warning shows it")
    row = _open(store, job, intent, "--adopt")
    if row.batch_id is not None:
        raise UsageError(f"--adopt: intent {row.intent} has batch {row.batch_id} already; nothing to adopt")
    store.update_batch(row.intent, batch_id=batch_id, status=ADOPTED)
    return (
        f"intent {row.intent}: adopted batch {batch_id}; the next run polls it and collects it (or gives it "
        "up, and submits its items again, if it was made for another intent or from another file)"
    )


def _lose(store: Store, job: str, intent: str) -> str:
    row = _open(store, job, intent, "--lost")
    error = "not answered: its batch was declared lost (batchgpt batches --lost); a later run submits it again"
    released = store.release(row.intent, "skipped", error, transient=True)
    store.update_batch(row.intent, status=LOST, collected=True, message=error)
    running = f"; if batch {row.batch_id} runs after all, it is paid for and not collected" if row.batch_id else ""
    return f"intent {row.intent}: declared lost; the next run submits its {count(released, 'item')} again{running}"


def _open(store: Store, job: str, intent: str, option: str) -> BatchRow:
    """The job's one open batch whose intent begins with `intent`."""
    rows = [row for row in store.batches(job, open_only=True) if intent and row.intent.startswith(intent)]
    if len(rows) == 1:
        return rows[0]
    fits = "no open batch of job" if not rows else f"{count(len(rows), 'open batch')} of job"
    raise UsageError(
        f"{option}: {fits} {job!r} has an intent beginning {intent!r}; `batchgpt batches JOB` lists them, "
        "and the run's warning names the intent in full"
    )
