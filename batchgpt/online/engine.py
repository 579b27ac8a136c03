"""The engine: stream a job's requests through the store, the pacers and the client, with retries.

One producer walks the job in input order and enrols each request in the store (skipping those
already answered); `concurrency` workers send them, each request when its rate limit's pacer
gives it a turn. A bounded queue between the two keeps memory flat however long the job. Each
answer is committed to the store before it counts as done (commits.py); the lifecycle exports the
results file and report from the store at the end, so they are always whole.

Waiting is not failing: rate-limit refusals use up no retries (an item gives up on its limit only
after `limits.patience`), and an item whose failures may be an outage's is held until something
answers or the outage watch stops the run, when it is `skipped` for the next run to send.

The engine receives its collaborators (parts.py) and owns no process-wide state: stopping it is
`stop(reason)`, and cancelling its `run()` ends the requests in flight at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from contextlib import AsyncExitStack
from itertools import islice

from batchgpt import jobs
from batchgpt.backend import Ending
from batchgpt.client import Client
from batchgpt.clientcache import Clients
from batchgpt.jobs import Job
from batchgpt.pacing import Pacer
from batchgpt.packing import Packer
from batchgpt.progress import Progress
from batchgpt.providers import api_key
from batchgpt.records import Pack, Provider, Request
from batchgpt.resultrows import system_messages
from batchgpt.runoptions import RunOptions
from batchgpt.store import RunTotals, Store

from .commits import Commits
from .misconfig import Watch
from .paceshow import WATCH_S, PaceShow
from .parts import Parts
from .sending import Sending
from .spending import Spending

log = logging.getLogger(__name__)
_YIELD_EVERY = 256  # the producer lets in-flight answers through at least this often


class Engine(Sending):
    """One online run of a job's requests (or of those `only` picks): walk, send, record."""

    def __init__(
        self,
        job: Job,
        store: Store,
        run_id: int,
        options: RunOptions,
        progress: Progress,
        parts: Parts,
        only: Callable[[Request], bool] | None = None,
    ):
        self.job = job
        self.only = only  # the requests this engine sends (batch mode sends the others in batches)
        self.store = store
        self.run_id = run_id
        self.options = options
        self.progress = progress
        self.parts = parts
        self.pricing = parts.pricing
        self.media = parts.media
        self.timing = parts.timing
        self.pacing = parts.pacing
        self.outage = parts.outage
        self.deadlines = parts.deadlines  # how long each limit's attempts wait: timeouts lengthen it
        self.spending = Spending(parts.budget, parts.estimator, self.stop)
        self.unconfirmed = self.spending.unconfirmed
        self._paces = PaceShow(parts.pacing, parts.outage, progress)
        self.refused = 0  # 429 and 503 answers: waits, not failures
        self.misconfig = Watch()  # the first answers, for a misconfiguration that refuses them all
        self.retries: Counter[str] = Counter()  # retried attempts by cause, kept in the run's row
        self.stopped: str | None = None
        self.sent = 0
        self.walked: int | None = 0  # requests the producer has taken from the job; None: all of them
        self._pacers: dict[tuple[Provider, str], Pacer] = {}
        self._stopping: asyncio.Event | None = None

    mode = "online"

    def stop(self, reason: str) -> None:
        """No new request starts after this; the ones in flight finish."""
        if self.stopped is None:
            self.stopped = reason
            self.progress.log("stopping", f"stopping: {reason}", logging.WARNING)
            self.pacing.close()
            self.spending.close()
            if self._stopping is not None:
                self._stopping.set()

    async def run(self) -> None:
        limits = self.job.limits
        # kept: asyncio.get_running_loop() costs a getpid() system call on Python 3.11, and the
        # workers wanted it for every answer
        self._loop = asyncio.get_running_loop()
        self._commits = Commits(self.store, self._loop, self.stop)
        self._stopping = asyncio.Event()
        if self.stopped is not None:
            self._stopping.set()
        queue: asyncio.Queue[Pack | None] = asyncio.Queue(maxsize=limits.concurrency * 2)
        async with AsyncExitStack() as stack:
            self._clients = Clients(stack, limits.timeout, limits.concurrency, limits.max_answer_mb)
            if self.parts.shared is not None:
                stack.push_async_callback(self.parts.shared.close)
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
                self._commits.now()  # nothing recorded waits on a timer the loop may never run
                self.misconfig.close()
                self._paces.show(self.refused)  # a run shorter than a look still says how it was paced

    async def _watch(self) -> None:
        """Stop the run when the outage watch says so (even while every request hangs), and keep
        the pace on show."""
        while True:
            await asyncio.sleep(WATCH_S)
            verdict = self.outage.verdict()
            if verdict is not None:
                self.stop(verdict)
            self._paces.show(self.refused)

    async def _produce(self, queue: asyncio.Queue[Pack | None], workers: int) -> None:
        packer = Packer(self.parts.estimator.counter)
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
                self._commits.soon()
                for pack in packer.add(request):
                    await queue.put(pack)
            else:
                self._commits.soon()
                self.progress.reuse()
        self.walked = None
        for pack in packer.flush():
            await queue.put(pack)
        for _ in range(workers):
            await queue.put(None)

    def wind_up(self, hard: bool) -> None:
        """The backend's last word (backend.Backend): the items a stop left unreached are skipped,
        unless it was a hard stop, which writes nothing more."""
        if not hard:
            self.skip_unreached()

    def ending(self, totals: RunTotals) -> Ending:
        return Ending(
            self.stopped,
            fields={
                "reused": self.progress.reused,
                "unknown_models": tuple(self.pricing.unknown),
                "unconfirmed": self.unconfirmed.attempts,
                "timed_out": self.unconfirmed.timed_out,
                "unconfirmed_usd": self.unconfirmed.worst_usd,
            },
        )

    def skip_unreached(self) -> None:
        """Enrol as skipped the items the walk never reached: a stop's grace ended while it waited
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
            await self._commits.committed()
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
                self._commits.soon()
                continue
            if not self.store.claim(self.run_id, self.job.name, turn, self.options.retry_failed):
                answer = self.store.answer(self.job.name, turn.id)
                self._commits.soon()
                self.progress.reuse()
                if answer is None:  # failed for good in an earlier run
                    broken = f"turn {n} failed"
                else:
                    history += [user, {"role": "assistant", "content": str(answer)}]
                continue
            results = await self._execute(Pack.of(turn))
            for result in results:
                self.store.record(self.job.name, result)
            await self._commits.committed()
            for result in results:
                self.progress.update(result)
            if results[0].status != "ok":
                broken = f"turn {n} did not succeed"
            else:
                history += [user, {"role": "assistant", "content": str(results[0].output)}]

    async def _client(self, provider: Provider) -> Client:
        return await self._clients.get(provider)

    def _pacer(self, request: Request) -> Pacer:
        # looked up once per provider and model: naming the limit hashes the key (pacing.limit_id)
        provider = request.provider
        pacer = self._pacers.get((provider, request.model))
        if pacer is None:
            pacer = self.pacing.pacer(provider.base_url, api_key(provider), request.model)
            self._pacers[(provider, request.model)] = pacer
        return pacer
