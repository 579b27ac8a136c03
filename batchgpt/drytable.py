"""The dry run's table: requests summed per task and model (their tokens, costs and the notes on
them), then shaped into the rows `batchgpt estimate` prints, one per task and model in input order
and a TOTAL, with the minutes the job may take at its rate limits and concurrency.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .bounds import Estimator
from .drycosts import BATCH_HALVED, Tally, left_out
from .pricing import BATCH_DISCOUNT, Pricing
from .records import Limits, Request
from .words import count

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


@dataclass
class Group:
    """One task and model's requests, summed as the dry run walks them."""

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

    def add(self, other: Group) -> None:
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


def sums(stream: Iterable[Request], estimator: Estimator) -> list[Group]:
    """The requests of `stream` bounded and summed per task and model, in the order first seen."""
    groups: dict[tuple[str, str], Group] = {}
    for request in stream:
        key = (request.task, request.model)
        group = groups.get(key) or groups.setdefault(key, Group(*key))
        bound = estimator.bound(request)
        group.billing = bound.billing
        group.fixed = None if group.fixed is None or bound.fixed is None else group.fixed + bound.fixed
        group.requests += len(request.turns) or 1
        group.sends += 1 / request.pack_size if request.pack_size else len(request.turns) or 1
        prompt, worst = estimator.sent(request, bound) if request.reask else (bound.prompt, bound.worst)
        group.prompt_tokens += prompt.tokens
        group.approximate |= prompt.approximate
        if bound.marks:  # images of unknown size, PDF pages, unreadable audio lengths
            group.approximate = True
            group.notes.update(bound.marks)
        group.expected_tokens += bound.expected
        bucketed = bound.billing == "tokens" and group.tally.count(
            estimator.pricing, request, (prompt.tokens, worst or 0, bound.expected), bound.heard
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


def merged(groups: list[Group], more: list[Group]) -> list[Group]:
    """The groups of two halves as one walk would have summed them, in the order first seen."""
    by_key = {(g.task, g.model): g for g in groups}
    for group in more:
        mine = by_key.setdefault((group.task, group.model), group)
        if mine is not group:
            mine.add(group)
    return list(by_key.values())


def table(groups: list[Group], pricing: Pricing, limits: Limits, offline: bool) -> list[dict[str, Any]]:
    rows = [_row(g, pricing, limits) for g in groups]
    total: dict[str, Any] = {"task": "TOTAL", "model": ""}
    for column in ("requests", "prompt_tokens", "max_completion_tokens"):
        values = [r[column] for r in rows]
        total[column] = None if None in values else sum(values)
    for column in ("cost_usd_max", "cost_usd_expected", "cost_usd_batch"):  # of the priced rows
        known = [r[column] for r in rows if r[column] is not None]
        total[column] = round(sum(known), 10) if known else None
    whole = Group(
        "TOTAL",
        "",
        requests=sum(g.requests for g in groups),
        sends=sum(g.sends for g in groups),
        prompt_tokens=sum(g.prompt_tokens for g in groups),
        worst_tokens=sum(g.worst_tokens for g in groups),
        expected_tokens=sum(g.expected_tokens for g in groups),
    )
    # Each model is paced by its own rpm and tpm (as the API limits each), all at once.
    models: dict[str, Group] = {}
    for g in groups:
        m = models.setdefault(g.model, Group("", g.model))
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


def _row(group: Group, pricing: Pricing, limits: Limits) -> dict[str, Any]:
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


def _minutes(group: Group, limits: Limits) -> float:
    """The longest of: the request rate, the token rate (prompt + max_tokens, as the limiter
    counts them) and the concurrency at a typical latency. Packed items count as one request."""
    return round(max(_concurrency_minutes(group, limits), _rate_minutes(group, limits)), 2)


def _concurrency_minutes(group: Group, limits: Limits) -> float:
    return (group.sends * FIRST_TOKEN_S + group.expected_tokens / TOKENS_PER_S) / limits.concurrency / 60


def _rate_minutes(group: Group, limits: Limits) -> float:
    bounds = [0.0]
    if limits.rpm:
        bounds.append(group.sends / limits.rpm)
    if limits.tpm:
        bounds.append((group.prompt_tokens + group.worst_tokens) / limits.tpm)
    return max(bounds)
