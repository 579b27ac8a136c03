"""A run misconfigured, told by its first answers: one message saying what to fix, not a failed row
for every item.

Some refusals no retry and no other item can cure: a 404 from a base URL without /v1, a 401 (the
key), a 403 (the key's permissions, the region), a model the server does not know (400 or 404,
`model_not_found`). Before the run has had any answer, each refusal of the same kind (status,
code and, for a model, its name) adds to a streak; the third in a row (FIRST_REFUSALS) stops the
run, a 401 at once (the retry policy stops the run for it anyway). While a streak runs, requests
go one at a time (`gate`), so a misconfigured run sends three requests, not its concurrency's
worth. An answer ends the watch for good (from then on a 404 is that item's own), and any other
failure ends the streak.

The items a stop leaves are `skipped` (a plain rerun sends them); the refused ones are errors a
plain rerun also sends again (the fault was the configuration's, not theirs). Their warnings are
held while the streak may still become a stop, whose one message says it all; if it does not,
they are logged after all.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass

from batchgpt.providers import key_said
from batchgpt.records import Failure, Provider, Request, shown_url
from batchgpt.retry import transient

log = logging.getLogger(__name__)

FIRST_REFUSALS = 3  # identical refusals, with no answer before them, that stop a run
_NO_MODEL = re.compile(
    r"\bmodel\b.{0,120}?\b(does not exist|not found|not exist|unknown|invalid|not supported|no such)\b"
    r"|\b(unknown|invalid|no such) model\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Refusal:
    """A failure that says the run is misconfigured: what kind, and what to fix."""

    kind: tuple[int | None, str | None, str | None]  # status, code, the model it names (or None)
    reason: str


def refusal(failure: Failure, request: Request) -> Refusal | None:
    """What a failure says is wrong with the run's configuration; None for an item's own failure."""
    status = failure.status
    if failure.cause != "http" or status not in (400, 401, 403, 404) or transient(failure):
        return None
    said, provider = failure.describe(), request.provider
    if failure.code == "model_not_found" or (
        status in (400, 404) and failure.code != "context_length_exceeded" and _NO_MODEL.search(failure.message)
    ):
        reason = (
            f"the server does not know the model {request.model!r} ({said}): check its name (defaults.model, "
            "a task's or an item's `model`, or --model)"
        )
        return Refusal((status, failure.code, request.model), reason)
    if status == 400:  # any other 400 is about the item
        return None
    return Refusal((status, failure.code, None), _reason(status, said, provider, request.model))


def _reason(status: int, said: str, provider: Provider, model: str) -> str:
    if status == 401:
        return f"authentication failed ({said}): {key_said(provider)}"
    if status == 403:
        return (
            f"the server refuses this key ({said}): it may lack permission for the model or endpoint (its "
            "project's or organization's settings), or the country or region is not supported"
        )
    url = shown_url(provider.base_url)
    if provider.kind == "azure":
        return f"{url} answers {said}: is it the resource's URL, and is there a deployment named {model!r}?"
    hint = "" if url.endswith("/v1") else f" (most servers answer under /v1, as in {url}/v1)"
    return f"{url} answers {said}: does the base URL end in /v1?{hint}"


class Watch:
    """One run's watch on its first refusals (see the module)."""

    def __init__(self) -> None:
        self.armed = True  # no answer yet
        self.stopped = False  # the run stopped for a misconfiguration
        self._kind: tuple[int | None, str | None, str | None] | None = None
        self._streak = 0
        self._held: list[tuple[str, str, str]] = []  # (item, attempts, error) of warnings not yet logged
        self._gate = asyncio.Lock()

    @property
    def gating(self) -> bool:
        """Requests go one at a time: a streak runs, and may yet stop the run."""
        return self.armed and self._streak > 0 and not self.stopped

    async def enter(self) -> bool:
        """Wait for a turn while gating; True when this attempt holds the gate (`leave` it)."""
        if not self.gating:
            return False
        await self._gate.acquire()
        if self.gating:
            return True
        self._gate.release()  # the streak ended while this one waited: no need to go alone
        return False

    def leave(self, held: bool) -> None:
        if held:
            self._gate.release()

    def answered(self) -> None:
        """An answer came: the configuration works."""
        if self.armed:
            self.armed = False
            self._flush()

    def heard(self, found: Refusal | None) -> str | None:
        """A failure (its refusal, if it is one): the reason to stop the run, when this makes it one."""
        if not self.armed or self.stopped:
            return None
        if found is None or found.kind != self._kind:
            self._flush()
            self._kind, self._streak = (None, 0) if found is None else (found.kind, 0)
        if found is None:
            return None
        self._streak += 1
        if self._streak >= FIRST_REFUSALS or found.kind[0] == 401:
            self.stopped = True
            self._held.clear()  # the stop's own message says what they would
            return found.reason
        return None

    def suspect(self, found: Refusal | None) -> bool:
        """Whether a refusal is the configuration's fault, not its item's: no answer came before it."""
        return found is not None and self.armed

    def hold(self, item: str, attempts: str, error: str) -> None:
        """A refused item's warning: logged once the streak ends without a stop, else never."""
        if self.stopped:
            log.debug("%s failed after %s: %s", item, attempts, error)
        else:
            self._held.append((item, attempts, error))

    def close(self) -> None:
        """The run ended: the warnings still held are logged."""
        self._flush()

    def _flush(self) -> None:
        for item, attempts, error in self._held:
            log.warning("%s failed after %s: %s", item, attempts, error)
        self._held.clear()
