"""Submitting a batch-mode run's items: the job walked, each item not answered and not waiting
written into a file (per provider, endpoint and model, within the API's limits; attached files
inline as data URLs, streamed from disk as the line is written), each file held
against the budget, recorded as an intent, uploaded, and made a batch, each step committed
before the next. The submitting part of the Batch API runner (runner.py)."""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from batchgpt import files, jobs
from batchgpt.attachments import Changed
from batchgpt.client import Answer, Client
from batchgpt.encoded import Body, Encodings
from batchgpt.estimate import Estimator
from batchgpt.jobs import Job
from batchgpt.progress import Progress
from batchgpt.providers import identity
from batchgpt.records import Failure, Provider, Request, Result, shown_url
from batchgpt.resultrows import row_for, system_messages
from batchgpt.retry import stops_run
from batchgpt.runoptions import RunOptions
from batchgpt.store import ANSWERED, SEND, WAITING, BatchRow, Store
from batchgpt.words import count

from .files import PartFill, PartKey, Splitter, batchable, input_line, line_url, oversized
from .plan import batch_worst
from .states import COMPLETION_WINDOW, CREATING, HELD, READY

log = logging.getLogger(__name__)


class Submitting:
    """Walking the job and submitting files; the runner keeps the state it works on."""

    job: Job
    options: RunOptions
    store: Store
    progress: Progress
    estimator: Estimator
    folder: Path
    run_id: int
    budget_left: float | None
    stopped: str | None
    online_items: int
    resubmitted: Counter[str]
    held: set[str]
    collected: set[str]
    _walked: bool

    if TYPE_CHECKING:  # the runner's and the other parts' (a mixin names what it uses)

        async def _client(self, provider: Provider) -> Client: ...
        async def _call(
            self, client: Client, method: str, path: str, retry: bool = True, **kwargs: Any
        ) -> Answer | Failure: ...
        def _update(self, row: BatchRow, data: dict[str, Any]) -> BatchRow: ...
        def _give_up(self, row: BatchRow, error: str) -> None: ...
        def _warn(self, row: BatchRow, message: str) -> None: ...

    async def submit(self) -> None:
        """Walk the job; every batchable item not answered and not waiting goes into a file."""
        again = self._walked
        if again:
            self.store.walk_again(self.job.name, self.run_id)
        self._walked = True
        self._sweep()
        splitter = Splitter()
        encodings = Encodings()  # a file attached to many items is encoded once (encoded.py)
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
            line = self._line(request, encodings)
            if line is None:
                continue
            worst = self._worst(request)
            key, fill, full = splitter.add(request, line.size, worst)
            if full is not None:
                await self._send(key, full, writing.pop(full.number))
            if fill.number not in writing:
                writing[fill.number] = _PartFile(self.folder / f"{self.run_id}-{fill.number}.jsonl")
            try:
                writing[fill.number].write(line)
            except Changed as exc:  # changed since it was stat'ed just now: the line is taken back
                fill.undo(request, line.size, worst)
                self._fail(request, f"{exc}: not submitted")
        for key, fill in list(splitter.open.items()):
            await self._send(key, fill, writing.pop(fill.number))
        self.store.commit()

    def _line(self, request: Request, encodings: Encodings) -> Body | None:
        """The request's input line, its attached files inline (streamed as it is written, never
        held whole); None when it fails here: a file changed since the job was checked, or a line
        larger than a whole batch file may be."""
        try:
            line = encodings.body(input_line(request), request.attachments, request.id)
        except Changed as exc:
            self._fail(request, f"{exc}: not submitted")
            return None
        too_big = oversized(line.size)
        if too_big is not None:
            self._fail(request, too_big)
            return None
        return line

    def _fail(self, request: Request, error: str) -> None:
        """An item that cannot be submitted as it is: an error a rerun does not retry (the job
        must change first, which makes it another request)."""
        log.warning("%s: %s", request.id, error)
        self.store.record(self.job.name, row_for(request, "error", error=error, transient=False))

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
            self.store.record(self.job.name, skipped(request, f"not submitted: {self.stopped}"))
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
            if not fill.lines:  # its only line was taken back (Changed)
                return
            if self.stopped or not self._afford(key, fill):
                for item in fill.ids:
                    self.store.record(self.job.name, skipped_id(item, f"not submitted: {self.stopped}"))
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


class _PartFile:
    """A batch input file being written: whole on disk (renamed into place) once closed."""

    def __init__(self, path: Path):
        self.path = path
        self._writer = files.atomic_write(path, "wb")
        self._handle: IO[Any] = self._writer.__enter__()

    def write(self, line: Body) -> None:
        """Write a line a chunk at a time; if a file changes part way (Changed), the file is cut
        back to where the line began, so no line is ever half written."""
        start = self._handle.tell()
        try:
            for chunk in line.chunks():
                self._handle.write(chunk)
        except Changed:
            self._handle.seek(start)
            self._handle.truncate()
            raise

    def close(self) -> Path:
        self._writer.__exit__(None, None, None)
        return self.path


def skipped(request: Request, error: str) -> Result:
    return row_for(request, "skipped", error=error)


def skipped_id(item: str, error: str) -> Result:
    """A skipped result for an item known by its id alone (the store keeps its other fields)."""
    return Result(0, item, "", "", "", "skipped", error=error)
