"""Batch API mode: a job's requests sent as batch files, and collected by later runs.

A run in batch mode (from cron, say every 30 minutes) first settles the job's open batches. A
batch whose creation no run saw answered is looked for in the provider's list (find.py);
when the list cannot tell whether it exists, nothing is created for it and the run exits 7 until
the user adopts it or declares it lost (resolve.py). The others are polled, and those that
ended are collected (collect.py): each line is recorded for the item it matches, priced at
the batch price, expired lines, transient errors and items no line mentions go into the next
file, permanent errors are `error` rows with the server's message, and a batch that failed
validation names the item behind each line it refused. Then the run walks the job: answered
items are kept, items waiting in open batches stay there, and the rest are written into files
(per provider, endpoint and model, within the API's limits). Each file is held against the
budget, recorded as an intent, uploaded, and made a batch, each step committed before the next.
Speech and transcription, which the Batch API does not take, are sent online by the online
backend the wiring hands in (`BatchParts.online`): this package never imports it.

While batches are open the run exits 5 and writes no results; when every item is final the
lifecycle writes the results and report as for an online run. Nothing here marks an item failed because polling
or the network failed: those are tried again on the next poll or run.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from batchgpt import jobs
from batchgpt.backend import Backend, Ending
from batchgpt.client import Answer, Client
from batchgpt.clientcache import Clients
from batchgpt.estimate import Estimator
from batchgpt.jobs import Job
from batchgpt.media import MediaWriter
from batchgpt.pricing import Pricing
from batchgpt.progress import Progress
from batchgpt.providers import identity
from batchgpt.records import Failure, Provider, shown_url
from batchgpt.retry import decide, wait_cap
from batchgpt.runoptions import RunOptions
from batchgpt.store import ANSWERED, SEND, BatchRow, RunTotals, Store
from batchgpt.words import count

from .collect import Collecting
from .settle import Settling
from .states import ENDED, EXIT_SUBMITTED, EXIT_UNRESOLVED, FOLDER
from .submit import Submitting, skipped

CALL_RETRIES = 2  # retries of a call to the files and batches routes (a batch's creation is never retried)
__all__ = ["FOLDER", "BatchParts", "BatchRunner"]


@dataclass(frozen=True)
class BatchParts:
    """A batch-mode run's collaborators: prices (at the batch price), the worst-case estimator,
    where generated files go, the online backend for items the Batch API does not take (given the
    job, with the budget left), and how to wait between retries and polls."""

    pricing: Pricing
    estimator: Estimator
    media: MediaWriter
    online: Callable[[Job], Backend]
    sleep: Callable[[float], Awaitable[None]] | None = None  # None: asyncio.sleep
    draw: Callable[[], float] = random.random


class BatchRunner(Settling, Submitting, Collecting):
    """One batch-mode run of a job: settle, submit (or cancel), and wait if asked."""

    def __init__(
        self,
        job: Job,
        store: Store,
        run_id: int,
        options: RunOptions,
        cancel: bool,
        progress: Progress,
        folder: Path,
        parts: BatchParts,
    ):
        self.job = job
        self.store = store
        self.run_id = run_id
        self.options = options
        self.cancel = cancel
        self.progress = progress
        self.folder = folder
        self.parts = parts
        self.pricing = parts.pricing
        self.estimator = parts.estimator
        self.media = parts.media
        self.began = time.time()  # answers older than this were reused, not collected by this run
        # In batch mode the budget caps what the job's batches may cost together: the worst case
        # of each batch still open is held from the start, and a collected one is settled at cost.
        self.budget_left = None if job.budget_usd is None else job.budget_usd - _held(store, job.name)
        self.stopped: str | None = None
        self.interrupted = False  # the caller asked the run to stop: no more polls
        self.online_stopped: str | None = None
        self.online_items = 0
        self.sent = 0  # calls to the API: uploads, creations, polls, downloads, and online requests
        self.refused = 0
        self.retries: Counter[str] = Counter()
        self.resubmitted: Counter[str] = Counter()  # item id: times sent again in this run
        self.held: set[str] = set()  # items not sent again in this run (a cancel left them, or a failed batch)
        self.collected: set[str] = set()  # items answered by batches this run collected (not "reused")
        self._walked = False  # the job was walked once: later walks count nothing twice
        self.stuck: set[str] = set()  # intents no provider of the job can reach now: not waited for
        self.unresolved: list[BatchRow] = []  # intents whose creation the provider cannot confirm or deny
        self.stale: set[str] = set()  # items answered for a request the job no longer has (never kept by a cancel)
        self.halt: str | None = None  # why waiting cannot go on (a refused key, no answer for long)
        self.reached = time.monotonic()  # when the Batch API last answered
        self._providers = (job.provider, *(t.provider for t in job.tasks))
        self._online: Backend | None = None  # sending the items the Batch API does not take
        self._pause: asyncio.Future[None] | None = None  # the wait for the next poll

    @property
    def mode(self) -> str:
        return "cancel" if self.cancel else "batch"

    def stop(self, reason: str) -> None:
        """Submit nothing more and poll no more; an online part in flight stops as an online run does."""
        self.interrupted = True
        if self.stopped is None:
            self.stopped = reason
        if self._online is not None:
            self._online.stop(reason)
        if self._pause is not None:
            self._pause.cancel()

    def wind_up(self, hard: bool) -> None:
        """Nothing is left unrecorded: every walk of the job enrols each item it meets."""

    def ending(self, totals: RunTotals) -> Ending:
        """Stopped while any item is skipped; pending (exit 5) while batches are open, or 7 while
        one cannot be placed."""
        open_batches = self.store.batches(self.job.name, open_only=True)
        # skipped items (a cancel, a budget, answers that kept expiring) are not answered: as
        # online, that is a stop, never "every item ok"
        stopped = self.stopped or self.online_stopped or self.halt
        if stopped is None and totals.skipped:
            stopped = f"not answered (skipped): {count(totals.skipped, 'item')}; a later run submits them again"
        pending = None
        if self.unresolved:  # before 5: waiting alone never settles it
            stopped, pending = self.unresolved_stop(), EXIT_UNRESOLVED
        elif open_batches or totals.submitted:
            pending = EXIT_SUBMITTED
        fields = {
            "reused": self.store.answered_before(self.job.name, self.run_id, self.began),
            "unknown_models": tuple(self.pricing.unknown),
            "mode": "batch",
            "submitted": totals.submitted,
            "batches_open": len(open_batches),
            "online_items": self.online_items,
        }
        return Ending(stopped, pending, fields)

    async def run(self) -> None:
        async with AsyncExitStack() as stack:
            self._clients = Clients(stack, self.job.limits.timeout, 4, self.job.limits.max_answer_mb)
            await self.settle()
            if self.cancel:
                await self.cancel_open()
            else:
                await self.submit()
                await self.send_online()
            while (self.options.wait or self.cancel) and not self.halt and not self.interrupted and self._reachable():
                self._show_open()
                await self._wait(self.options.poll)
                if self.interrupted:
                    break
                await self.settle()
                silent = time.monotonic() - self.reached
                if silent > self.job.limits.patience:
                    self.halt = f"no answer from the Batch API for {silent:.0f} s (limits.patience); run again later"
                if self.cancel:
                    await self.cancel_open()  # a batch found again after a crash is cancelled too
                else:
                    await self.submit()
            self._show_open()

    # ------------------------------------------------------------------ calls

    def _reachable(self) -> list[BatchRow]:
        return [row for row in self.store.batches(self.job.name, open_only=True) if row.intent not in self.stuck]

    def _provider_for(self, row: BatchRow) -> Provider | None:
        """The job's provider a batch was submitted with: the same key and settings, at the URL it
        went to (a run given --base-url may have sent it elsewhere than the job says). None when
        the job no longer has that key and those settings: no other key is sent there."""
        same = [p for p in self._providers if identity(p) == row.provider]
        exact = next((p for p in same if shown_url(p.base_url) == row.base_url), None)
        return exact or (replace(same[0], base_url=row.base_url) if same else None)

    async def _client(self, provider: Provider) -> Client:
        return await self._clients.get(provider)

    async def _wait(self, seconds: float) -> None:
        """Sleep, waking early when the run is asked to stop."""
        self._pause = asyncio.ensure_future((self.parts.sleep or asyncio.sleep)(seconds))
        try:
            await asyncio.wait({self._pause})
        finally:
            self._pause.cancel()
            self._pause = None

    async def _call(
        self, client: Client, method: str, path: str, retry: bool = True, **kwargs: Any
    ) -> Answer | Failure:
        """One API call, retried up to CALL_RETRIES times when the retry policy (retry.py) says the
        failure is transient and `retry` (never for a batch's creation: one that failed may exist
        all the same), after the wait the server asked for (retry-after) or the policy's backoff."""
        tries = 0
        while True:
            tries += 1
            self.sent += 1
            outcome = await client.call(method, path, **kwargs)
            if isinstance(outcome, Answer):
                self.reached = time.monotonic()
                return outcome
            if outcome.status in (401, 403) or outcome.out_of_quota:  # only the user can mend these
                self.halt = f"the Batch API refused the key: {outcome.describe()}"
            verdict = decide(
                outcome, tries, tries - 1, CALL_RETRIES, self.parts.draw(), cap=wait_cap(self.job.limits.patience)
            )
            if not retry or not verdict.retry or tries > CALL_RETRIES or self.interrupted:
                return outcome
            self.retries[outcome.reason] += 1
            self.refused += outcome.rate_limited or outcome.overloaded
            await self._wait(verdict.delay)

    async def send_online(self) -> None:
        """The items the Batch API does not take (speech, transcription), sent as an online run does."""
        if not self.online_items:
            return
        self.progress.log(
            "batch", message=f"sent online: {count(self.online_items, 'item')} the Batch API does not take"
        )
        job = self.job if self.budget_left is None else replace(self.job, budget_usd=max(self.budget_left, 1e-12))
        self._online = online = self.parts.online(job)
        if self.interrupted:
            online.stop(self.stopped or "stopped")
        try:
            await online.run()
        finally:
            self._online = None
        self.sent += online.sent
        self.refused += online.refused
        self.retries.update(online.retries)
        self.online_stopped = online.stopped

    # ------------------------------------------------------------------ cancelling

    async def cancel_open(self) -> None:
        """Cancel every open batch of the job; items not yet submitted are not submitted."""
        for row in self._reachable():
            provider = self._provider_for(row)
            if provider is None or row.batch_id is None or row.status in ENDED | {"cancelling"}:
                continue
            client = await self._client(provider)
            answer = await self._call(client, "POST", f"/batches/{row.batch_id}/cancel")
            if isinstance(answer, Failure):
                self._warn(row, f"could not be cancelled ({answer.describe()}); trying again at the next poll")
            else:
                self._update(row, answer.data)
                self.progress.log("batch", message=f"cancelling batch {row.batch_id}")
        if not self._walked:
            self._walked = True
            for request in jobs.requests(self.job):
                # a cancel never undoes an answer (but one for the item's old request is no answer to it)
                if request.id not in self.stale and self.store.answer(self.job.name, request.id) is not None:
                    self.store.keep(self.run_id, self.job.name, request)
                    continue
                found = self.store.enrol(self.run_id, self.job.name, request, self.options.retry_failed)
                if found == SEND:
                    self.store.record(self.job.name, skipped(request, "not sent: the job was cancelled"))
                elif found == ANSWERED and request.id not in self.collected:
                    self.progress.reuse()
            self.store.commit()

    # ------------------------------------------------------------------ telling

    def _show_open(self) -> None:
        for row in self.store.batches(self.job.name, open_only=True):
            self.progress.log("batch", message=f"batch {row.batch_id or '(not created)'}: {row.status} {_counts(row)}")


def _held(store: Store, job: str) -> float:
    """The worst cases of the job's open batches: spent, as far as a budget can tell (one whose
    worst case is unknown stops submitting, see _afford)."""
    return sum(row.worst_usd or 0.0 for row in store.batches(job, open_only=True))


def _counts(row: BatchRow) -> str:
    counts = json.loads(row.counts) if row.counts else {}
    total = counts.get("total") or row.lines
    return f"{counts.get('completed', 0):,}/{total:,} done, {counts.get('failed', 0):,} failed"
