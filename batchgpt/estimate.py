"""What a job, or one request, may cost before anything is sent: the dry run and the budget's worst case.

Prompt tokens are counted with tiktoken as the API counts them, function definitions by the
cookbook's recipe, and what cannot be counted exactly high, marked approximate: images (vision.py),
schemas, files and other tools (overhead.py). The worst case counts each turn and each re-ask an
item may send (sends.py), and completion tokens at `max_tokens` (or, when a job sets none, the
model's output limit, or the legacy completions endpoint's default of 16) times `n`; the expected
case guesses them: about the source length for a translation, else `expected_output_tokens`, else 256.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .drycosts import BATCH_HALVED, Tally, left_out
from .jobs import MAX_PROBLEMS, ItemCheck, Job, Overrides, Problems, Span, read, requests
from .overhead import ZERO, Overhead
from .pricing import BATCH_DISCOUNT, Pricing
from .records import Billed, Limits, Request, quick
from .sends import Sends
from .tasks import TASKS
from .tokens import Count, Counter
from .unitprices import heard_tokens, speaks
from .vision import most_in
from .words import count

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

DEFAULT_EXPECTED_OUTPUT = 256
COMPLETIONS_DEFAULT_MAX = 16  # /v1/completions stops at 16 tokens when max_tokens is not sent
# A JSONL job this big is checked and estimated in two processes (_halves): below it, starting the
# second one costs more than it saves.
SPLIT_BYTES = 4 << 20
IMAGES_AT_MOST = "image inputs counted at the most their model counts one (their size is not read)"
REASKS = "worst case counts {} (structured outputs), each re-sending the prompt, a max_tokens answer and an error"
# For `minutes` when no rate limit binds: a typical answer starts after about half a second and
# streams at about 80 tokens a second.
FIRST_TOKEN_S = 0.5
TOKENS_PER_S = 80.0
COLUMNS = [
    "task",
    "model",
    "requests",
    "prompt_tokens",
    "max_completion_tokens",
    "cost_usd_max",
    "cost_usd_expected",
    "cost_usd_batch",
    "minutes",
    "notes",
]


@quick
@dataclass(frozen=True)
class Bound:
    """One request's prompt tokens, its completion tokens at worst and as expected, and what it
    costs besides tokens (images, characters, minutes; None when that cannot be known)."""

    prompt: Count
    worst: int | None
    expected: int
    note: str | None = None
    billing: str = "tokens"
    fixed: float | None = 0.0
    images: int = 0  # of the prompt: its image inputs' tokens, each at the most (already a bound)


def choices(body: Mapping[str, Any]) -> int:
    """How many completions a request asks for, each billed: `n`, or the legacy `best_of`, as a
    server reads them (10, 10.0 and "10" all ask for ten)."""
    n, best_of = body.get("n"), body.get("best_of")
    if n is None and best_of is None:  # nearly every request: asked once
        return 1
    return max(1, _whole(n), _whole(best_of))


def _whole(value: Any) -> int:
    if isinstance(value, bool):
        return 1
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value if isinstance(value, int) else 1


class Estimator:
    def __init__(self, pricing: Pricing, counter: Counter | None = None):
        self.pricing = pricing
        self.counter = counter or Counter()
        self.overhead = Overhead(self.counter)
        self.sends = Sends(self.counter)

    def bound(self, request: Request) -> Bound:
        """One request's bound; a conversation's covers all its turns (not its re-asks: `sent`)."""
        task_type = TASKS[request.type]
        if not task_type.chat_family:
            return self._unit_bound(request, task_type.billing)
        worst, note = (request.max_tokens, None) if request.max_tokens is not None else self._limit(request)
        # `n` answers (and legacy `best_of`) are each billed up to max_tokens; the prompt once.
        each = choices(request.body)
        expected = self._expected(request, worst) * each
        extra = self.overhead.of(request.model, request.endpoint, request.body)
        if request.turns:  # each turn sends the history, every earlier answer at its most (sends.py)
            turns = len(request.turns)
            prompt = self.sends.turns(request, worst or 0) + Count(extra.tokens * turns, extra.approximate)
            return Bound(prompt, None if worst is None else worst * each * turns, expected * turns, note)
        prompt = self.counter.body(request.endpoint, request.body)
        prompt = prompt if extra is ZERO else prompt + extra
        images = most_in(request.model, request.endpoint, request.body)
        if images:
            prompt = Count(prompt.tokens + images, prompt.approximate)
        return Bound(prompt, None if worst is None else worst * each, expected, note, images=images)

    def sent(self, request: Request, bound: Bound) -> tuple[Count, int | None]:
        """The prompt and completion tokens of all an item may send at its worst: its request (or
        turns), and each re-ask of a structured answer, sending it all again and more (sends.py)."""
        if not request.reask:
            return bound.prompt, bound.worst
        prompt = self.sends.reasks(request, bound.prompt.tokens, self._limit(request)[0] or 0)
        return Count(prompt, True), None if bound.worst is None else bound.worst * (1 + request.reask)

    def _limit(self, request: Request) -> tuple[int | None, str | None]:
        """The most one answer may take (None: not known), and a note when max_tokens is not set."""
        if request.max_tokens is not None:
            return request.max_tokens, None
        if request.endpoint == "/completions":
            return COMPLETIONS_DEFAULT_MAX, "max_tokens not set: the API's default of 16"
        worst = self.pricing.output_limit(request.model)
        if worst:
            return worst, f"max_tokens not set: the model's output limit ({worst:,})"
        return worst, "max_tokens not set and the model's output limit is unknown"

    def _unit_bound(self, request: Request, billing: str) -> Bound:
        """Endpoints without completions: embeddings bill their input tokens, moderation is free,
        images, speech and transcription bill per image, character or minute."""
        if billing in ("tokens", "free"):
            prompt = self.counter.body(request.endpoint, request.body) if billing == "tokens" else Count(0)
            return Bound(prompt, 0, 0, billing=billing)
        fixed, note = self.pricing.worst_fixed(request.model, billing, request.body, request.units)
        note = "; ".join(n for n in (note, request.units_note) if n) or None
        return Bound(Count(0), 0, 0, note, billing, fixed)

    def _expected(self, request: Request, worst: int | None) -> int:
        if request.expected_output_tokens is not None:
            guess = request.expected_output_tokens
        elif request.type == "translate":
            source = request.body["messages"][-1]["content"]
            guess = self.counter.text(request.model, source).tokens
        else:
            guess = DEFAULT_EXPECTED_OUTPUT
        return min(guess, worst) if worst is not None else guess

    def worst_cost(self, request: Request, bound: Bound | None = None) -> float | None:
        """The most this request can cost; None when its price or its output limit is unknown."""
        bound = bound or self.bound(request)
        if bound.billing == "free":
            return 0.0
        if bound.billing != "tokens":
            return bound.fixed
        if bound.worst is None:
            return None
        # An approximate count may be low; half again is the margin a budget keeps for it (images
        # are counted at their most already).
        text = bound.prompt.tokens - bound.images
        prompt = (text * 3 // 2 if bound.prompt.approximate else text) + bound.images
        heard, aloud = heard_tokens(request.body), speaks(request.body)  # audio: at its own price
        billed = Billed(audio_in=heard, audio_out=bound.worst if aloud else 0)
        tier = request.body.get("service_tier")
        return self.pricing.cost(request.model, prompt + heard, bound.worst, tier=tier, billed=billed)


@dataclass
class _Group:
    task: str
    model: str
    billing: str = "tokens"
    requests: int = 0
    sends: float = 0.0  # HTTP requests: packed items share one
    prompt_tokens: int = 0
    reasked: int = 0  # of prompt_tokens: the re-asks' (the worst case's; the expected case asks once)
    worst_tokens: int = 0
    expected_tokens: int = 0
    worst_known: bool = True
    approximate: bool = False
    fixed: float | None = 0.0  # the sum of non-token costs; None once one is unknown
    notes: set[str] = field(default_factory=set)
    tally: Tally = field(default_factory=Tally)  # token-billed requests, by what prices them

    def add(self, other: _Group) -> None:
        """Count in the same task and model's requests from later in the job."""
        self.billing = other.billing
        self.requests += other.requests
        self.sends += other.sends
        self.prompt_tokens += other.prompt_tokens
        self.reasked += other.reasked
        self.worst_tokens += other.worst_tokens
        self.expected_tokens += other.expected_tokens
        self.worst_known &= other.worst_known
        self.approximate |= other.approximate
        self.fixed = None if self.fixed is None or other.fixed is None else self.fixed + other.fixed
        self.notes |= other.notes
        self.tally.add(other.tally)


def estimate(job: Job, pricing: Pricing | None = None, check: ItemCheck | None = None) -> list[dict[str, Any]]:
    """The dry-run table: one row per task and model in input order, then TOTAL. With `check`, the
    items are checked as they are estimated (see `dry_run`)."""
    pricing = pricing or Pricing(job.pricing, job.provider.base_url)
    estimator = Estimator(pricing)
    groups = _halves(job, check, estimator) if check is not None else None
    if groups is None:
        groups = _groups(requests(job, check, sendable=False), estimator)
    return table(groups, pricing, job.limits, estimator.counter.offline)


def dry_run(source: str | Path, overrides: Overrides) -> tuple[Job, list[dict[str, Any]]]:
    """Load and estimate a job in one walk over its items: nothing is sent, so the estimate need not
    wait for the check; it is thrown away when JobError lists the problems. (The loaded job, rows.)"""
    job, problems = read(source, overrides)
    if job is None:
        problems.raise_any()
    assert job is not None
    check = ItemCheck(problems)
    rows = estimate(job, check=check)
    problems.raise_any()
    return replace(job, count=check.rows), rows


@dataclass(frozen=True)
class _Part:
    """What a forked process found in its half of a job."""

    groups: list[_Group]
    problems: Problems
    seen: bytes  # the ids' hashes (ItemCheck.seen), as an array of int64
    offline: bool
    unloaded: list[str]  # encodings it could not load: the parent says so, once


def _halves(job: Job, check: ItemCheck, estimator: Estimator) -> list[_Group] | None:
    """The groups of a big JSONL job, checked and estimated in two processes at once, one per half
    of its lines: the same figures and problems as one walk, in about half the time on two cores.
    None where that does not pay (a small job) or cannot be done safely: no fork (not Linux), a
    parent with threads (a fork copies their locks, held or not), or a daemonic process (which
    may have no children)."""
    if job.fmt != "jsonl" or job.path is None or sys.platform != "linux" or threading.active_count() > 1:
        return None
    size = job.path.stat().st_size
    if size < SPLIT_BYTES:
        return None
    import multiprocessing  # here: a run, which imports this module too, forks nothing (4 ms)

    if multiprocessing.current_process().daemon:
        return None
    halves = _split(job.path, size)
    if halves is None:
        return None
    first, second = halves
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_estimate_part, args=(job, second, estimator, receiver, sender), daemon=True)
    child.start()
    sender.close()
    try:
        groups = _groups(requests(job, check, first, sendable=False), estimator)
        part = None if check.problems.full else _received(receiver)
    finally:
        child.kill()
        child.join()
        receiver.close()
    if check.stopped:  # past MAX_PROBLEMS in the first half: one walk ends there too
        return groups
    if part is None or not _adds_up(check, part):
        # Its process died, or an id of its half is in this one too, or the two halves' problems
        # pass MAX_PROBLEMS together (one walk would have stopped): walk that half here, going on
        # from this one, exactly as one walk goes.
        return _merged(groups, _groups(requests(job, check, second, sendable=False), estimator))
    check.problems.merge(part.problems)
    estimator.counter.offline |= part.offline
    for name in part.unloaded:
        estimator.counter.encoding(name)  # its warning, said here once (the other process kept quiet)
    return _merged(groups, part.groups)


def _received(receiver: Connection) -> _Part | None:
    try:
        part: _Part | None = receiver.recv()
    except EOFError:  # the process died before it sent anything
        return None
    return part


def _adds_up(check: ItemCheck, part: _Part) -> bool:
    """Whether the second half's findings add to the first's as one walk's would: no id in both,
    and all the problems within MAX_PROBLEMS. Its ids are counted in when they do."""
    if check.problems.count + part.problems.count > MAX_PROBLEMS:
        return False
    seen = array("q", part.seen)
    if not check.seen.isdisjoint(seen):
        return False
    check.elsewhere += len(seen)  # no walk follows: its ids need not join the set
    return True


def _estimate_part(job: Job, span: Span, estimator: Estimator, receiver: Connection, sender: Connection) -> None:
    """In the forked process: check and estimate `span`, and send what was found (None on failure,
    and the parent walks the span itself)."""
    # The parent's end of the pipe, closed here: once the parent is gone (killed, say), a send
    # fails at once instead of waiting forever for a reader, and this process ends.
    receiver.close()
    logging.disable(logging.WARNING)  # what is worth saying, the parent says once (see _Part.unloaded)
    try:
        check = ItemCheck(Problems(str(job.path)))
        groups = _groups(requests(job, check, span, sendable=False), estimator)
        counter = estimator.counter
        sender.send(_Part(groups, check.problems, array("q", check.seen).tobytes(), counter.offline, counter.unloaded))
    except BaseException:  # noqa: BLE001 - the parent's own walk of the span reports what went wrong
        with contextlib.suppress(OSError):  # the parent is gone
            sender.send(None)
    finally:
        sender.close()


def _split(path: Path, size: int) -> tuple[Span, Span] | None:
    """The halves of a JSONL file, split where a line starts, each with its first line's number;
    None when the first half has a line ending in a lone CR (counting those is not worth it)."""
    with path.open("rb") as handle:
        handle.seek(size // 2)
        handle.readline()
        middle = handle.tell()
        handle.seek(0)
        lines, left = 0, middle
        while left > 0 and (chunk := handle.read(min(1 << 20, left))):
            if b"\r" in chunk and chunk.count(b"\r") != chunk.count(b"\r\n"):
                return None
            lines += chunk.count(b"\n")
            left -= len(chunk)
    return Span(0, middle), Span(middle, None, lines + 1)


def _merged(groups: list[_Group], more: list[_Group]) -> list[_Group]:
    """The groups of two halves as one walk would have summed them, in the order first seen."""
    by_key = {(g.task, g.model): g for g in groups}
    for group in more:
        mine = by_key.setdefault((group.task, group.model), group)
        if mine is not group:
            mine.add(group)
    return list(by_key.values())


def _groups(stream: Iterable[Request], estimator: Estimator) -> list[_Group]:
    groups: dict[tuple[str, str], _Group] = {}
    for request in stream:
        key = (request.task, request.model)
        group = groups.get(key) or groups.setdefault(key, _Group(*key))
        bound = estimator.bound(request)
        group.billing = bound.billing
        group.fixed = None if group.fixed is None or bound.fixed is None else group.fixed + bound.fixed
        group.requests += len(request.turns) or 1
        group.sends += 1 / request.pack_size if request.pack_size else len(request.turns) or 1
        prompt, worst = estimator.sent(request, bound) if request.reask else (bound.prompt, bound.worst)
        group.prompt_tokens += prompt.tokens
        group.approximate |= prompt.approximate or bound.images > 0
        if bound.images:
            group.notes.add(IMAGES_AT_MOST)
        group.expected_tokens += bound.expected
        bucketed = bound.billing == "tokens" and group.tally.count(
            estimator.pricing, request, prompt.tokens, worst or 0, bound.expected
        )
        if worst is None:
            group.worst_known = False
        else:
            group.worst_tokens += worst
        if request.reask:
            if not bucketed:  # a tier's or audio's bucket keeps its re-asks' prompts in its expected cost too
                group.reasked += prompt.tokens - bound.prompt.tokens
            group.notes.add(REASKS.format(count(request.reask, "re-ask")))
        if bound.note:
            group.notes.add(bound.note)
    return list(groups.values())


def table(groups: list[_Group], pricing: Pricing, limits: Limits, offline: bool) -> list[dict[str, Any]]:
    rows = [_row(g, pricing, limits) for g in groups]
    total: dict[str, Any] = {"task": "TOTAL", "model": ""}
    for column in ("requests", "prompt_tokens", "max_completion_tokens"):
        values = [r[column] for r in rows]
        total[column] = None if None in values else sum(values)
    for column in ("cost_usd_max", "cost_usd_expected", "cost_usd_batch"):  # of the priced rows
        known = [r[column] for r in rows if r[column] is not None]
        total[column] = round(sum(known), 10) if known else None
    whole = _Group(
        "TOTAL",
        "",
        requests=sum(g.requests for g in groups),
        sends=sum(g.sends for g in groups),
        prompt_tokens=sum(g.prompt_tokens for g in groups),
        worst_tokens=sum(g.worst_tokens for g in groups),
        expected_tokens=sum(g.expected_tokens for g in groups),
    )
    # Each model is paced by its own rpm and tpm (as the API limits each), all at once.
    models: dict[str, _Group] = {}
    for g in groups:
        m = models.setdefault(g.model, _Group("", g.model))
        m.sends, m.prompt_tokens, m.worst_tokens = (
            m.sends + g.sends,
            m.prompt_tokens + g.prompt_tokens,
            m.worst_tokens + g.worst_tokens,
        )
    total["minutes"] = round(
        max([_concurrency_minutes(whole, limits)] + [_rate_minutes(m, limits) for m in models.values()]), 2
    )
    notes = left_out(rows)
    halved = sorted({r["model"] for r in rows if BATCH_HALVED in r["notes"]})
    if halved:
        notes.append(f"batch cost of {', '.join(halved)} taken as half the online cost (no batch price listed)")
    if any(g.approximate for g in groups) or offline:
        notes.append("approximate: some token counts are estimates" + (" (tiktoken could not load)" if offline else ""))
    total["notes"] = "; ".join(notes)
    return rows + [total]


def _row(group: _Group, pricing: Pricing, limits: Limits) -> dict[str, Any]:
    sums = (group.prompt_tokens, group.worst_tokens, group.expected_tokens)
    costs = None
    if group.billing == "tokens":
        costs = group.tally.costs(pricing, group.model, sums, group.notes)
        if group.reasked:  # the expected case asks once: re-asks' prompts raise the worst case alone
            once = (group.prompt_tokens - group.reasked, *sums[1:])
            costs = (costs[0], *group.tally.costs(pricing, group.model, once, group.notes)[1:])
    notes = sorted(group.notes)
    worst = group.worst_tokens if group.worst_known else None
    if costs is not None:
        if pricing.price(group.model) is None:
            notes.insert(0, "no price known for this model")
        max_cost, expected, batch = costs
        max_cost = max_cost if group.worst_known else None
    else:  # images, characters, minutes, or free: the same whatever the model answers
        max_cost = expected = group.fixed
        # speech and transcription are no Batch API endpoints: batch mode sends them online
        online_only = group.billing in ("characters", "minutes")
        batch = None if expected is None else expected * (1.0 if online_only else BATCH_DISCOUNT)
        if (
            group.billing != "free"
            and pricing.unit_price(group.model, group.billing) is None
            and not pricing.price(group.model, warn=False)
        ):
            notes.insert(0, "no price known for this model")
    if group.approximate:
        notes.append("approximate token count")
    merged = pricing.provenance(group.model)
    if merged:
        notes.append(merged)
    return {
        "task": group.task,
        "model": group.model,
        "requests": group.requests,
        "prompt_tokens": group.prompt_tokens,
        "max_completion_tokens": worst,
        "cost_usd_max": _round(max_cost),
        "cost_usd_expected": _round(expected),
        "cost_usd_batch": _round(batch),
        "minutes": _minutes(group, limits),
        "notes": "; ".join(notes),
    }


def _round(cost: float | None) -> float | None:
    return None if cost is None else round(cost, 10)


def _minutes(group: _Group, limits: Limits) -> float:
    """The longest of: the request rate, the token rate (prompt + max_tokens, as the limiter
    counts them) and the concurrency at a typical latency. Packed items count as one request."""
    return round(max(_concurrency_minutes(group, limits), _rate_minutes(group, limits)), 2)


def _concurrency_minutes(group: _Group, limits: Limits) -> float:
    return (group.sends * FIRST_TOKEN_S + group.expected_tokens / TOKENS_PER_S) / limits.concurrency / 60


def _rate_minutes(group: _Group, limits: Limits) -> float:
    bounds = [0.0]
    if limits.rpm:
        bounds.append(group.sends / limits.rpm)
    if limits.tpm:
        bounds.append((group.prompt_tokens + group.worst_tokens) / limits.tpm)
    return max(bounds)


def budget_verdict(budget: float, worst: float | None, expected: float | None) -> tuple[bool, str]:
    """Whether a job fits its budget, and a sentence saying so: (over, sentence). `worst` and
    `expected` are the estimate's totals (None when some model has no price)."""
    limit = f"the budget of ${budget:.6g}"
    if worst is None or expected is None:
        return True, f"{limit} cannot bound a model with no price: a budgeted run stops before sending to it"
    if expected > budget:
        return True, (
            f"over {limit}: the expected cost is ${expected:,.6f}, so the run would stop at the budget "
            "and leave the rest of the items skipped"
        )
    if worst > budget:
        return True, (
            f"the worst case (${worst:,.6f}) is over {limit}: the expected ${expected:,.6f} fits, but answers "
            "as long as max_tokens would stop the run at the budget"
        )
    return False, f"within {limit}: the worst case is ${worst:,.6f}"
