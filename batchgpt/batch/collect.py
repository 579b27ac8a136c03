"""Collecting an ended batch: its files downloaded, each line recorded for the item it matches
(batchread.py's rule), what the files do not mention released, and its hold on the budget settled.

The collecting half of a batch-mode run (batches.BatchRunner), which keeps the run's state: the
answers it recorded, the items it holds back, the budget left, the calls it made.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from batchgpt import jobs, structured
from batchgpt.bodies import Cut, mebibytes
from batchgpt.client import Client
from batchgpt.jobs import Job
from batchgpt.media import MediaWriter, file_stem
from batchgpt.pricing import Pricing
from batchgpt.progress import Progress
from batchgpt.records import Failure, Pack, Provider, Request
from batchgpt.resultrows import answer_results, row_for
from batchgpt.runoptions import RunOptions
from batchgpt.store import BatchRow, Store, WaitingItem
from batchgpt.tasks import MalformedReply
from batchgpt.words import command, count

from .files import LineOutcome
from .read import Tally, api_counts, read_files, readable, summary, validation_errors

RESENT_MISSING = 2  # submissions after which an item its batch's files never mention is an error


class Collecting:
    """A batch-mode run's collecting and the telling it shares with the rest of the run."""

    job: Job
    options: RunOptions
    store: Store
    progress: Progress
    media: MediaWriter
    pricing: Pricing
    folder: Path
    budget_left: float | None
    sent: int
    retries: Counter[str]
    held: set[str]  # items not sent again in this run
    collected: set[str]  # items answered by batches this run collected
    stale: set[str]  # items answered for a request the job no longer has

    async def _collect(
        self,
        client: Client,
        row: BatchRow,
        data: dict[str, Any],
        waiting: dict[str, WaitingItem],
        requests: dict[str, Request],
    ) -> None:
        """Record what an ended batch's files say, line by line as batchread.py's rule matches
        them, and release what they do not say. The files are downloaded whole before any line is
        recorded, and read a line at a time. Each answer is recorded for its item and the request
        it was submitted with, also when the item has since left the job or changed (it was paid
        for; a changed request is sent anew)."""
        fetched = await self._download(client, row, data)
        downloaded, cuts = fetched or ([], [])
        if fetched is None or not self._readable(row, downloaded):
            for _, path in downloaded:
                path.unlink()
            return
        problems = validation_errors(data) if row.status == "failed" else []
        tally = Tally(waiting)
        cost = 0.0
        for outcome in read_files(downloaded, tally):
            item = tally.match(outcome)
            if item is not None:
                spent, answered = self._record_line(row, item, outcome, requests.get(item.id))
                cost += spent
                tally.recorded(item, answered)
        unread = self._unread(row, tally, requests, cuts) if not problems else 0
        for line, code, message in problems:
            self._refused(row, line, code, message, waiting, requests)
        missing = self._missing(row, tally, requests) if row.status == "completed" else 0
        self._release(row, problems)
        ignored = tally.ignored()
        if ignored:
            self._warn(
                row, f"ignored {ignored}: an item's first answer stands, and only the batch's items are answered"
            )
        self._settle_budget(row, cost, tally.extra_answers + tally.too_large + unread + missing)
        counts = tally.counts(row.lines)
        said = api_counts(data)
        told = summary(counts) + (f" (the provider says {summary(said)})" if said and said != counts else "")
        self.store.update_batch(row.intent, collected=True, counts=as_json(counts), message=told)
        for _, path in downloaded:
            path.unlink()
        self.progress.log("batch", message=f"batch {row.batch_id} {row.status}: {told}; collected")

    async def _download(
        self, client: Client, row: BatchRow, data: dict[str, Any]
    ) -> tuple[list[tuple[str, Path]], list[str]] | None:
        """An ended batch's output and error files, on disk, and which of them stopped at their cap
        (limits.max_batch_file_mb); None when one could not be had."""
        downloaded: list[tuple[str, Path]] = []
        cuts: list[str] = []
        limit = mebibytes(self.job.limits.max_batch_file_mb)
        for key in ("output_file_id", "error_file_id"):
            if data.get(key):
                name = key.split("_")[0]
                path = self.folder / f"{file_stem(str(row.batch_id))}-{name}.jsonl"  # the server names no path
                self.sent += 1
                failure = await client.download(f"/files/{data[key]}/content", path, limit)
                if isinstance(failure, Cut):  # the lines before the cut are read; _unread says the rest
                    cuts.append(f"its {name} file is {failure.describe()}")
                    failure = None
                if failure is not None and failure.status == 404 and failure.type:
                    self._give_up(row, f"not answered: the provider no longer has batch {row.batch_id}'s {name} file")
                    return None
                if failure is not None:
                    self._warn(
                        row, f"its {name} file could not be downloaded ({failure.describe()}); trying again later"
                    )
                    return None
                downloaded.append((name, path))
        return downloaded, cuts

    def _readable(self, row: BatchRow, downloaded: list[tuple[str, Path]]) -> bool:
        """A file of which no line can be read is no batch's file (a proxy's error page served in
        its place, say): nothing is collected, so no answer is lost and bought again, and the next
        poll downloads it again."""
        for name, path in downloaded:
            good, bad = readable(path)
            if bad and not good:
                job = self.job.path or self.job.name
                lost = command("batches", job, "--lost", row.intent, state=self.options.state_dir)
                self._warn(
                    row,
                    f"not one line of its {name} file can be read: not collected; the next poll downloads it again "
                    f"(`{lost}` gives the batch up and submits its items again)",
                )
                return False
        return True

    def _record_line(
        self, row: BatchRow, item: WaitingItem, outcome: LineOutcome, current: Request | None
    ) -> tuple[float, bool]:
        """Record a line for the item it matched, and the request the item was submitted with;
        (its cost, whether it answered). A line for a request the job no longer has is recorded
        as the store keeps the item, and holds nothing back in this run."""
        request, live = _submitted(item, current, row)
        cost, answered = self._record(row, request, outcome, item.attempts)
        if not live:
            self.held.discard(item.id)
            self.stale.add(item.id)
        return cost, answered

    def _unread(self, row: BatchRow, tally: Tally, requests: dict[str, Request], cuts: list[str]) -> int:
        """The items no line spoke of when some lines were not read for their size (a file past
        its cap, a line too large that named no item): each may have been answered and billed, so
        each is an error, held at its worst case and not submitted again (--retry-failed does)."""
        why = cuts + (
            [f"{count(tally.unnamed, 'line')} larger than limits.max_answer_mb named no item"] if tally.unnamed else []
        )
        if not why:
            return 0
        unread = tally.missing()
        said = "; ".join(why)
        for item in unread:
            request, live = _submitted(item, requests.get(item.id), row)
            error = f"not read: {said}; its answer may be in what was not read, and billed (counted at its worst case)"
            self._mark(request, "error", error, item.attempts)
            tally.recorded(item, False)
            if live:
                self.held.add(item.id)
        self._warn(row, f"{said}: {count(len(unread), 'item')} no line read spoke of are errors (likely billed)")
        return len(unread)

    def _missing(self, row: BatchRow, tally: Tally, requests: dict[str, Request]) -> int:
        """The items a completed batch's files have no line for: each is sent again once (it may
        never have run), then it is an error (--retry-failed sends it again)."""
        missing = tally.missing()
        again = 0
        for item in missing:
            request, live = _submitted(item, requests.get(item.id), row)
            if item.attempts >= RESENT_MISSING:
                error = f"not answered: the files of the {count(item.attempts, 'batch')} it was in held no line for it"
                self._mark(request, "error", error, item.attempts)
                if live:
                    self.held.add(item.id)
            else:
                error = "not answered: its batch's files held no line for it; submitted again"
                self._mark(request, "error", error, item.attempts, transient=True, final=False)
                again += 1
        if missing:
            self._warn(
                row,
                f"its files hold no line for {count(len(missing), 'item')} of its {row.lines:,} requests: "
                f"{count(again, 'item')} submitted again, {len(missing) - again:,} failed (no line twice)",
            )
        return len(missing)

    def _settle_budget(self, row: BatchRow, cost: float, unaccounted: int) -> None:
        """A batch is held at its worst case until it ends, then at its cost; the lines its files
        do not account for (an answer ignored, an item with no line: billed or not, no file says)
        stay held at their share of its worst case."""
        if self.budget_left is not None:
            worst = row.worst_usd or 0.0
            share = worst / row.lines if row.lines else 0.0
            self.budget_left += worst - cost - share * unaccounted

    def _record(self, row: BatchRow, request: Request, outcome: LineOutcome, submissions: int) -> tuple[float, bool]:
        """Record one line; (what its answer cost, whether it answered)."""
        if outcome.body is not None:
            try:
                results = answer_results(
                    Pack.of(request), outcome.body, self.media, self.pricing, submissions, None, mode="batch"
                )
            except MalformedReply as exc:
                outcome = LineOutcome(outcome.custom_id, failure=Failure("malformed", str(exc)))
            else:
                # a structured answer that does not match is not asked again in a batch: an error a
                # later run sends again
                results = [
                    replace(r, status="error", transient=True, error=f"the answer does not match the schema: {r.error}")
                    if r.status == structured.INVALID
                    else r
                    for r in results
                ]
                self.held |= {r.id for r in results if r.status == "error"}  # paid once a run, at most
                for result in results:
                    self.store.record(self.job.name, result)
                    self.progress.update(result)
                    self.collected.add(result.id)
                return sum(result.cost_usd or 0.0 for result in results), True
        failure = outcome.failure
        assert failure is not None
        if failure.cause == "batch" and row.status == "cancelled":
            self._mark(request, "skipped", f"not answered: the batch was cancelled ({failure.message})", submissions)
            self.held.add(request.id)
        elif failure.cause == "batch":  # expired before its turn: the next file holds it
            self._mark(request, "skipped", f"not answered: {failure.message}", submissions, final=False)
        else:
            self.retries[failure.reason] += failure.transient
            if not failure.transient:
                self.held.add(request.id)  # answered for good in this run: not sent again by it (--retry-failed)
            self._mark(
                request,
                "error",
                failure.describe(),
                submissions,
                transient=failure.transient,
                final=not failure.transient,
            )
        return 0.0, False

    def _mark(
        self, request: Request, status: str, error: str, attempts: int, transient: bool = False, final: bool = True
    ) -> None:
        """Record an item's unanswered outcome; `final`: it counts as done (not sent again now)."""
        result = row_for(
            request,
            status,
            attempts=attempts,
            error=error,
            transient=transient or not final,
            mode="batch",
        )
        self.store.record(self.job.name, result)
        if final:
            self.progress.update(result)

    def _refused(
        self,
        row: BatchRow,
        line: int | None,
        code: str,
        message: str,
        waiting: dict[str, WaitingItem],
        requests: dict[str, Request],
    ) -> None:
        """A validation error. One naming a line fails the item there (its request is at fault);
        one about the file as a whole (a limit on enqueued tokens, say) fails every item for a
        passing reason: a later run submits them again, this one does not."""
        named = [item for item in waiting.values() if line is None or item.batch_line == line]
        for item in named:
            request, live = _submitted(item, requests.get(item.id), row)
            where = f"line {line} of its file" if line is not None else "its file"
            error = f"batch {row.batch_id} failed validation: {code}: {message} ({where})"
            self.progress.log(
                "batch", message=f"item {item.id!r} (task {request.task}): {error}", level=logging.WARNING
            )
            self._mark(request, "error", error, item.attempts, transient=line is None)
            if live:  # a changed request is not the one refused: it is sent in this run
                self.held.add(item.id)

    def _release(self, row: BatchRow, problems: list[tuple[int | None, str, str]]) -> None:
        """The items an ended batch answered nothing for."""
        if row.status == "cancelled":
            for item in self.store.batch_items(row.intent):
                self.held.add(item.id)
            self.store.release(row.intent, "skipped", "not answered: the batch was cancelled", transient=False)
        elif row.status == "expired":
            self.store.release(row.intent, "skipped", "not answered: the batch expired (24 h) before its turn")
        elif row.status == "failed":
            reason = "its batch failed validation for other lines" if problems else "its batch failed"
            self.store.release(row.intent, "skipped", f"not run: {reason}")
        else:
            self.store.release(row.intent, "error", "the batch's files hold no answer for it", transient=True)

    def _requests(self, ids: set[str]) -> dict[str, Request]:
        """The job's current requests for these items, slimmed to what reading and pricing an
        answer needs (a collected batch of 50,000 must not hold 50,000 prompts)."""
        if not ids:
            return {}
        return {r.id: _slim(r) for r in jobs.requests(self.job) if r.id in ids}

    def _give_up(self, row: BatchRow, error: str) -> None:
        """A batch that will never answer (never created, or lost): its items are `skipped` and
        sent again, its worst case no longer held."""
        self._warn(row, error)
        self.store.release(row.intent, "skipped", error, transient=True)
        self.store.update_batch(row.intent, status="abandoned", collected=True, message=error)
        if self.budget_left is not None:
            self.budget_left += row.worst_usd or 0.0

    def _warn(self, row: BatchRow, message: str) -> None:
        self.progress.log("batch", message=f"batch {row.batch_id or row.intent[:8]}: {message}", level=logging.WARNING)


def _submitted(item: WaitingItem, current: Request | None, row: BatchRow) -> tuple[Request, bool]:
    """The request an item of a batch was submitted with: the job's, when it has not changed
    since (True), else a stand-in from what the store knows (False)."""
    if current is not None and current.hash == item.hash:
        return current, True
    return _stand_in(item, row), False


def _stand_in(item: WaitingItem, row: BatchRow) -> Request:
    """The request an item was submitted with, from what the store knows, for an item that left
    the job or changed while its batch ran: enough to record and price its answer under the item
    and that request's hash (paid for, and kept should the item come back)."""
    return Request(
        seq=item.seq,
        id=item.id,
        task=item.task,
        type=item.type,
        model=item.model,
        endpoint=row.endpoint,
        body={"model": item.model},
        payload=b"",
        hash=item.hash,
        provider=Provider(),
    )


def waiting_in(store: Store, row: BatchRow) -> dict[str, WaitingItem]:
    """What a batch holds unanswered, by item id."""
    return {item.id: item for item in store.batch_items(row.intent)}


def _slim(request: Request) -> Request:
    """A request without its prompt: what prices an answer (images by size and quality) stays."""
    body = {k: request.body[k] for k in _PRICED_BY if k in request.body}
    return replace(request, body=body, payload=b"", files=())


_PRICED_BY = ("model", "size", "quality", "n", "response_format")


def as_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
