"""Batch API mode: a job's requests sent as batch files, and collected by later runs.

A run in batch mode (from cron, say every 30 minutes) first settles the job's open batches. A
batch whose creation no run saw answered is looked for in the provider's list (batchfind.py);
when the list cannot tell whether it exists, nothing is created for it and the run exits 7 until
the user adopts it or declares it lost (batchresolve.py). The others are polled, and those that
ended are collected (batchcollect.py): each line is recorded for the item it matches, priced at
the batch price, expired lines, transient errors and items no line mentions go into the next
file, permanent errors are `error` rows with the server's message, and a batch that failed
validation names the item behind each line it refused. Then the run walks the job: answered
items are kept, items waiting in open batches stay there, and the rest are written into files
(per provider, endpoint and model, within the API's limits). Each file is held against the
budget, recorded as an intent, uploaded, and made a batch, each step committed before the next.
Speech and transcription, which the Batch API does not take, are sent online by the engine.

While batches are open the run exits 5 and writes no results; when every item is final it writes
the results and report as an online run does. Nothing here marks an item failed because polling
or the network failed: those are tried again on the next poll or run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import AsyncExitStack
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

from . import aio, files, htmlreport, jobs
from .batchcollect import Collecting, as_json, waiting_in
from .batchfiles import PartFill, PartKey, Splitter, batchable, input_line, line_url
from .batchfind import find
from .batchread import api_counts, as_dict, when
from .client import Answer, Client
from .errors import EXIT_FAILED_ITEMS, EXIT_OK, EXIT_STOPPED, UsageError
from .estimate import Estimator
from .jobs import Job
from .media import MediaWriter, file_stem, media_folder
from .pricing import BATCH_DISCOUNT, Pricing
from .progress import Progress
from .providers import api_key, identity
from .records import Failure, Provider, Request, Result, shown_url
from .retry import stops_run
from .runner import (
    Engine,
    RunOptions,
    Summary,
    announce,
    locked_store,
    row_for,
    run_job,
    summarize,
    system_messages,
)
from .store import ANSWERED, SEND, WAITING, BatchRow, Store, endpoints
from .tables import export
from .words import command, count

log = logging.getLogger(__name__)

EXIT_SUBMITTED = 5  # batches are open: run again to collect them
EXIT_UNRESOLVED = 7  # whether a batch was created cannot be told: `batchgpt batches JOB --adopt/--lost`
ENDED = frozenset({"completed", "failed", "expired", "cancelled"})
COMPLETION_WINDOW = "24h"
RETRY_DELAYS = (1.0, 4.0)  # seconds before each retry of a call to the files and batches routes
COLLECT_LINES = 200_000  # items collected per walk of the job (memory grows with them, ~1 KB each)
FOLDER = "batches"  # under the state directory: files being written, uploaded or downloaded
HELD = "held"  # an item this run does not send (cancelled, failed for good here, or out of retries)
# A batch row's status before the API names one: "ready" once its file is uploaded, "creating" from
# just before the creation is sent until it is answered (then a crash leaves it unknown whether the
# batch exists); rows from before "ready" was written say "uploaded", which is as unknown.
READY, CREATING = "ready", "creating"


def batch_worst(estimator: Estimator, request: Request) -> float | None:
    """The most a request can cost in a batch: its online worst case at the model's batch price
    (the larger of its input and output ratios to the online ones), else at half."""
    worst = estimator.worst_cost(request)
    if worst is None:
        return None
    price = estimator.pricing.price(request.model, warn=False)
    if price is None or price.batch_input is None or not price.input or not price.output:
        return worst * BATCH_DISCOUNT
    return worst * max(price.batch_input / price.input, (price.batch_output or 0.0) / price.output)


PLAN_COLUMNS = ["file", "endpoint", "model", "requests", "inputs", "megabytes", "cost_usd_max"]


def plan(job: Job) -> tuple[list[dict[str, Any]], int]:
    """How a batch-mode run would split the job into files (nothing sent), each with its worst
    case at the batch price (what a budget holds before uploading it), and how many items it
    would send online instead."""
    splitter = Splitter()
    estimator = Estimator(Pricing(job.pricing, job.provider.base_url))
    rows: dict[int, dict[str, Any]] = {}
    online = 0
    for request in jobs.requests(job):
        if not batchable(request):
            online += 1
            continue
        key, fill, _ = splitter.add(request, len(input_line(request)), batch_worst(estimator, request))
        rows[fill.number] = {
            "file": fill.number,
            "endpoint": line_url(key.provider, key.endpoint),
            "model": key.model,
            "requests": fill.lines,
            "inputs": fill.inputs,
            "megabytes": round(fill.bytes / 10**6, 2),
            "cost_usd_max": None if fill.worst_usd is None else round(fill.worst_usd, 6),
        }
    return [rows[n] for n in sorted(rows)], online


def run_any(job: Job, options: RunOptions) -> Summary:
    """Run a job as its mode says: online, or through the Batch API."""
    return run_batch(job, options) if job.mode == "batch" else run_job(job, options)


def run_batch(job: Job, options: RunOptions, cancel: bool = False) -> Summary:
    """Settle the job's batches, submit what is left, and write the results once every item is
    final. `cancel`: cancel the job's open batches instead, and collect what they finished."""
    with locked_store(job, options) as (store, state_dir):
        if options.fresh:
            if store.batches(job.name, open_only=True):
                raise UsageError(
                    f"job {job.name!r} has open batches: --fresh would lose their answers; "
                    f"`{command('cancel', job.path or job.name, state=options.state_dir)}` first"
                )
            store.forget(job.name)
        return _run_locked(job, options, cancel, store, state_dir)


def _run_locked(job: Job, options: RunOptions, cancel: bool, store: Store, state_dir: Path) -> Summary:
    started = time.monotonic()
    began = time.time()
    run_id = store.begin_run(job.name, str(job.path) if job.path else None, endpoints(t.provider for t in job.tasks))
    if job.ids is not None:
        store.expect(job.name, job.ids)
    bar = options.progress if options.progress is not None else sys.stderr.isatty() and options.log_format == "text"
    with Progress(job.name, job.count, bar) as progress:
        announce(progress, job, run_id, "cancel" if cancel else "batch")
        runner = BatchRunner(job, store, run_id, options, cancel, progress, state_dir / FOLDER / file_stem(job.name))
        aio.run(runner.run())
        store.count_sent(run_id, runner.sent, runner.retries)
        store.abandon(job.name, run_id, f"not answered: {runner.stopped or 'the run ended'}")
        open_batches = store.batches(job.name, open_only=True)
        totals = store.totals(job.name, run_id)
        paths = (str(job.results.absolute()), str(job.report.absolute()))
        # skipped items (a cancel, a budget, answers that kept expiring) are not answered: as
        # online, that is a stop, never "every item ok"
        stopped = runner.stopped or runner.online_stopped or runner.halt
        if stopped is None and totals.skipped:
            stopped = f"not answered (skipped): {count(totals.skipped, 'item')}; a later run submits them again"
        if runner.unresolved:  # before 5: waiting alone never settles it
            stopped = runner.unresolved_stop()
            exit_code = EXIT_UNRESOLVED
        elif open_batches or totals.submitted:
            exit_code = EXIT_SUBMITTED
        else:
            export(store, job.name, run_id, job.results, job.report)
            exit_code = EXIT_STOPPED if stopped else EXIT_FAILED_ITEMS if totals.failed else EXIT_OK
        store.finish_run(run_id, exit_code, stopped, *paths, totals)
        if exit_code not in (EXIT_SUBMITTED, EXIT_UNRESOLVED):
            htmlreport.write_beside(store, run_id, job.report)
    return summarize(
        job,
        run_id,
        totals,
        started,
        sent=runner.sent,
        reused=store.answered_before(job.name, run_id, began),
        refused=runner.refused,
        exit_code=exit_code,
        state_dir=store.directory,
        stopped=stopped,
        unknown_models=tuple(runner.pricing.unknown),
        exported=exit_code not in (EXIT_SUBMITTED, EXIT_UNRESOLVED),
        mode="batch",
        submitted=totals.submitted,
        batches_open=len(open_batches),
        online_items=runner.online_items,
    )


class BatchRunner(Collecting):
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
    ):
        self.job = job
        self.store = store
        self.run_id = run_id
        self.options = options
        self.cancel = cancel
        self.progress = progress
        self.folder = folder
        self.pricing = Pricing(job.pricing, job.provider.base_url)
        self.estimator = Estimator(self.pricing)
        self.media = MediaWriter(media_folder(job.results, job.name))
        # In batch mode the budget caps what the job's batches may cost together: the worst case
        # of each batch still open is held from the start, and a collected one is settled at cost.
        self.budget_left = None if job.budget_usd is None else job.budget_usd - _held(store, job.name)
        self.stopped: str | None = None
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
        self._clients: dict[Provider, Client] = {}
        self._providers = (job.provider, *(t.provider for t in job.tasks))

    async def run(self) -> None:
        async with AsyncExitStack() as stack:
            self._stack = stack
            await self.settle()
            if self.cancel:
                await self.cancel_open()
            else:
                await self.submit()
                await self.send_online()
            while (self.options.wait or self.cancel) and not self.halt and self._reachable():
                self._show_open()
                await asyncio.sleep(self.options.poll)
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
        if provider not in self._clients:
            client = Client(provider, api_key(provider), self.job.limits.timeout, 4)
            self._clients[provider] = await self._stack.enter_async_context(client)
        return self._clients[provider]

    async def _call(
        self, client: Client, method: str, path: str, retry: bool = True, **kwargs: Any
    ) -> Answer | Failure:
        """One API call, retried a few times (with backoff) when the network or the server failed
        and `retry` (never for a batch's creation: one that failed may exist all the same)."""
        for delay in (*RETRY_DELAYS, None):
            self.sent += 1
            outcome = await client.call(method, path, **kwargs)
            if isinstance(outcome, Answer):
                self.reached = time.monotonic()
                return outcome
            if outcome.status in (401, 403) or outcome.out_of_quota:  # only the user can mend these
                self.halt = f"the Batch API refused the key: {outcome.describe()}"
            if not outcome.transient or outcome.status == 401:
                return outcome
            if not retry or delay is None:
                return outcome
            self.retries[outcome.cause if outcome.status is None else f"HTTP {outcome.status}"] += 1
            self.refused += outcome.rate_limited or outcome.overloaded
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ settling

    async def settle(self) -> None:
        """Find, poll and collect the job's open batches (walking the job once for all that ended)."""
        ended: list[tuple[Client, BatchRow, dict[str, Any]]] = []
        for row in self._reachable():
            if row.status == "intent":  # the run stopped before the file was uploaded: nothing was created
                self._give_up(row, "not submitted: the run that wrote its file stopped before uploading it")
                continue
            provider = self._provider_for(row)
            if provider is None:
                self.stuck.add(row.intent)
                self._warn(
                    row,
                    f"the job no longer has the key and provider settings it was submitted with (to {row.base_url}): "
                    "restore them to collect it; it stays open",
                )
                continue
            client = await self._client(provider)
            if row.batch_id is None:
                found = await self._uncreated(client, row)
                if found is None:
                    continue
                row = found
            assert row.batch_id is not None
            answer = await self._call(client, "GET", f"/batches/{row.batch_id}")
            if isinstance(answer, Failure):
                if answer.status == 404 and answer.type:  # the API's own "no such batch"
                    self._give_up(row, f"not answered: the provider no longer knows batch {row.batch_id}")
                else:
                    self._warn(row, f"could not be polled ({answer.describe()}); the next poll tries again")
                continue
            if not _ours(answer.data, row):
                self._give_up(
                    row,
                    f"not answered: batch {row.batch_id} is now another batch (it carries another intent or input "
                    "file: the server reused its id, or --adopt named the wrong one)",
                )
                continue
            row = self._update(row, answer.data)
            if row.status in ENDED:
                ended.append((client, row, answer.data))
        for group in groups_of(ended, COLLECT_LINES):
            waiting = {row.intent: waiting_in(self.store, row) for _, row, _ in group}
            requests = self._requests({item for items in waiting.values() for item in items})
            for client, row, data in group:
                await self._collect(client, row, data, waiting[row.intent], requests)

    async def _uncreated(self, client: Client, row: BatchRow) -> BatchRow | None:
        """An intent with no batch id: its batch when the provider's list shows it; else, when
        the list proves there is none (or its creation was never sent), it is created (or given
        up by a cancel) and None is returned, as it is while the list cannot tell."""
        if row.status != READY:
            lookup = await find(
                lambda query: self._call(client, "GET", "/batches", params=query), row, self._witnesses(row)
            )
            if lookup.batch is not None:
                log.info("found batch %s, which an earlier run created but did not record", lookup.batch.get("id"))
                return self._update(row, lookup.batch)
            if lookup.later is not None:
                self._warn(row, f"could not look up whether its batch was created ({lookup.later}); trying again later")
                return None
            if lookup.unresolved is not None:
                self._unresolved(row, lookup.unresolved)
                return None
        if self.cancel:
            self._give_up(row, "not submitted: the job was cancelled")
        else:
            await self._create(client, row)
        return None

    def _witnesses(self, row: BatchRow) -> dict[str, BatchRow]:
        """The batches this store knows were created where `row` went, by id."""
        return {
            other.batch_id: other
            for other in self.store.batches()
            if other.batch_id and other.provider == row.provider and other.base_url == row.base_url
        }

    def _unresolved(self, row: BatchRow, why: str) -> None:
        """Nothing is created for an intent the provider cannot place: the user says what it became."""
        self.stuck.add(row.intent)
        self.unresolved.append(row)
        job = self.job.path or self.job.name
        adopt = command("batches", job, "--adopt", f"{row.intent}=BATCH_ID", state=self.options.state_dir)
        lost = command("batches", job, "--lost", row.intent, state=self.options.state_dir)
        self._warn(
            row,
            f"cannot tell whether it was created: {why}. Nothing is submitted for its "
            f"{count(row.lines, 'item')} until you say. Its input file is {row.file_id} ({row.endpoint}, "
            f"{row.model}, uploaded {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(row.created))}): look "
            f"for a batch made from it (the provider's dashboard or its list of batches) and run `{adopt}` "
            f"with its id, or, if there is none, `{lost}` (the next run submits its items again)",
        )

    def unresolved_stop(self) -> str:
        """Why the run exits 7, for its summary."""
        job = self.job.path or self.job.name
        return (
            f"cannot tell whether {count(len(self.unresolved), 'batch')} of this job "
            f"{'was' if len(self.unresolved) == 1 else 'were'} created (see the warning): "
            f"`{command('batches', job, '--adopt', 'INTENT=BATCH_ID', state=self.options.state_dir)}` or "
            f"`{command('batches', job, '--lost', 'INTENT', state=self.options.state_dir)}` settles it"
        )

    def _update(self, row: BatchRow, data: dict[str, Any]) -> BatchRow:
        """Keep what the API says of the batch."""
        counts = api_counts(data)
        given = data.get("status")
        status = given if isinstance(given, str) and given else row.status
        keys = ("completed_at", "failed_at", "expired_at", "cancelled_at", "expires_at")
        ends = next((when(data[k]) for k in keys if when(data.get(k))), None)
        ident = data.get("id")
        row = replace(
            row,
            batch_id=ident if isinstance(ident, str) and ident else row.batch_id,
            status=status,
            counts=as_json(counts) if counts else row.counts,
            ends=ends,
        )
        self.store.update_batch(row.intent, batch_id=row.batch_id, status=status, counts=row.counts, ends=ends)
        return row

    # ------------------------------------------------------------------ submitting

    async def submit(self) -> None:
        """Walk the job; every batchable item not answered and not waiting goes into a file."""
        again = self._walked
        if again:
            self.store.walk_again(self.job.name, self.run_id)
        self._walked = True
        self._sweep()
        splitter = Splitter()
        writing: dict[int, _PartFile] = {}
        for request in jobs.requests(self.job):
            if not batchable(request):
                self.online_items += not again
                continue
            if request.turns:  # a conversation: its next turn, once the one before it is answered
                turn = self._next_turn(request, again)
                if turn is None:
                    continue
                request = turn
            elif self._enrolled(request, again) != SEND:
                continue
            line = input_line(request)
            key, fill, full = splitter.add(request, len(line), self._worst(request))
            if full is not None:
                await self._send(key, full, writing.pop(full.number))
            if fill.number not in writing:
                writing[fill.number] = _PartFile(self.folder / f"{self.run_id}-{fill.number}.jsonl")
            writing[fill.number].write(line)
        for key, fill in list(splitter.open.items()):
            await self._send(key, fill, writing.pop(fill.number))
        self.store.commit()

    def _enrolled(self, request: Request, again: bool) -> str:
        """Enrol a request in this run: SEND (it goes into a file now), ANSWERED, WAITING (in an
        open batch), or HELD (not sent by this run). `again`: on a later walk of this run."""
        item = request.id
        if item in self.held or (again and self.resubmitted[item] >= self.job.limits.max_retries):
            self.store.keep(self.run_id, self.job.name, request)
            return HELD
        found = self.store.enrol(self.run_id, self.job.name, request, self.options.retry_failed)
        if found != SEND:
            if found == ANSWERED and not again and request.id not in self.collected:
                self.progress.reuse()
            return found
        if again:
            self.resubmitted[item] += 1
        if self.stopped:
            self.store.record(self.job.name, _skipped(request, f"not submitted: {self.stopped}"))
            return HELD
        return SEND

    def _next_turn(self, conversation: Request, again: bool) -> Request | None:
        """The conversation's first turn not answered yet, when it is to be sent now; the turns
        before it are enrolled as answered (their stored answers make its history), and after a
        turn that failed for good the rest are `skipped`. A batch round answers one turn a chain."""
        history = system_messages(conversation)
        broken: str | None = None
        for n, said in enumerate(conversation.turns, 1):
            turn = jobs.turn_request(conversation, n, history)
            if broken:
                self.store.skip(self.run_id, self.job.name, turn, f"not sent: {broken}")
                continue
            state = self._enrolled(turn, again)
            if state == SEND:
                return turn
            if state == WAITING:
                return None
            answer = self.store.answer(self.job.name, turn.id)
            if answer is None:  # failed, or not answered and held by this run: a later run resumes here
                broken = f"turn {n} did not succeed"
                continue
            history += [{"role": "user", "content": said}, {"role": "assistant", "content": str(answer)}]
        return None

    def _worst(self, request: Request) -> float | None:
        if self.budget_left is None:
            return None  # not worked out (it costs a token count a request): a later budget cannot count it
        return batch_worst(self.estimator, request)

    async def _send(self, key: PartKey, fill: PartFill, part: _PartFile) -> None:
        """Hold a full file against the budget, record the intent, upload it and create its batch."""
        path = part.close()
        try:
            if self.stopped or not self._afford(key, fill):
                for item in fill.ids:
                    self.store.record(self.job.name, _skipped_id(item, f"not submitted: {self.stopped}"))
                return
            provider = key.provider
            row = BatchRow(
                intent=uuid.uuid4().hex,
                job=self.job.name,
                run_id=self.run_id,
                part=fill.number,
                base_url=shown_url(provider.base_url),
                provider=identity(provider),
                endpoint=key.endpoint,
                model=key.model,
                lines=fill.lines,
                bytes=fill.bytes,
                worst_usd=fill.worst_usd,
                created=time.time(),
            )
            self.store.add_batch(row, fill.ids)
            client = await self._client(provider)
            uploaded = await self._call(client, "POST", "/files", upload=("file", path, {"purpose": "batch"}))
            if isinstance(uploaded, Failure):
                self._not_submitted(row, uploaded, "upload its file")
                return
            row = replace(row, file_id=str(uploaded.data.get("id")), status=READY)
            self.store.update_batch(row.intent, file_id=row.file_id, status=row.status)
            await self._create(client, row)
        finally:
            path.unlink(missing_ok=True)

    def _afford(self, key: PartKey, fill: PartFill) -> bool:
        if self.budget_left is None:
            return True
        unbounded = [row for row in self.store.batches(self.job.name, open_only=True) if row.worst_usd is None]
        if unbounded:
            self.stopped = (
                f"the budget cannot be kept while batch {unbounded[0].batch_id or unbounded[0].intent[:8]} is open: "
                "it was submitted without a budget (or for a model whose cost cannot be bounded), so its worst "
                "case is unknown; a run after it is collected submits the rest"
            )
            return False
        if fill.worst_usd is None:
            self.stopped = (
                f"the cost of model {key.model!r} cannot be bounded (no price or no max_tokens), so the "
                "budget cannot be kept: add it under `pricing:` or set max_tokens"
            )
            return False
        if fill.worst_usd > self.budget_left + 1e-12:
            limit = self.job.budget_usd or 0.0
            self.stopped = (
                f"budget of ${limit:.6g} reached: ${limit - self.budget_left:.6f} "
                f"is held by files submitted, and the next file of {count(fill.lines, 'request')} could cost "
                f"${fill.worst_usd:.6f}"
            )
            return False
        self.budget_left -= fill.worst_usd
        return True

    async def _create(self, client: Client, row: BatchRow) -> None:
        assert row.file_id is not None
        self.store.update_batch(row.intent, status=CREATING)  # from now on the batch may exist
        created = await self._call(
            client,
            "POST",
            "/batches",
            retry=False,
            json_body={
                "input_file_id": row.file_id,
                "endpoint": line_url(client.provider, row.endpoint),
                "completion_window": COMPLETION_WINDOW,
                "metadata": {
                    "batchgpt_job": self.job.name[:512],
                    "batchgpt_run": str(row.run_id),
                    "batchgpt_part": str(row.part),
                    "batchgpt_intent": row.intent,
                },
            },
        )
        if isinstance(created, Failure):
            if created.status == 429 or (created.cause == "connection" and not created.maybe_billed):
                self.store.update_batch(row.intent, status=READY)  # refused, or never reached the server
                self._warn(row, f"could not be created ({created.describe()}); the next run tries again")
            elif created.transient:  # maybe created all the same: the next run looks for it by its intent
                self._warn(row, f"could not be created ({created.describe()}); the next run looks for it first")
            else:
                self._not_submitted(row, created, "create its batch")
            return
        if not isinstance(created.data.get("id"), str) or not created.data["id"]:
            self._warn(row, "was created without an id in the answer; the next run looks for it by its intent")
            return
        row = self._update(row, created.data)
        self.progress.log(
            "batch",
            message=f"submitted batch {row.batch_id}: {count(row.lines, 'request')} to {row.endpoint} ({row.model})",
        )

    def _not_submitted(self, row: BatchRow, failure: Failure, step: str) -> None:
        """Uploading or creating failed, and nothing was created. The network or the server
        failing stops submitting (items `skipped`, for a later run); a file the server no longer
        has (404) is submitted again by a later run; a refusal of this file (another 4xx: a model
        the Batch API does not take, say) fails its items, and the other files go on."""
        if failure.transient or stops_run(failure):
            self.stopped = f"could not {step} ({failure.describe()}); a later run submits its items"
            self._give_up(row, f"not submitted: {self.stopped}")
        elif failure.status == 404:
            self._give_up(row, f"not submitted: could not {step} ({failure.describe()}); a later run submits them")
        else:
            error = f"the Batch API refused its file: {failure.describe()}"
            self._warn(row, error)
            self.store.release(row.intent, "error", error, transient=False)
            self.store.update_batch(row.intent, status="refused", collected=True, message=error)
            if self.budget_left is not None:
                self.budget_left += row.worst_usd or 0.0

    def _sweep(self) -> None:
        """Files a killed run of this job left behind in its folder (the job's lock is held)."""
        for stale in self.folder.glob("*.jsonl"):
            stale.unlink(missing_ok=True)

    async def send_online(self) -> None:
        """The items the Batch API does not take (speech, transcription), sent as an online run does."""
        if not self.online_items:
            return
        self.progress.log(
            "batch", message=f"sent online: {count(self.online_items, 'item')} the Batch API does not take"
        )
        job = self.job if self.budget_left is None else replace(self.job, budget_usd=max(self.budget_left, 1e-12))
        engine = Engine(job, self.store, self.run_id, self.options, self.progress, only=_online)
        await engine.main()
        self.sent += engine.sent
        self.refused += engine.refused
        self.retries.update(engine.retries)
        self.online_stopped = engine.stopped

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
                    self.store.record(self.job.name, _skipped(request, "not sent: the job was cancelled"))
                elif found == ANSWERED and request.id not in self.collected:
                    self.progress.reuse()
            self.store.commit()

    # ------------------------------------------------------------------ telling

    def _show_open(self) -> None:
        for row in self.store.batches(self.job.name, open_only=True):
            self.progress.log("batch", message=f"batch {row.batch_id or '(not created)'}: {row.status} {_counts(row)}")


class _PartFile:
    """A batch input file being written: whole on disk (renamed into place) once closed."""

    def __init__(self, path: Path):
        self.path = path
        self._writer = files.atomic_write(path, "wb")
        self._handle: IO[Any] = self._writer.__enter__()

    def write(self, line: bytes) -> None:
        self._handle.write(line)

    def close(self) -> Path:
        self._writer.__exit__(None, None, None)
        return self.path


def _online(request: Request) -> bool:
    return not batchable(request)


def _skipped(request: Request, error: str) -> Result:
    return row_for(request, "skipped", error=error)


def _skipped_id(item: str, error: str) -> Result:
    """A skipped result for an item known by its id alone (the store keeps its other fields)."""
    return Result(0, item, "", "", "", "skipped", error=error)


def groups_of(ended: list[tuple[Any, BatchRow, Any]], limit: int) -> Iterator[list[Any]]:
    """Ended batches (entries holding their rows) in groups of at most `limit` lines, in order (a
    bigger batch alone): one walk of the job collects a group, and memory holds one group's
    items, however many batches end at once."""
    group: list[Any] = []
    lines = 0
    for entry in ended:
        if group and lines + entry[1].lines > limit:
            yield group
            group, lines = [], 0
        group.append(entry)
        lines += entry[1].lines
    if group:
        yield group


def _held(store: Store, job: str) -> float:
    """The worst cases of the job's open batches: spent, as far as a budget can tell (one whose
    worst case is unknown stops submitting, see _afford)."""
    return sum(row.worst_usd or 0.0 for row in store.batches(job, open_only=True))


def _counts(row: BatchRow) -> str:
    counts = json.loads(row.counts) if row.counts else {}
    total = counts.get("total") or row.lines
    return f"{counts.get('completed', 0):,}/{total:,} done, {counts.get('failed', 0):,} failed"


def _ours(data: dict[str, Any], row: BatchRow) -> bool:
    """A polled batch is the intent's, as far as it says: the same intent, the same input file."""
    intent = as_dict(data.get("metadata")).get("batchgpt_intent", row.intent)
    made_from = data.get("input_file_id")
    return bool(intent == row.intent and (not made_from or not row.file_id or made_from == row.file_id))
