"""Settling a batch-mode run's open batches: each found again (when no run saw its creation
answered), polled, and collected once it ended (collect.py); an intent the provider cannot place
is left to the user (`batchgpt batches JOB --adopt/--lost`). The settling part of the Batch API
runner (runner.py)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from batchgpt.client import Answer, Client
from batchgpt.jobs import Job
from batchgpt.records import Failure, Provider, Request
from batchgpt.runoptions import RunOptions
from batchgpt.store import BatchRow, Store, WaitingItem
from batchgpt.words import command, count

from .collect import as_json, waiting_in
from .find import find
from .read import api_counts, as_dict, when
from .states import COLLECT_LINES, ENDED, READY

log = logging.getLogger(__name__)


class Settling:
    """Finding, polling and collecting; the runner keeps the state it works on."""

    job: Job
    options: RunOptions
    store: Store
    cancel: bool
    stuck: set[str]
    unresolved: list[BatchRow]

    if TYPE_CHECKING:  # the runner's and the other parts' (a mixin names what it uses)

        def _reachable(self) -> list[BatchRow]: ...
        def _provider_for(self, row: BatchRow) -> Provider | None: ...
        async def _client(self, provider: Provider) -> Client: ...
        async def _call(
            self, client: Client, method: str, path: str, retry: bool = True, **kwargs: Any
        ) -> Answer | Failure: ...
        async def _create(self, client: Client, row: BatchRow) -> None: ...
        async def _collect(
            self,
            client: Client,
            row: BatchRow,
            data: dict[str, Any],
            waiting: dict[str, WaitingItem],
            requests: dict[str, Request],
        ) -> None: ...
        def _requests(self, ids: set[str]) -> dict[str, Request]: ...
        def _give_up(self, row: BatchRow, error: str) -> None: ...
        def _warn(self, row: BatchRow, message: str) -> None: ...

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


def _ours(data: dict[str, Any], row: BatchRow) -> bool:
    """A polled batch is the intent's, as far as it says: the same intent, the same input file."""
    intent = as_dict(data.get("metadata")).get("batchgpt_intent", row.intent)
    made_from = data.get("input_file_id")
    return bool(intent == row.intent and (not made_from or not row.file_id or made_from == row.file_id))
