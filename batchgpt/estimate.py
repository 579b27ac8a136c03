"""What a job, or one request, may cost before anything is sent: the dry run and the budget's worst case.

Prompt tokens are counted with tiktoken exactly as the API counts them. Completion tokens are
bounded by `max_tokens` (or, when a job sets none, the model's output limit, or the legacy
completions endpoint's default of 16) for the worst case, and guessed for the expected case:
about the source length for a translation, else `expected_output_tokens`, else 256.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from .jobs import Job, requests
from .pricing import Pricing
from .records import Limits, Request
from .tokens import Count, Counter

DEFAULT_EXPECTED_OUTPUT = 256
COMPLETIONS_DEFAULT_MAX = 16  # /v1/completions stops at 16 tokens when max_tokens is not sent
# For `minutes` when no rate limit binds: a typical answer starts after about half a second and
# streams at about 80 tokens a second.
FIRST_TOKEN_S = 0.5
TOKENS_PER_S = 80.0
COLUMNS = ["task", "model", "requests", "prompt_tokens", "max_completion_tokens", "cost_usd_max",
           "cost_usd_expected", "cost_usd_batch", "minutes", "notes"]


@dataclass(frozen=True)
class Bound:
    """One request's prompt tokens and its completion tokens at worst and as expected."""

    prompt: Count
    worst: int | None
    expected: int
    note: str | None = None


class Estimator:
    def __init__(self, pricing: Pricing, counter: Counter | None = None):
        self.pricing = pricing
        self.counter = counter or Counter()

    def bound(self, request: Request) -> Bound:
        prompt = self.counter.body(request.endpoint, request.body)
        worst, note = request.max_tokens, None
        if worst is None:
            if request.endpoint == "/completions":
                worst, note = COMPLETIONS_DEFAULT_MAX, "max_tokens not set: the API's default of 16"
            else:
                worst = self.pricing.output_limit(request.model)
                note = (f"max_tokens not set: the model's output limit ({worst:,})" if worst
                        else "max_tokens not set and the model's output limit is unknown")
        return Bound(prompt, worst, self._expected(request, worst), note)

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
        if bound.worst is None:
            return None
        # An approximate count may be low; half again is the margin a budget keeps for it.
        prompt = bound.prompt.tokens * 3 // 2 if bound.prompt.approximate else bound.prompt.tokens
        return self.pricing.cost(request.model, prompt, bound.worst)


@dataclass
class _Group:
    task: str
    model: str
    requests: int = 0
    prompt_tokens: int = 0
    worst_tokens: int = 0
    expected_tokens: int = 0
    worst_known: bool = True
    approximate: bool = False
    notes: set[str] = field(default_factory=set)


def estimate(job: Job, pricing: Pricing | None = None) -> list[dict]:
    """The dry-run table: one row per task and model in input order, then TOTAL."""
    pricing = pricing or Pricing(job.pricing, job.provider.base_url)
    estimator = Estimator(pricing)
    return table(_groups(requests(job), estimator), pricing, job.limits, estimator.counter.offline)


def _groups(stream: Iterable[Request], estimator: Estimator) -> list[_Group]:
    groups: dict[tuple[str, str], _Group] = {}
    for request in stream:
        key = (request.task, request.model)
        group = groups.get(key) or groups.setdefault(key, _Group(*key))
        bound = estimator.bound(request)
        group.requests += 1
        group.prompt_tokens += bound.prompt.tokens
        group.approximate |= bound.prompt.approximate
        group.expected_tokens += bound.expected
        if bound.worst is None:
            group.worst_known = False
        else:
            group.worst_tokens += bound.worst
        if bound.note:
            group.notes.add(bound.note)
    return list(groups.values())


def table(groups: list[_Group], pricing: Pricing, limits: Limits, offline: bool) -> list[dict]:
    rows = [_row(g, pricing, limits) for g in groups]
    total = {"task": "TOTAL", "model": ""}
    for column in ("requests", "prompt_tokens", "max_completion_tokens"):
        values = [r[column] for r in rows]
        total[column] = None if None in values else sum(values)
    for column in ("cost_usd_max", "cost_usd_expected", "cost_usd_batch"):
        values = [r[column] for r in rows]
        total[column] = None if None in values or not values else round(sum(values), 10)
    whole = _Group("TOTAL", "", sum(g.requests for g in groups), sum(g.prompt_tokens for g in groups),
                   sum(g.worst_tokens for g in groups), sum(g.expected_tokens for g in groups))
    total["minutes"] = _minutes(whole, limits)
    notes = []
    unknown = sorted({g.model for g in groups if pricing.price(g.model) is None})
    if unknown:
        notes.append(f"incomplete: no price for {', '.join(unknown)}")
    no_batch = sorted({r["model"] for r in rows if r["cost_usd_batch"] is None and r["cost_usd_expected"] is not None})
    if no_batch:
        notes.append(f"no Batch API price for {', '.join(no_batch)}")
    if any(g.approximate for g in groups) or offline:
        notes.append("approximate: some token counts are estimates" + (" (tiktoken could not load)" if offline else ""))
    total["notes"] = "; ".join(notes)
    return rows + [total]


def _row(group: _Group, pricing: Pricing, limits: Limits) -> dict:
    price = pricing.price(group.model)
    notes = sorted(group.notes)
    if price is None:
        notes.insert(0, "no price known for this model")
    if group.approximate:
        notes.append("approximate token count")
    worst = group.worst_tokens if group.worst_known else None

    def cost(completion: int | None, batch: bool = False) -> float | None:
        if price is None or completion is None:
            return None
        value = price.cost(group.prompt_tokens, completion, batch=batch)
        return None if value is None else round(value, 10)

    batch = cost(group.expected_tokens, batch=True)
    if price is not None and batch is None:
        notes.append("no Batch API price")
    return {"task": group.task, "model": group.model, "requests": group.requests,
            "prompt_tokens": group.prompt_tokens, "max_completion_tokens": worst,
            "cost_usd_max": cost(worst), "cost_usd_expected": cost(group.expected_tokens),
            "cost_usd_batch": batch, "minutes": _minutes(group, limits), "notes": "; ".join(notes)}


def _minutes(group: _Group, limits: Limits) -> float:
    """The longest of: the request rate, the token rate (prompt + max_tokens, as the limiter
    counts them) and the concurrency at a typical latency."""
    bounds = [group.requests * (FIRST_TOKEN_S + group.expected_tokens / max(group.requests, 1) / TOKENS_PER_S)
              / limits.concurrency / 60]
    if limits.rpm:
        bounds.append(group.requests / limits.rpm)
    if limits.tpm:
        bounds.append((group.prompt_tokens + group.worst_tokens) / limits.tpm)
    return round(max(bounds), 2)
