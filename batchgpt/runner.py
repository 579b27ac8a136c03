"""The engine: stream a job's requests through the store, the pacers and the client, with retries.

One producer walks the job in input order and enrols each request in the store (skipping those
already answered); `concurrency` workers send them, each request when its rate limit's pacer
gives it a turn. A bounded queue between the two keeps memory flat however long the job. Each
answer is committed to the store before it counts as done, and the results file and report are
exported from the store at the end, so they are always whole.

Waiting is not failing: rate-limit refusals use up no retries (an item gives up on its limit only
after `limits.patience`), and an item whose failures may be an outage's is held until something
answers or the outage watch stops the run, when it is `skipped` for the next run to send.
"""

from __future__ import annotations

import asyncio
import logging
import random
import signal
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import AsyncExitStack, contextmanager, suppress
from dataclasses import dataclass, field, replace
from itertools import islice
from pathlib import Path
from typing import Any

from . import aio, files, htmlreport, jobs, structured
from .budget import Budget, unmetered
from .client import Answer, Client
from .errors import EXIT_FAILED_ITEMS, EXIT_OK, EXIT_STOPPED, OutputError, StateError, UsageError, store_write_error
from .estimate import Bound, Estimator, choices
from .jobs import Job
from .media import MEDIA_TYPES, MediaWriter, media_folder
from .outage import Outage
from .pacing import Pace, Pacer, Pacing, Stopped, Ticket
from .packing import Packer, split
from .pricing import Pricing
from .progress import Progress
from .providers import api_key
from .records import Failure, Pack, Provider, Request, Result, dump, shortened, shown_url
from .retry import Verdict, decide
from .shared import SharedLimits
from .slow import Deadlines, Unconfirmed
from .store import STATE_DIR, JobLock, RunTotals, Store, endpoint_of, endpoints
from .tables import export
from .tasks import TASKS, FailedAnswer, MalformedReply
from .words import command, count

log = logging.getLogger(__name__)
_YIELD_EVERY = 256  # the producer lets in-flight answers through at least this often
GRACE_S = 10.0  # after SIGINT or SIGTERM, how long requests in flight may take to finish
COMMIT_WINDOW_S = 0.002  # answers arriving this close together share a commit (one alone costs ~13 us)
WATCH_S = 1.0  # how often the outage watch and the pace display look
SHOWN_PAUSE_S = 0.5  # shorter rate-limit pauses are pacing, not news


@dataclass(frozen=True)
class RunOptions:
    state_dir: Path | None = None
    fresh: bool = False  # forget the job's earlier answers (under the job's lock, never under another run)
    retry_failed: bool = False
    progress: bool | None = None  # None: a bar when stderr is a terminal
    log_format: str = "text"
    wait: bool = False  # batch mode: poll until every batch has ended, then write the results
    poll: float = 60.0  # batch mode: seconds between polls while waiting


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
    failed_transient: int  # of `failed`: sent again by a plain rerun
    refused: int  # 429 and 503 answers the run waited out
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
    mode: str = "online"
    submitted: int = 0  # batch mode: items waiting in open batches
    spent_usd: float | None = 0.0  # what this run's answers cost (cost_usd: the job's total)
    batches_open: int = 0
    online_items: int = 0  # batch mode: items of types the Batch API does not take, sent online
    unconfirmed: int = 0  # attempts with no usable answer that may have been billed (slow.py)
    timed_out: int = 0  # of those: the ones that timed out
    unconfirmed_usd: float | None = 0.0  # their worst-case cost, not in cost_usd (None: unknown)


@dataclass(frozen=True)
class Timing:
    """Where the engine takes time and chance from. Tests give it a fake clock and a sleep that
    only moves that clock, so a fault test waits out no real backoff."""

    clock: Callable[[], float] = time.monotonic
    draw: Callable[[], float] = random.random  # uniform in [0, 1): jitter
    sleep: Callable[[float], Awaitable[None]] | None = None  # None: really wait, waking when the run stops


class Engine:
    def __init__(
        self,
        job: Job,
        store: Store,
        run_id: int,
        options: RunOptions,
        progress: Progress,
        timing: Timing = Timing(),
        only: Callable[[Request], bool] | None = None,
    ):
        self.job = job
        self.only = only  # the requests this engine sends (batch mode sends the others in batches)
        self.store = store
        self.run_id = run_id
        self.options = options
        self.progress = progress
        self.pricing = Pricing(job.pricing, job.provider.base_url)
        self.estimator = Estimator(self.pricing)
        self.budget = Budget(job.budget_usd) if job.budget_usd is not None else None
        self.media = MediaWriter(media_folder(job.results, job.name))
        limits = job.limits
        self.shared = SharedLimits(limits.shared) if limits.shared else None
        self.timing = timing
        self.pacing = Pacing(
            limits.rpm,
            limits.tpm,
            limits.concurrency,
            limits.patience,
            clock=timing.clock,
            shared=self.shared.limit if self.shared else None,
            draw=timing.draw,
            sleep=timing.sleep,
        )
        self.outage = Outage(limits.outage, timing.clock)
        self.deadlines = Deadlines(limits.timeout)  # how long each limit's attempts wait: timeouts lengthen it
        self.unconfirmed = Unconfirmed()
        self._told_pace: dict[str, tuple[str, int | None, bool]] = {}  # pacer: what the log last said of it
        self.refused = 0  # 429 and 503 answers: waits, not failures
        self.retries: Counter[str] = Counter()  # retried attempts by cause, kept in the run's row
        self.stopped: str | None = None
        self.signal: signal.Signals | None = None
        self.hard_stop = False  # a second signal: no grace, no export
        self.sent = 0
        self.walked: int | None = 0  # requests the producer has taken from the job; None: all of them
        self._clients: dict[Provider, Client] = {}
        self._pacers: dict[tuple[Provider, str], Pacer] = {}
        self._uncommitted: list[asyncio.Future[None]] = []
        self._commit_timer: asyncio.TimerHandle | None = None  # the commit due within COMMIT_WINDOW_S
        self._sending = 0  # attempts whose answer is awaited
        self._stopping: asyncio.Event | None = None

    async def _committed(self) -> None:
        """Wait until this worker's answer is committed. Answers written within COMMIT_WINDOW_S
        share one commit; a worker takes no new request before its answer is durable, so a
        killed run re-pays at most one request per worker. With no answer awaited, none can join
        the commit: it is made at once, as waiting would only idle."""
        future = self._loop.create_future()
        self._uncommitted.append(future)
        if self._sending:
            self._commit_soon()
        else:
            self._commit()
        await future

    def _commit_soon(self) -> None:
        """Commit within COMMIT_WINDOW_S. Every write is followed by this, so no transaction stays
        open longer: other runs sharing the store (other jobs) wait for it only that long."""
        if self._commit_timer is None:
            self._commit_timer = self._loop.call_later(COMMIT_WINDOW_S, self._commit)

    def _commit(self) -> None:
        waiting, self._uncommitted = self._uncommitted, []
        if self._commit_timer is not None:
            self._commit_timer.cancel()
            self._commit_timer = None
        failure: StateError | None = None
        try:
            self.store.commit()
        except sqlite3.Error as exc:  # a full disk: the run cannot keep its answers, so it ends
            failure = store_write_error(self.store.directory, exc)
            self.stop(str(failure))
        for future in waiting:
            if future.done():  # a worker cancelled by a signal no longer waits
                continue
            if failure is None:
                future.set_result(None)
            else:
                future.set_exception(failure)  # the workers waiting end the run with it

    def stop(self, reason: str) -> None:
        """No new request starts after this; the ones in flight finish."""
        if self.stopped is None:
            self.stopped = reason
            self.progress.log("stopping", f"stopping: {reason}", logging.WARNING)
            self.pacing.close()
            if self.budget is not None:
                self.budget.close()
            if self._stopping is not None:
                self._stopping.set()

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
            self.progress.log(
                "grace", message=f"requests in flight have {GRACE_S:g} s to finish; a second Ctrl-C stops at once"
            )
            asyncio.get_running_loop().call_later(GRACE_S, task.cancel)
        else:
            self.hard_stop = True
            task.cancel()

    async def run(self) -> None:
        limits = self.job.limits
        # kept: asyncio.get_running_loop() costs a getpid() system call on Python 3.11, and the
        # workers wanted it for every answer
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        queue: asyncio.Queue[Pack | None] = asyncio.Queue(maxsize=limits.concurrency * 2)
        async with AsyncExitStack() as stack:
            self._stack = stack
            if self.shared is not None:
                stack.push_async_callback(self.shared.close)
            workers = [asyncio.create_task(self._worker(queue)) for _ in range(limits.concurrency)]
            producer = asyncio.create_task(self._produce(queue, len(workers)))
            tasks = [producer, *workers]
            watch = asyncio.create_task(self._watch())
            try:
                # A bug that kills a worker must end the run, not leave the producer waiting forever.
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
                for task in done:
                    task.result()
            finally:
                for task in (*tasks, watch):  # only a failed or cancelled run leaves any unfinished
                    task.cancel()
                await asyncio.gather(*tasks, watch, return_exceptions=True)
                self._show_pace()  # a run shorter than a look still says how it was paced

    async def _watch(self) -> None:
        """Stop the run when the outage watch says so (even while every request hangs), and keep
        the pace on show."""
        while True:
            await asyncio.sleep(WATCH_S)
            verdict = self.outage.verdict()
            if verdict is not None:
                self.stop(verdict)
            self._show_pace()

    def _show_pace(self) -> None:
        """The pace on the bar and in each progress line; a log line when it changes for a reason."""
        paces = self.pacing.paces()
        shown = [_describe(p) for p in paces if p.rate or p.paused_for >= SHOWN_PAUSE_S or p.window]
        silent = self.outage.silent_for()
        if silent is not None and silent >= WATCH_S:
            shown.append(f"no answer for {silent:.0f} s (the run stops at {self.outage.seconds:g} s)")
        if self.refused:
            shown.append(f"{self.refused:,} refused (429/503)")
        self.progress.pace("; ".join(shown))
        for pace in paces:
            log.debug("pace of %s: %s", pace.name, _describe(pace, long=True))
            state = (pace.source, pace.window, pace.paused_for >= WATCH_S)
            if self._told_pace.get(pace.name, ("unlimited", None, False)) != state:
                self._told_pace[pace.name] = state
                self.progress.log("pace", message=f"{pace.name}: {_describe(pace, long=True)}")

    async def _produce(self, queue: asyncio.Queue[Pack | None], workers: int) -> None:
        packer = Packer(self.estimator.counter)
        for n, request in enumerate(jobs.requests(self.job)):
            if n % _YIELD_EVERY == 0:
                await asyncio.sleep(0)
            self.walked = n + 1  # this item is the walk's from here: enrolled, queued or skipped below
            if self.only is not None and not self.only(request):
                continue
            if request.turns:  # a conversation enrols its turns one by one as it goes (_chain)
                await queue.put(Pack.of(request))
            elif self.stopped:
                self.store.skip(self.run_id, self.job.name, request, f"not sent: {self.stopped}")
            elif self.store.claim(self.run_id, self.job.name, request, self.options.retry_failed):
                self._commit_soon()
                for pack in packer.add(request):
                    await queue.put(pack)
            else:
                self._commit_soon()
                self.progress.reuse()
        self.walked = None
        for pack in packer.flush():
            await queue.put(pack)
        for _ in range(workers):
            await queue.put(None)

    def skip_unreached(self) -> None:
        """Enrol as skipped the items the walk never reached: a signal's grace ended while it waited
        for a free worker. Without this the run's counts and files left them out. (A conversation
        is left to the next run: its turns' bodies depend on answers not had.)"""
        if self.walked is None:
            return
        reason = f"not sent: {self.stopped or 'the run ended'}"
        for n, request in enumerate(islice(jobs.requests(self.job), self.walked, None), 1):
            if (self.only is None or self.only(request)) and not request.turns:
                self.store.skip(self.run_id, self.job.name, request, reason)
            if n % 10_000 == 0:
                self.store.commit()  # the skips wait in memory until a commit
        self.store.commit()

    async def _worker(self, queue: asyncio.Queue[Pack | None]) -> None:
        while (pack := await queue.get()) is not None:
            if pack.first.turns:
                await self._chain(pack.first)
                continue
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

    async def _chain(self, conversation: Request) -> None:
        """A conversation's turns in order, each sent with the whole history (the earlier answers
        included) and committed as it is answered. A turn answered by an earlier run is never sent
        again: its stored answer continues the history. The chain stops at its first failed turn;
        the turns after it are `skipped`."""
        history = system_messages(conversation)
        broken: str | None = None
        for n, said in enumerate(conversation.turns, 1):
            user = {"role": "user", "content": said}
            turn = jobs.turn_request(conversation, n, history)
            if broken or self.stopped:
                self.store.skip(self.run_id, self.job.name, turn, f"not sent: {broken or self.stopped}")
                self._commit_soon()
                continue
            if not self.store.claim(self.run_id, self.job.name, turn, self.options.retry_failed):
                answer = self.store.answer(self.job.name, turn.id)
                self._commit_soon()
                self.progress.reuse()
                if answer is None:  # failed for good in an earlier run
                    broken = f"turn {n} failed"
                else:
                    history += [user, {"role": "assistant", "content": str(answer)}]
                continue
            results = await self._execute(Pack.of(turn))
            for result in results:
                self.store.record(self.job.name, result)
            await self._committed()
            for result in results:
                self.progress.update(result)
            if results[0].status != "ok":
                broken = f"turn {n} did not succeed"
            else:
                history += [user, {"role": "assistant", "content": str(results[0].output)}]

    async def _client(self, provider: Provider) -> Client:
        client = self._clients.get(provider)
        if client is None:
            client = Client(provider, api_key(provider), self.job.limits.timeout, self.job.limits.concurrency)
            self._clients[provider] = client = await self._stack.enter_async_context(client)
        return client

    def _pacer(self, request: Request) -> Pacer:
        # looked up once per provider and model: naming the limit hashes the key (pacing.limit_id)
        provider = request.provider
        pacer = self._pacers.get((provider, request.model))
        if pacer is None:
            pacer = self.pacing.pacer(provider.base_url, api_key(provider), request.model)
            self._pacers[(provider, request.model)] = pacer
        return pacer

    def _worst(self, pack: Pack, bounds: Callable[[], list[Bound]]) -> float | str:
        """The most the pack can cost (0 without a budget), or why that cannot be known."""
        if self.budget is None:
            return 0.0
        most = self._most(pack, bounds)
        if isinstance(most, Request):
            return (
                f"the cost of model {most.model!r} cannot be bounded (no price or no max_tokens), "
                f"so the budget cannot be kept: add it under `pricing:` or set max_tokens"
            )
        return most

    def _most(self, pack: Pack, bounds: Callable[[], list[Bound]]) -> float | Request:
        """The most the pack can cost, or the first of its requests whose cost has no bound."""
        worst = 0.0
        for request, bound in zip(pack.requests, bounds(), strict=True):
            cost = self.estimator.worst_cost(request, bound)
            if cost is None:
                return request
            worst += cost
        return worst

    async def _hold(self, worst: float) -> bool:
        """Reserve the worst case of one attempt; False (and the run stops) when the budget is reached."""
        if self.budget is None or await self.budget.hold(worst):
            return True
        self.stop(
            f"budget of ${self.budget.limit:g} reached: ${self.budget.spent:.6f} spent, "
            f"and the next request could cost ${worst:.6f}"
        )
        return False

    def _bounds(self, pack: Pack) -> Callable[[], list[Bound]]:
        """The pack's token bounds, counted once and only when the budget or a token limit asks."""
        counted: list[list[Bound]] = []

        def bounds() -> list[Bound]:
            if not counted:
                counted.append([self.estimator.bound(request) for request in pack.requests])
            return counted[0]

        return bounds

    async def _execute(self, pack: Pack) -> list[Result]:
        """Send a pack; a structured answer that does not match its schema is asked again, up to
        the request's `reask` times, each attempt's tokens and cost added to the row."""
        results = await self._send(pack)
        reasks = 0
        while len(results) == 1 and results[0].status == structured.INVALID:
            result, request = results[0], pack.first
            if reasks >= request.reask or self.stopped:
                why = f"not asked again: {self.stopped}" if self.stopped else f"after {count(reasks, 're-ask')}"
                status = "skipped" if self.stopped else "error"
                error = f"the answer does not match the schema ({why}): {result.error}"
                results = [replace(result, status=status, error=error)]
                break
            reasks += 1
            log.debug("asking %s again (%d of %d): %s", request.id, reasks, request.reask, result.error)
            body = structured.reasked(request, str(result.output), str(result.error))
            pack = Pack.of(replace(request, body=body, payload=dump(body)))
            results = [_added(result, more) for more in await self._send(pack)]
        return [replace(r, reasks=reasks) for r in results] if reasks else results

    async def _send(self, pack: Pack) -> list[Result]:
        bounds = self._bounds(pack)
        worst = self._worst(pack, bounds)
        if isinstance(worst, str):
            self.stop(worst)
            return [row_for(r, "skipped", error=f"not sent: {worst}") for r in pack.requests]

        def tokens() -> int:  # as the limits count them: prompt plus max_tokens for each answer asked for
            return sum(
                b.prompt.tokens + (r.max_tokens or 0) * choices(r.body)
                for r, b in zip(pack.requests, bounds(), strict=True)
            )

        tries = _Tries(self.timing.clock())
        results: list[Result] = []
        try:
            results = await self._attempts(pack, bounds, tokens, worst, tries)
            return results
        finally:
            if tries.held and self.budget is not None:
                self._settle(pack, worst, worst if tries.unpriced else sum(r.cost_usd or 0.0 for r in results))

    def _settle(self, pack: Pack, worst: float, cost: float) -> None:
        assert self.budget is not None
        self.budget.settle(worst, cost)
        if cost > worst * 1.01 + 1e-9:  # the server reported more than max_tokens allows, or more images
            log.warning("%s cost $%.6f, more than its worst case of $%.6f", pack.first.id, cost, worst)
        if self.budget.spent > self.budget.limit:
            self.stop(
                f"budget of ${self.budget.limit:g} passed: ${self.budget.spent:.6f} spent, as answers cost "
                "more than their worst case"
            )

    async def _attempts(
        self, pack: Pack, bounds: Callable[[], list[Bound]], tokens: Callable[[], int], worst: float, tries: _Tries
    ) -> list[Result]:
        first = pack.first
        client = await self._client(first.provider)
        pacer = self._pacer(first)
        while True:
            limit = pacer.too_big(tokens()) if pacer.counts_tokens else None
            if limit is not None:  # the API refuses it ("Request too large") however long one waits
                error = (
                    f"the request needs {tokens():,} tokens (prompt + max_tokens), more than the limit of "
                    f"{limit:,.0f} tokens a minute on {pacer.name}: lower max_tokens or split the input"
                )
                return [row_for(r, "error", attempts=tries.count, error=error) for r in pack.requests]
            if not tries.held:
                if self.budget is not None and not await self._hold(worst):
                    return self._unanswered(pack, tries)
                tries.held = True
            try:
                ticket = await pacer.acquire(tokens)
            except Stopped:
                return self._unanswered(pack, tries)
            outcome = await self._attempt(pack, client, pacer, ticket, tries)
            if isinstance(outcome, list):
                return outcome
            if outcome.maybe_billed:
                self._unconfirmed(pack, outcome, bounds, worst, tries)
            verdict = decide(outcome, tries.count, tries.retries_used, self.job.limits.max_retries, self.timing.draw())
            tries.retries_used += verdict.counts
            self._stop_for(verdict)
            give_up = self._give_up(verdict, outcome, pacer, tries)
            if give_up is not None:
                log.warning("%s failed after %s: %s", first.id, count(tries.count, "attempt"), give_up)
                latency = round(self.timing.clock() - tries.started, 4)
                # an item refused for the key or the quota (the run stops) is not at fault: a plain rerun sends it
                again = outcome.transient or verdict.stop_run is not None
                return [
                    row_for(r, "error", attempts=tries.count, latency_s=latency, error=give_up, transient=again)
                    for r in pack.requests
                ]
            self.retries[outcome.cause if outcome.status is None else f"HTTP {outcome.status}"] += 1
            log.debug("retrying %s in %.2fs (%s) after %s", first.id, verdict.delay, verdict.rule, outcome.describe())
            if self.stopped or not await self._wait(verdict.delay):
                return self._unanswered(pack, tries)

    def _unconfirmed(
        self, pack: Pack, failure: Failure, bounds: Callable[[], list[Bound]], worst: float, tries: _Tries
    ) -> None:
        """An attempt that may have been billed without saying how much: counted at its worst case,
        in the budget (a retry reserves again) and in the summary."""
        cost: float | None = worst
        if self.budget is not None:
            self.budget.settle(worst, worst)
            tries.held = False
        else:  # counted only now, as without a budget nothing else needs it
            most = self._most(pack, bounds)
            cost = most if isinstance(most, float) else None
        self.unconfirmed.add(failure, cost)

    async def _attempt(
        self, pack: Pack, client: Client, pacer: Pacer, ticket: Ticket, tries: _Tries
    ) -> list[Result] | Failure:
        """Send once: the results, or what went wrong (told to the pacer and the outage watch). It
        waits for its answer as long as its limit's deadline says; a timeout lengthens that, and
        is no outage unless it came at the longest wait (slow.py)."""
        tries.count += 1
        self.sent += 1
        started = self.timing.clock()
        deadline = self.deadlines.of(pacer.name)
        waited = deadline.seconds
        try:
            self._sending += 1
            try:
                outcome = await client.send(pack, waited)
            finally:
                self._sending -= 1
            if isinstance(outcome, Answer):
                try:
                    results = self._answered(pack, outcome, tries.count, self.timing.clock() - tries.started)
                except MalformedReply as exc:
                    outcome = Failure("malformed", str(exc), outcome.status, headers=outcome.headers)
                except OutputError as exc:  # a generated file cannot be saved: nothing more can be kept
                    pacer.done(ticket, outcome.headers)
                    self.stop(str(exc))
                    tries.unpriced = True  # it was billed all the same
                    return [
                        row_for(r, "error", attempts=tries.count, error=str(exc), transient=True) for r in pack.requests
                    ]
                else:
                    pacer.done(ticket, outcome.headers)
                    self.outage.answered()
                    return results
        except BaseException:  # cancelled by a signal, or a bug: the request is no longer in flight
            pacer.release()
            raise
        pacer.done(ticket, outcome.headers, outcome)
        self.refused += outcome.rate_limited or outcome.overloaded
        timed_out = outcome.cause == "timeout"
        if timed_out:
            deadline.timed_out(waited)
        tries.down = outcome.unreachable and deadline.hopeless(outcome, waited)
        if tries.down:
            self.outage.failed(started, outcome, shown_url(pack.first.provider.base_url))
            tries.failing_since = started if tries.failing_since is None else tries.failing_since
        elif not timed_out:  # a timeout says neither: the server may be slow, or down
            self.outage.answered()
        return outcome

    def _stop_for(self, verdict: Verdict) -> None:
        """Stop the run when an answer says to (quota, key) or the endpoint seems down."""
        reason = verdict.stop_run or self.outage.verdict()
        if reason is not None:
            self.stop(reason)

    def _give_up(self, verdict: Verdict, failure: Failure, pacer: Pacer, tries: _Tries) -> str | None:
        """Why this item ends as an error now; None to try it again."""
        if verdict.retry:
            if not verdict.counts and not pacer.patient():  # a wait for the limit that never ends
                return (
                    f"{failure.describe()} (no request to {pacer.name} succeeded for "
                    f"{self.job.limits.patience:g} s: limits.patience)"
                )
            return None
        if (
            verdict.exhausted
            and tries.down
            and tries.failing_since is not None
            and self.outage.silent_since(tries.failing_since)
        ):
            return None  # nothing has answered since this item began failing: maybe an outage, so hold it
        return failure.describe()

    async def _wait(self, seconds: float) -> bool:
        """Sleep before a retry; False when the run stopped meanwhile."""
        assert self._stopping is not None
        if self.timing.sleep is not None:
            await self.timing.sleep(seconds)
            return not self.stopped
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except asyncio.TimeoutError:
            return True
        return False

    def _unanswered(self, pack: Pack, tries: _Tries) -> list[Result]:
        latency = round(self.timing.clock() - tries.started, 4) if tries.count else None
        return [
            row_for(r, "skipped", attempts=tries.count, latency_s=latency, error=f"not answered: {self.stopped}")
            for r in pack.requests
        ]

    def _answered(self, pack: Pack, answer: Answer, attempts: int, latency: float) -> list[Result]:
        ttft = None if answer.ttft_s is None else round(answer.ttft_s, 4)
        return answer_results(
            pack, answer.data, self.media, self.pricing, attempts, round(latency, 4), ttft, estimator=self.estimator
        )


@dataclass
class _Tries:
    """One pack's attempts so far."""

    started: float
    count: int = 0
    retries_used: int = 0
    failing_since: float | None = None  # when its first attempt that looked like an outage's started
    down: bool = False  # its last failure looked like an outage's (no connection, a 5xx, the longest timeout)
    held: bool = False  # its worst case is reserved in the budget
    unpriced: bool = False  # answered, so billed, but its cost was not recorded: settle at the worst case


def row_for(request: Request, status: str, **fields: Any) -> Result:
    """A request's result row: where it comes from, its status, and `fields`."""
    return Result(
        seq=request.seq,
        id=request.id,
        task=request.task,
        type=request.type,
        model=request.model,
        status=status,
        **fields,
    )


def system_messages(conversation: Request) -> list[dict[str, Any]]:
    """Where a conversation's history starts: its system message, if any."""
    return [m for m in conversation.body["messages"] if m.get("role") == "system"]


def answer_results(
    pack: Pack,
    data: Any,
    media: MediaWriter,
    pricing: Pricing,
    attempts: int,
    latency_s: float | None,
    ttft_s: float | None = None,
    mode: str = "online",
    estimator: Estimator | None = None,
) -> list[Result]:
    """The results of an answer to a pack (online or a batch's output line): its parts, their
    generated files saved, each priced as its endpoint bills (at the batch price in batch mode),
    or at its worst case when the answer says not what it used (`estimator` bounds it). Raises
    MalformedReply for an answer in a shape no parser foresaw: the server's fault, never a crash."""
    task_type = TASKS[pack.first.type]
    estimator = estimator or Estimator(pricing)
    try:
        parts = split(pack, task_type.parse(data))
    except FailedAnswer as exc:
        return [
            _failed_answer(request, exc, task_type.billing, estimator, attempts, latency_s, mode)
            for request in pack.requests
        ]
    except MalformedReply:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, RecursionError) as exc:
        raise MalformedReply(f"the answer is not in the documented shape ({type(exc).__name__})") from None
    results = []
    for request, part in zip(pack.requests, parts, strict=True):
        output = (
            media.save(request.id, part.media, f"{endpoint_of(request)} {request.hash}") if part.media else part.output
        )
        units = part.units if part.units is not None else request.units
        cost = pricing.charge(
            task_type.billing,
            request.model,
            request.body,
            part.prompt_tokens,
            part.completion_tokens,
            part.cached_tokens,
            units,
            batch=mode == "batch",
            billed=part.billed,
            units_note=None if part.units is not None else request.units_note,
        )
        details = part.details
        if task_type.billing == "tokens" and None in (part.prompt_tokens, part.completion_tokens):
            cost, details = unmetered(estimator.worst_cost(request), details)
        results.append(
            row_for(
                request,
                "ok",
                output=output,
                prompt_tokens=part.prompt_tokens,
                completion_tokens=part.completion_tokens,
                cost_usd=cost,
                attempts=attempts,
                latency_s=latency_s,
                cached_tokens=part.cached_tokens,
                reasoning_tokens=part.reasoning_tokens,
                details=details,
                ttft_s=ttft_s,
                mode=mode,
            )
        )
        schema = structured.schema_of(request.body)
        if schema is not None:
            results[-1] = _checked(results[-1], request, part.stop, schema)
    return results


def _added(before: Result, after: Result) -> Result:
    """A re-asked answer's row: the new answer, with every attempt's tokens and cost added up."""

    def tokens(a: int | None, b: int | None) -> int | None:
        return None if a is None and b is None else (a or 0) + (b or 0)

    # A re-ask that got no answer (a transport error, a stop) adds nothing; what was paid stays.
    unpriced = after.status == "ok" and after.cost_usd is None  # answered, but no price known
    cost = None if unpriced or before.cost_usd is None else before.cost_usd + (after.cost_usd or 0.0)
    latency = None if before.latency_s is None else round(before.latency_s + (after.latency_s or 0.0), 4)
    return replace(
        after,
        prompt_tokens=tokens(before.prompt_tokens, after.prompt_tokens),
        completion_tokens=tokens(before.completion_tokens, after.completion_tokens),
        cost_usd=cost,
        cached_tokens=before.cached_tokens + after.cached_tokens,
        reasoning_tokens=before.reasoning_tokens + after.reasoning_tokens,
        attempts=before.attempts + after.attempts,
        latency_s=latency,
    )


def _checked(result: Result, request: Request, stop: str | None, schema: Mapping[str, Any]) -> Result:
    """A structured answer held to its schema: an error when refused or cut short, INVALID (to be
    asked again) when it is not JSON matching the schema, else ok (with its fields as columns)."""
    if stop == "refusal":
        return replace(result, status="error", output=None, error=f"the model refused: {shortened(result.output)}")
    if stop == "length":
        return replace(
            result, status="error", error="the answer was cut at max_tokens (finish_reason length): raise max_tokens"
        )
    try:
        parsed, problem = structured.check(schema, result.output)
    except structured.Unchecked as exc:  # paid for: an error a plain rerun keeps, not asked again
        return replace(result, status="error", error=str(exc))
    if problem is not None:
        return replace(result, status=structured.INVALID, error=problem)
    return replace(result, fields=parsed if request.columns and isinstance(parsed, dict) else None)


def _failed_answer(
    request: Request,
    exc: FailedAnswer,
    billing: str,
    estimator: Estimator,
    attempts: int,
    latency_s: float | None,
    mode: str,
) -> Result:
    """An answer saying its request did not succeed: an error row, with the usage it was billed."""
    reply = exc.reply
    cost = estimator.pricing.charge(
        billing,
        request.model,
        request.body,
        reply.prompt_tokens,
        reply.completion_tokens,
        reply.cached_tokens,
        batch=mode == "batch",
        billed=reply.billed,
    )
    details = None
    if billing == "tokens" and None in (reply.prompt_tokens, reply.completion_tokens):
        cost, details = unmetered(estimator.worst_cost(request), None)
    return row_for(
        request,
        "error",
        prompt_tokens=reply.prompt_tokens,
        completion_tokens=reply.completion_tokens,
        cost_usd=cost,
        attempts=attempts,
        latency_s=latency_s,
        error=str(exc),
        cached_tokens=reply.cached_tokens,
        reasoning_tokens=reply.reasoning_tokens,
        details=details,
        mode=mode,
    )


def _describe(pace: Pace, long: bool = False) -> str:
    """'9.8 req/s (headers)', or in the log 'pacing at 9.8 req/s, from the server's x-ratelimit headers'."""
    if pace.paused_for >= SHOWN_PAUSE_S:
        return f"waiting {pace.paused_for:.1f} s for the rate limit, as the server asked"
    rate = f"{pace.rate:.3g} req/s" if pace.rate else "no request limit"
    if pace.token_rate:
        rate += f", {pace.token_rate:,.0f} tokens/s"
    if not long:
        return f"{rate} ({pace.source})"
    why = {
        "told": "as the job says",
        "headers": "from the server's x-ratelimit headers",
        "backing off": "backing off after 429s",
        "unlimited": "no limit known",
    }[pace.source]
    window = "" if pace.window is None else f", at most {pace.window} in flight (the server is overloaded or slow)"
    return f"pacing at {rate}, {why}{window}"


def run_job(job: Job, options: RunOptions = RunOptions()) -> Summary:
    """Run a validated job to the end (or to a stop) and write its results and report."""
    with locked_store(job, options) as (store, state_dir):
        waiting = store.batches(job.name, open_only=True)
        if waiting:
            cancel = command("cancel", job.path or job.name, state=options.state_dir)
            raise UsageError(
                f"job {job.name!r} has {count(len(waiting), 'open Batch API batch')}: "
                f"run it with --batch to collect them, or `{cancel}` first "
                "(an online run would pay for their items twice)"
            )
        if options.fresh:
            store.forget(job.name)
        return _run_locked(job, options, store, state_dir)


def announce(progress: Progress, job: Job, run_id: int, mode: str) -> None:
    """The line a run starts with, for a log read later: the job, the run, where it goes, how much."""
    endpoints = sorted({shown_url(p.base_url) for p in (job.provider, *(t.provider for t in job.tasks))})
    progress.log(
        "start",
        message=f"run {run_id} of {job.name} ({mode}): {count(job.count, 'item')} to {', '.join(endpoints)}",
        run=run_id,
        items=job.count,
        mode=mode,
        endpoints=endpoints,
    )


def prepare(job: Job) -> None:
    """What must hold before anything is sent: every key is set, every output can be written,
    a shared limit can be reached."""
    for provider in {job.provider, *(t.provider for t in job.tasks)}:
        api_key(provider)  # a missing key is a usage error before anything starts
    # An output that cannot be written is found now, not after the answers are paid for.
    try:
        for path in (job.results, job.report, htmlreport.beside(job.report)):  # the report's page too
            files.check_writable(path)
        if job.fmt == "jsonl" or any(task.type in MEDIA_TYPES for task in job.tasks):
            files.check_folder(media_folder(job.results, job.name))
    except OutputError as exc:
        raise UsageError(f"{exc}; nothing was sent") from None  # a usage error: nothing is paid for
    if job.limits.shared:
        aio.run(SharedLimits.verify(job.limits.shared))  # so is a shared limit that cannot be reached


@contextmanager
def locked_store(job: Job, options: RunOptions) -> Iterator[tuple[Store, Path]]:
    """The job's store, under the job's lock, after `prepare`; closed at the end."""
    prepare(job)
    state_dir = options.state_dir or job.base_dir / STATE_DIR
    with JobLock(state_dir, job.name):
        store = Store(state_dir)
        try:
            yield store, state_dir
        except BaseException as exc:
            # A full disk fails the store's bookkeeping of the run (and its close) too. The answers
            # are committed already, and the first failure is the news.
            with suppress(sqlite3.Error):
                store.close()
            if isinstance(exc, sqlite3.OperationalError) and isinstance(exc.__context__, OutputError):
                raise exc.__context__ from None
            if isinstance(exc, sqlite3.Error):
                raise store_write_error(state_dir, exc) from None
            raise
        store.close()


def _run_locked(job: Job, options: RunOptions, store: Store, state_dir: Path) -> Summary:
    started = time.monotonic()
    run_id = store.begin_run(job.name, str(job.path) if job.path else None, endpoints(t.provider for t in job.tasks))
    if job.ids is not None:
        store.expect(job.name, job.ids)
    bar = options.progress if options.progress is not None else sys.stderr.isatty() and options.log_format == "text"
    with Progress(job.name, job.count, bar) as progress:
        announce(progress, job, run_id, "online")
        engine = Engine(job, store, run_id, options, progress)
        try:
            aio.run(engine.main())
        except asyncio.CancelledError:
            pass  # a signal ended the run; what was answered is committed
        if not engine.hard_stop:
            engine.skip_unreached()
        store.count_sent(run_id, engine.sent, engine.retries)
        store.abandon(job.name, run_id, f"not answered: {engine.stopped or 'the run ended'}")
        paths = (str(job.results.absolute()), str(job.report.absolute()))
        groups: list[dict[str, Any]] = []
        if not engine.hard_stop:
            try:
                groups = export(store, job.name, run_id, job.results, job.report)
            except OutputError:
                totals = store.totals(job.name, run_id)
                store.finish_run(run_id, OutputError.exit_code, "the results could not be written", *paths, totals)
                raise
    totals = store.totals(job.name, run_id)
    if engine.signal is not None:
        exit_code = 128 + int(engine.signal)
    else:
        exit_code = EXIT_STOPPED if engine.stopped else EXIT_FAILED_ITEMS if totals.failed else EXIT_OK
    store.finish_run(run_id, exit_code, engine.stopped, *paths, totals)
    if not engine.hard_stop:
        htmlreport.write_beside(store, run_id, job.report, htmlreport.Sums(totals, groups))
    return summarize(
        job,
        run_id,
        totals,
        started,
        sent=engine.sent,
        reused=progress.reused,
        refused=engine.refused,
        exit_code=exit_code,
        state_dir=state_dir,
        stopped=engine.stopped,
        unknown_models=tuple(engine.pricing.unknown),
        exported=not engine.hard_stop,
        unconfirmed=engine.unconfirmed.attempts,
        timed_out=engine.unconfirmed.timed_out,
        unconfirmed_usd=engine.unconfirmed.worst_usd,
    )


def summarize(job: Job, run_id: int, totals: RunTotals, started: float, **fields: Any) -> Summary:
    """A run's summary: its counts, tokens and cost as the store adds them up, and `fields`."""
    return Summary(
        run_id=run_id,
        job=job.name,
        items=totals.items,
        ok=totals.ok,
        failed=totals.failed,
        skipped=totals.skipped,
        failed_transient=totals.failed_transient,
        prompt_tokens=totals.prompt_tokens,
        completion_tokens=totals.completion_tokens,
        cost_usd=totals.cost_usd,
        spent_usd=totals.spent_usd,
        elapsed_s=time.monotonic() - started,
        results=job.results,
        report=job.report,
        **fields,
    )
