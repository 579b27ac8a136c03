"""Sending one pack of requests online: its attempts, each when its pacer gives it a turn, held
against the budget, retried as retry.py's policy says, and turned into result rows; a structured
answer that does not match its schema is asked again. The sending half of the engine (engine.py),
which keeps the run's state."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from batchgpt import structured
from batchgpt.client import Answer, Client
from batchgpt.errors import OutputError
from batchgpt.estimate import choices
from batchgpt.jobs import Job
from batchgpt.media import MediaWriter
from batchgpt.outage import Outage
from batchgpt.pacing import Pacer, Stopped, Ticket
from batchgpt.pricing import Pricing
from batchgpt.records import Failure, Pack, Provider, Request, Result, dump, shown_url
from batchgpt.resultrows import added, answer_results, row_for
from batchgpt.retry import Verdict, decide, spaced, wait_cap
from batchgpt.slow import Deadlines
from batchgpt.store import Store
from batchgpt.tasks import MalformedReply
from batchgpt.words import count

from .commits import Commits
from .misconfig import Refusal, Watch, refusal
from .parts import Parts, Timing
from .spending import Bounds, Spending

log = logging.getLogger(__name__)


class Sending:
    """An online run's sending; the engine keeps the state it works on."""

    job: Job
    store: Store
    parts: Parts
    pricing: Pricing
    media: MediaWriter
    timing: Timing
    outage: Outage
    deadlines: Deadlines
    spending: Spending
    refused: int
    misconfig: Watch
    retries: Counter[str]
    stopped: str | None
    sent: int
    _commits: Commits
    _stopping: asyncio.Event | None

    if TYPE_CHECKING:  # the engine's (a mixin names what it uses)

        def stop(self, reason: str) -> None: ...
        async def _client(self, provider: Provider) -> Client: ...
        def _pacer(self, request: Request) -> Pacer: ...

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
            try:
                more = await self._send(pack)
            except asyncio.CancelledError:  # a hard stop: the answer bought so far is kept
                why = f"the answer does not match the schema (not asked again: {self.stopped or 'stopped'})"
                self.store.record(self.job.name, replace(result, status="skipped", error=f"{why}: {result.error}"))
                raise
            results = [added(result, m) for m in more]
        return [replace(r, reasks=reasks) for r in results] if reasks else results

    async def _send(self, pack: Pack) -> list[Result]:
        bounds = self.spending.bounds(pack)
        worst = self.spending.worst(pack, bounds)
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
            if tries.reasons:  # the report labels each retried request by why it was tried again
                results = [replace(r, retried=tuple(tries.reasons)) for r in results]
            return results
        finally:
            if tries.held and self.spending.budget is not None:
                self.spending.settle(pack, worst, worst if tries.unpriced else sum(r.cost_usd or 0.0 for r in results))

    async def _attempts(
        self, pack: Pack, bounds: Bounds, tokens: Callable[[], int], worst: float, tries: _Tries
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
                if self.spending.budget is not None and not await self.spending.hold(worst):
                    return self._unanswered(pack, tries)
                tries.held = True
            try:
                ticket = await pacer.acquire(tokens)
            except Stopped:
                return self._unanswered(pack, tries)
            gated = await self._turn(pacer) if self.misconfig.gating else False
            if self.stopped:  # while it waited its turn
                self.misconfig.leave(gated)
                pacer.release()
                return self._unanswered(pack, tries)
            tries.began(ticket.started)
            try:
                outcome = await self._attempt(pack, client, pacer, ticket, tries)
            except asyncio.CancelledError:  # a hard stop, while the server may be answering (and billing)
                if self.spending.unconfirmed_attempt(pack, Failure("connection", _CUT), bounds, worst):
                    tries.held = False
                raise
            finally:
                self.misconfig.leave(gated)
            if isinstance(outcome, list):
                self.misconfig.answered()
                return outcome
            if outcome.maybe_billed:
                if self.spending.unconfirmed_attempt(pack, outcome, bounds, worst):
                    tries.held = False
            limits = self.job.limits
            verdict = decide(
                outcome,
                tries.count,
                tries.retries_used,
                limits.max_retries,
                self.timing.draw(),
                cap=wait_cap(limits.patience),
            )
            tries.retries_used += verdict.counts
            refused = refusal(outcome, first)
            self._stop_for(verdict, refused)
            give_up = self._give_up(verdict, outcome, pacer, tries)
            if give_up is not None:
                attempts = count(tries.count, "attempt")
                if self.misconfig.suspect(refused):
                    self.misconfig.hold(first.id, attempts, give_up)
                else:
                    log.warning("%s failed after %s: %s", first.id, attempts, give_up)
                latency = round(self.timing.clock() - tries.started, 4)
                # an item refused for the key, the quota or the run's configuration (before any answer)
                # is not at fault: a plain rerun sends it
                again = outcome.transient or verdict.stop_run is not None or self.misconfig.suspect(refused)
                return [
                    row_for(r, "error", attempts=tries.count, latency_s=latency, error=give_up, transient=again)
                    for r in pack.requests
                ]
            self.retries[outcome.reason] += 1
            tries.reasons.append(outcome.reason)
            delay = verdict.delay if verdict.told is not None else spaced(verdict.delay, tries.gap, self.timing.draw())
            log.debug("retrying %s in %.2fs (%s) after %s", first.id, delay, verdict.rule, outcome.describe())
            tries.failed_at = self.timing.clock()
            if self.stopped or not await self._wait(delay):
                return self._unanswered(pack, tries)

    async def _turn(self, pacer: Pacer) -> bool:
        """Wait, with a ticket, for this attempt's turn while the first answers are refusals
        (misconfig.py): True when it holds the gate."""
        try:
            return await self.misconfig.enter()
        except BaseException:  # cancelled: the ticket goes back
            pacer.release()
            raise

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
            self._commits.sending += 1
            try:
                outcome = await client.send(pack, waited)
            finally:
                self._commits.sending -= 1
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

    def _stop_for(self, verdict: Verdict, refused: Refusal | None) -> None:
        """Stop the run when an answer says to (quota, key), the first answers say it is
        misconfigured (misconfig.py), or the endpoint seems down."""
        misconfigured = self.misconfig.heard(refused)
        if verdict.stop_run is not None and refused is not None:
            misconfigured = refused.reason  # a refused key: the message names its variable
        reason = misconfigured or verdict.stop_run or self.outage.verdict()
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
            pack,
            answer.data,
            self.media,
            self.pricing,
            attempts,
            round(latency, 4),
            ttft,
            estimator=self.parts.estimator,
        )


_CUT = "the run stopped while the request was in flight"


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
    failed_at: float | None = None  # when its last failure was retried: its backoff began
    gap: float | None = None  # from its last retried failure to the attempt after it, the wait for a turn included
    reasons: list[str] = field(default_factory=list)  # why each retried attempt failed (Failure.reason), in order

    def began(self, started: float) -> None:
        """An attempt got its turn at `started`."""
        if self.failed_at is not None:
            self.gap = started - self.failed_at
