"""The engine: stream a job's requests through the store, the limits and the client, with retries.

One producer walks the job in input order and enrols each request in the store (skipping those
already answered); `concurrency` workers send them. A bounded queue between the two keeps memory
flat however long the job. Each answer is committed to the store before it counts as done, and
the results file and report are exported from the store at the end, so they are always whole.
"""
from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import jobs
from .budget import Budget
from .client import Answer, Client
from .estimate import Estimator
from .errors import EXIT_FAILED_ITEMS, EXIT_OK, EXIT_STOPPED, OutputError, UsageError
from .jobs import Job
from .limits import Throttle
from .media import MediaWriter
from .packing import Packer
from .pricing import Pricing
from .progress import Progress
from .records import Pack, Provider, Reply, Request, Result
from .retry import Failure, decide
from .report import REPORT_COLUMNS, report_rows, write_results, write_table
from .store import STATE_DIR, JobLock, Store
from .tasks import TASKS, MalformedReply

log = logging.getLogger("batchgpt")
_YIELD_EVERY = 256  # the producer lets in-flight answers through at least this often
GRACE_S = 10.0  # after SIGINT or SIGTERM, how long requests in flight may take to finish
COMMIT_WINDOW_S = 0.002  # answers arriving this close together share a commit (one alone costs ~13 us)


@dataclass(frozen=True)
class RunOptions:
    state_dir: Path | None = None
    fresh: bool = False  # forget the job's earlier answers (under the job's lock, never under another run)
    retry_failed: bool = False
    progress: bool | None = None  # None: a bar when stderr is a terminal
    log_format: str = "text"


@dataclass(frozen=True)
class Summary:
    run_id: int
    job: str
    items: int
    sent: int
    ok: int
    failed: int
    skipped: int
    reused: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    elapsed_s: float
    exit_code: int
    results: Path
    report: Path
    state_dir: Path
    stopped: str | None = None
    unknown_models: tuple[str, ...] = field(default=())
    exported: bool = True


def api_key(provider: Provider) -> str | None:
    """The key from the provider's variable. The official hosts need one; local servers may not."""
    key = os.environ.get(provider.api_key_env) or None
    official = "api.openai.com" in provider.base_url or provider.kind == "azure"
    if key is None and official:
        raise UsageError(f"no API key: set {provider.api_key_env} (or use --dry-run, which needs none)")
    return key


class Engine:
    def __init__(self, job: Job, store: Store, run_id: int, options: RunOptions, progress: Progress):
        self.job = job
        self.store = store
        self.run_id = run_id
        self.options = options
        self.progress = progress
        self.pricing = Pricing(job.pricing, job.provider.base_url)
        self.estimator = Estimator(self.pricing)
        self.budget = Budget(job.budget_usd) if job.budget_usd is not None else None
        self.media = MediaWriter(job.results.parent / f"{job.name}-media")
        self.throttle = Throttle(job.limits.rpm, job.limits.tpm)
        self.stopped: str | None = None
        self.signal: signal.Signals | None = None
        self.hard_stop = False  # a second signal: no grace, no export
        self.sent = 0
        self._clients: dict[Provider, Client] = {}
        self._random = random.Random()
        self._uncommitted: list[asyncio.Future[None]] = []

    async def _committed(self) -> None:
        """Wait until this worker's answer is committed. Answers written within COMMIT_WINDOW_S
        share one commit; a worker takes no new request before its answer is durable, so a
        killed run re-pays at most one request per worker."""
        future = asyncio.get_running_loop().create_future()
        if not self._uncommitted:
            asyncio.get_running_loop().call_later(COMMIT_WINDOW_S, self._commit)
        self._uncommitted.append(future)
        await future

    def _commit(self) -> None:
        waiting, self._uncommitted = self._uncommitted, []
        self.store.commit()
        for future in waiting:
            if not future.done():  # a worker cancelled by a signal no longer waits
                future.set_result(None)

    def stop(self, reason: str) -> None:
        """No new request starts after this; the ones in flight finish."""
        if self.stopped is None:
            self.stopped = reason
            self.progress.log("stopping", message=f"stopping: {reason}")

    async def main(self) -> None:
        """run() with SIGINT and SIGTERM handled: the first stops new requests and gives those in
        flight GRACE_S seconds; the second (or the end of the grace) cancels them at once."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        signals = (signal.SIGINT, signal.SIGTERM)
        for number in signals:
            loop.add_signal_handler(number, self._on_signal, number, task)
        try:
            await self.run()
        finally:
            for number in signals:
                loop.remove_signal_handler(number)

    def _on_signal(self, number: signal.Signals, task: asyncio.Task[None]) -> None:
        if self.signal is None:
            self.signal = number
            self.stop(f"interrupted by {number.name}")
            self.progress.log("grace", message=f"requests in flight have {GRACE_S:g} s to finish; "
                                               "a second Ctrl-C stops at once")
            asyncio.get_running_loop().call_later(GRACE_S, task.cancel)
        else:
            self.hard_stop = True
            task.cancel()

    async def run(self) -> None:
        limits = self.job.limits
        queue: asyncio.Queue[Pack | None] = asyncio.Queue(maxsize=limits.concurrency * 2)
        async with AsyncExitStack() as stack:
            self._stack = stack
            workers = [asyncio.create_task(self._worker(queue)) for _ in range(limits.concurrency)]
            producer = asyncio.create_task(self._produce(queue, len(workers)))
            tasks = [producer, *workers]
            try:
                # A bug that kills a worker must end the run, not leave the producer waiting forever.
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
                for task in done:
                    task.result()
            finally:
                for task in tasks:  # only a failed or cancelled run leaves any unfinished
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _produce(self, queue: asyncio.Queue[Pack | None], workers: int) -> None:
        packer = Packer(self.estimator.counter)
        for n, request in enumerate(jobs.requests(self.job)):
            if n % _YIELD_EVERY == 0:
                await asyncio.sleep(0)
            if self.stopped:
                self.store.skip(self.run_id, self.job.name, request, f"not sent: {self.stopped}")
            elif self.store.claim(self.run_id, self.job.name, request, self.options.retry_failed):
                for pack in packer.add(request):
                    await queue.put(pack)
            else:
                self.progress.reuse()
        for pack in packer.flush():
            await queue.put(pack)
        for _ in range(workers):
            await queue.put(None)

    async def _worker(self, queue: asyncio.Queue[Pack | None]) -> None:
        while (pack := await queue.get()) is not None:
            if self.stopped:
                for request in pack.requests:
                    self.store.skip(self.run_id, self.job.name, request, f"not sent: {self.stopped}")
                continue
            results = await self._execute(pack)
            for result in results:
                self.store.record(self.job.name, result)
            await self._committed()
            for result in results:
                self.progress.update(result)

    async def _client(self, provider: Provider) -> Client:
        if provider not in self._clients:
            client = Client(provider, api_key(provider), self.job.limits.timeout, self.job.limits.concurrency)
            self._clients[provider] = await self._stack.enter_async_context(client)
        return self._clients[provider]

    def _reserve(self, pack: Pack) -> tuple[int, float] | str:
        """(tokens for the limiter, dollars reserved), or why the pack must not start."""
        if not self.throttle.counts_tokens and self.budget is None:
            return 0, 0.0
        tokens, worst = 0, 0.0
        for request in pack.requests:
            bound = self.estimator.bound(request)
            tokens += bound.prompt.tokens + (request.max_tokens or 0)
            if self.budget is not None:
                cost = self.estimator.worst_cost(request, bound)
                if cost is None:
                    return (f"the cost of model {request.model!r} cannot be bounded (no price or no max_tokens), "
                            f"so the budget cannot be kept: add it under `pricing:` or set max_tokens")
                worst += cost
        if self.budget is not None and not self.budget.reserve(worst):
            return (f"budget of ${self.budget.limit:.4f} reached: ${self.budget.spent:.6f} spent, "
                    f"${self.budget.reserved:.6f} in flight, and the next request could cost ${worst:.6f}")
        return tokens, worst

    async def _execute(self, pack: Pack) -> list[Result]:
        reservation = self._reserve(pack)
        if isinstance(reservation, str):
            self.stop(reservation)
            return [self._outcome(r, "skipped", error=f"not sent: {reservation}") for r in pack.requests]
        tokens, worst = reservation
        results = await self._attempts(pack, tokens)
        if self.budget is not None:
            self.budget.settle(worst, sum(r.cost_usd or 0.0 for r in results))
        return results

    async def _attempts(self, pack: Pack, tokens: int) -> list[Result]:
        first = pack.first
        client = await self._client(first.provider)
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            await self.throttle.acquire(tokens)
            self.sent += 1
            outcome = await client.send(pack)
            if isinstance(outcome, Answer):
                self.throttle.observe(outcome.headers)
                try:
                    return self._answered(pack, outcome, attempt, time.monotonic() - started)
                except MalformedReply as exc:
                    outcome = Failure("malformed", str(exc), outcome.status, headers=outcome.headers)
            verdict = decide(outcome, attempt, self.job.limits.max_retries, self._random.random())
            if verdict.pause_run:
                self.throttle.pause(verdict.pause_run)
            if verdict.stop_run:
                self.stop(verdict.stop_run)
            if not verdict.retry or self.stopped:
                latency = round(time.monotonic() - started, 4)
                return [self._outcome(r, "error", attempts=attempt, latency_s=latency, error=outcome.describe())
                        for r in pack.requests]
            log.debug("retrying %s in %.2fs after %s", first.id, verdict.delay, outcome.describe())
            await asyncio.sleep(verdict.delay)

    def _answered(self, pack: Pack, answer: Answer, attempts: int, latency: float) -> list[Result]:
        kind = TASKS[pack.first.type]
        reply = kind.parse(answer.data)
        results = []
        for request, part in zip(pack.requests, self._split(pack, reply)):
            output = self.media.save(request.id, part.media) if part.media else part.output
            units = part.units if part.units is not None else request.units
            cost = self.pricing.charge(kind.billing, request.model, request.body, part.prompt_tokens,
                                       part.completion_tokens, part.cached_tokens, units)
            results.append(self._outcome(
                request, "ok", output=output, prompt_tokens=part.prompt_tokens,
                completion_tokens=part.completion_tokens, cost_usd=cost, attempts=attempts,
                latency_s=round(latency, 4), cached_tokens=part.cached_tokens,
                reasoning_tokens=part.reasoning_tokens, details=part.details,
                ttft_s=None if part.ttft_s is None else round(part.ttft_s, 4)))
        return results

    def _split(self, pack: Pack, reply: Reply) -> list[Reply]:
        """One reply per item. A packable task answers a list; usage is split in proportion to
        each input's own token count, so the parts add up to what the server reported."""
        if not pack.first.pack_size:  # not a packable task, or a Batch API line with its own input list
            return [reply]
        outputs = reply.output
        if not isinstance(outputs, list) or len(outputs) != len(pack.requests):
            raise MalformedReply(f"{len(pack.requests)} inputs were sent, the answer has "
                                 f"{len(outputs) if isinstance(outputs, list) else 'no'} results")
        details = reply.details if isinstance(reply.details, list) else [None] * len(outputs)
        counts = list(pack.tokens) if any(pack.tokens) else [1] * len(outputs)  # the packer counted embeddings
        shares = _apportion(reply.prompt_tokens, counts)
        return [replace(reply, output=output, details=detail, prompt_tokens=share, completion_tokens=0)
                for output, detail, share in zip(outputs, details, shares)]

    def _outcome(self, request: Request, status: str, **fields: Any) -> Result:
        return Result(seq=request.seq, id=request.id, task=request.task, type=request.type, model=request.model,
                      status=status, **fields)


def _apportion(total: int | None, counts: list[int]) -> list[int | None]:
    """Split `total` in proportion to `counts` (not all zero), in whole tokens that add up to it."""
    if total is None:
        return [None] * len(counts)
    weight = sum(counts)
    shares = [total * c // weight for c in counts]
    shares[-1] += total - sum(shares)
    return shares


def run_job(job: Job, options: RunOptions = RunOptions()) -> Summary:
    """Run a validated job to the end (or to a stop) and write its results and report."""
    for provider in {job.provider, *(t.provider for t in job.tasks)}:
        api_key(provider)  # a missing key is a usage error before anything starts
    state_dir = options.state_dir or job.base_dir / STATE_DIR
    with JobLock(state_dir, job.name):
        store = Store(state_dir)
        if options.fresh:
            store.forget(job.name)
        try:
            return _run_locked(job, options, store, state_dir)
        finally:
            store.close()


def _run_locked(job: Job, options: RunOptions, store: Store, state_dir: Path) -> Summary:
    started = time.monotonic()
    run_id = store.begin_run(job.name, str(job.path) if job.path else None)
    with Progress(job.name, job.count, options.progress, options.log_format) as progress:
        engine = Engine(job, store, run_id, options, progress)
        try:
            asyncio.run(engine.main())
        except asyncio.CancelledError:
            pass  # a signal ended the run; what was answered is committed
        store.count_sent(run_id, engine.sent)
        store.abandon(job.name, run_id, f"not answered: {engine.stopped or 'the run ended'}")
        if not engine.hard_stop:
            try:
                export(store, job.name, run_id, job.results, job.report)
            except OutputError:
                store.finish_run(run_id, OutputError.exit_code, "the results could not be written",
                                 str(job.results.absolute()), str(job.report.absolute()))
                raise
    groups = store.report(job.name, run_id)
    totals = report_rows(groups)[-1]
    failed = totals["failed"]
    if engine.signal is not None:
        exit_code = 128 + int(engine.signal)
    else:
        exit_code = EXIT_STOPPED if engine.stopped else EXIT_FAILED_ITEMS if failed else EXIT_OK
    store.finish_run(run_id, exit_code, engine.stopped, str(job.results.absolute()), str(job.report.absolute()))
    return Summary(
        run_id=run_id, job=job.name, items=totals["requests"], sent=engine.sent, ok=totals["succeeded"],
        failed=failed, skipped=totals["requests"] - totals["succeeded"] - failed, reused=progress.reused,
        prompt_tokens=totals["prompt_tokens"], completion_tokens=totals["completion_tokens"],
        cost_usd=totals["cost_usd"], elapsed_s=time.monotonic() - started, exit_code=exit_code,
        results=job.results, report=job.report, state_dir=state_dir, stopped=engine.stopped,
        unknown_models=tuple(engine.pricing.unknown), exported=not engine.hard_stop,
    )


def export(store: Store, job: str, run_id: int, results: Path, report_path: Path) -> None:
    """Write a run's results and report from the store (atomically, so never half a file)."""
    try:
        write_results(results, store.results(job, run_id), job)
        write_table(report_path, report_rows(store.report(job, run_id)), REPORT_COLUMNS)
    except OSError as exc:
        raise OutputError(f"cannot write {exc.filename or results}: {exc.strerror or exc}. The answers are safe in "
                          f"the store: `batchgpt report {run_id} --state {store.directory} --out PATH` writes "
                          "them elsewhere") from None
