"""The dry run's token costs: each request's tokens counted where its prices put them, summed, and
priced once per bucket (a million requests are not priced one by one).

A bucket is a service tier (the one a request asks for) and a long-context level (how many of
the model's input thresholds its prompt passes: past one, every token costs that tier's price).
A model without Batch API prices is taken at half its online price, as pricing.charge bills it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .pricing import BATCH_DISCOUNT, Pricing
from .rates import STANDARD_TIERS
from .records import Billed, Request
from .unitprices import speaks
from .words import count

BATCH_HALVED = "batch price: half the online one"  # the note of a model with no batch price listed
AUDIO_PRICED = (
    "audio at the model's audio prices: input_audio parts at 10 tokens a second plus half, and an "
    "answer asked aloud (modalities: audio) all audio"
)
Costs = tuple[float | None, float | None, float | None]  # worst, expected, batch; None: unknown


@dataclass
class Tally:
    """A task and model's token-billed requests whose prices are not the model's plain ones (a
    service tier, a long-context model, audio): (tier, level) -> [prompt, worst, expected, heard,
    spoken at worst, spoken as expected] tokens (heard and spoken: audio, within the others). The
    plain requests are the group's sums less these (`counted`), and cost nothing to count."""

    buckets: dict[tuple[str | None, int], list[int]] = field(default_factory=dict)
    counted: list[int] = field(default_factory=lambda: [0, 0, 0])  # of the group's sums: prompt, worst, expected
    thresholds: tuple[int, ...] | None = None  # the model's long-context thresholds, once looked up

    def count(self, pricing: Pricing, request: Request, tokens: tuple[int, int, int], heard: int) -> bool:
        """Count a request's (prompt, worst, expected) tokens and `heard` audio input tokens (not
        in its prompt's) at the prices they are billed at; False when they are the plain ones (it
        is then only in the group's sums)."""
        thresholds = self.thresholds
        if thresholds is None:
            thresholds = self.thresholds = pricing.thresholds(request.model)
        body = request.body
        tier = body.get("service_tier")
        if not (thresholds or heard or tier or "modalities" in body):
            return False  # nearly every request
        prompt, worst, expected = tokens
        for n, value in enumerate(tokens):
            self.counted[n] += value
        level = sum(prompt + heard > t for t in thresholds)
        aloud = speaks(body)
        self._add(
            (None if tier in STANDARD_TIERS else str(tier), level),
            [prompt + heard, worst, expected, heard, worst if aloud else 0, expected if aloud else 0],
        )
        return True

    def _add(self, key: tuple[str | None, int], tokens: list[int]) -> None:
        mine = self.buckets.setdefault(key, [0] * 6)
        for n, value in enumerate(tokens):
            mine[n] += value

    def add(self, other: Tally) -> None:
        self.thresholds = other.thresholds if self.thresholds is None else self.thresholds
        for n, value in enumerate(other.counted):
            self.counted[n] += value
        for key, tokens in other.buckets.items():
            self._add(key, tokens)

    def costs(self, pricing: Pricing, model: str, sums: tuple[int, int, int], notes: set[str]) -> Costs:
        """(worst, expected, batch) USD of the group whose token sums (prompt, worst, expected) are
        `sums`, each bucket at its prices; what they rest on goes in `notes`."""
        plain = [total - counted for total, counted in zip(sums, self.counted, strict=True)]
        buckets = dict(self.buckets)
        if any(plain) or not buckets:
            buckets[(None, 0)] = [
                a + b for a, b in zip(buckets.get((None, 0), [0] * 6), [*plain, 0, 0, 0], strict=True)
            ]
        worst: float | None = 0.0
        expected: float | None = 0.0
        batch: float | None = 0.0
        for (tier, level), (prompt, most, likely, heard, spoken_most, spoken) in buckets.items():
            at = 0 if level == 0 else (self.thresholds or ())[level - 1] + 1  # an input in that tier
            billed = Billed(audio_in=heard, audio_out=spoken)
            cost = pricing.cost(model, prompt, likely, tier=tier, at=at, billed=billed)
            batched = pricing.cost(model, prompt, likely, batch=True, at=at, billed=billed)
            if batched is None and cost is not None:
                batched = cost * BATCH_DISCOUNT
                notes.add(BATCH_HALVED)
            most_billed = Billed(audio_in=heard, audio_out=spoken_most)
            worst = _plus(worst, pricing.cost(model, prompt, most, tier=tier, at=at, billed=most_billed))
            expected, batch = _plus(expected, cost), _plus(batch, batched)
            if tier is not None:
                notes.add(tier_note(pricing, model, tier))
            if heard or spoken_most:
                notes.add(AUDIO_PRICED)
        return worst, expected, batch


def _plus(total: float | None, more: float | None) -> float | None:
    return None if total is None or more is None else total + more


def tier_note(pricing: Pricing, model: str, tier: str) -> str:
    """What the dry run says of requests that ask for a service tier."""
    price = pricing.price(model, warn=False)
    if price is None or price.context(tier=tier) is not None:
        return f"service_tier {tier}: priced at its {tier} price"
    if tier == "flex":
        return "service_tier flex: no flex price listed, priced at the standard price"
    return f"service_tier {tier}: no {tier} price known"


def left_out(rows: list[dict[str, Any]]) -> list[str]:
    """What a TOTAL of the priced rows leaves out: '+ 3 rows unpriced: model-x', and the rows whose
    worst case is unknown."""
    notes = []
    for column, what in (("cost_usd_expected", "unpriced"), ("cost_usd_max", "without a worst case")):
        left = [r for r in rows if r[column] is None and (what == "unpriced" or r["cost_usd_expected"] is not None)]
        if left:
            models = ", ".join(sorted({r["model"] for r in left}))
            notes.append(f"+ {count(sum(r['requests'] for r in left), 'row')} {what}: {models}")
    return notes
