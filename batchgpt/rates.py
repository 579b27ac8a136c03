"""A model's prices, kind of token by kind, and the arithmetic of one answer's bill.

A Price holds USD per 1M tokens for each kind of token (text in and out, cache reads and
writes, audio and images in and out) in each context its provider prices apart: the standard
one, the Batch API's, and each service tier's (flex, priority). A rate may rise with a
request's input (a long-context tier): past a tier's threshold every token of the request costs
that tier's price, as the providers bill it (genai-prices' TieredPrices, a "cliff"). Nothing
here does I/O: pricing.py fills a Price from the job's `pricing:`, genai-prices and its tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .records import PLAIN, Billed

MILLION = 1_000_000
# The kinds of token priced apart, each USD per 1M tokens.
KINDS = (
    "input",
    "output",
    "cached_input",
    "cache_write",
    "input_audio",
    "output_audio",
    "input_image",
    "output_image",
)
STANDARD, BATCH = "standard", "batch"
# service_tier values billed at the standard price: unset, `auto` and `default` (the project's
# own tier), and `scale` (Scale Tier units are bought ahead, not billed per token here).
STANDARD_TIERS = frozenset({None, "", "auto", "default", "standard", "scale"})
_OUTPUT_KINDS = frozenset({"output", "output_audio", "output_image"})


@dataclass(frozen=True)
class Rate:
    """USD per 1M tokens; `tiers` are (threshold, price) pairs, ascending: a request whose input
    passes a threshold pays that tier's price for every token of that kind."""

    base: float
    tiers: tuple[tuple[int, float], ...] = ()

    def at(self, input_tokens: int) -> float:
        price = self.base
        for start, tier_price in self.tiers:
            if input_tokens > start:
                price = tier_price
        return price

    def scaled(self, factor: float) -> Rate:
        return Rate(self.base * factor, tuple((start, price * factor) for start, price in self.tiers))


Rates = Mapping[str, Rate]


@dataclass(frozen=True)
class Price:
    """A model's rates by context (STANDARD, BATCH, or a service tier) and kind, and where each
    came from (`origins`, keyed "context kind": job, genai-prices or batchgpt's own table)."""

    rates: Mapping[str, Rates]
    origins: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def flat(
        cls,
        input: float,
        output: float,
        cached_input: float | None = None,
        batch_input: float | None = None,
        batch_output: float | None = None,
        source: str = "genai-prices",
    ) -> Price:
        """A price with one rate a kind: input, output, cached input, and the Batch API's."""
        standard = {"input": Rate(input), "output": Rate(output)}
        if cached_input is not None:
            standard["cached_input"] = Rate(cached_input)
        rates: dict[str, Rates] = {STANDARD: standard}
        if batch_input is not None:
            rates[BATCH] = {"input": Rate(batch_input), **({"output": Rate(batch_output)} if batch_output else {})}
        return cls(rates, {f"{c} {k}": source for c, kinds in rates.items() for k in kinds})

    def _base(self, context: str, kind: str) -> float | None:
        rate = self.rates.get(context, {}).get(kind)
        return None if rate is None else rate.base

    @property
    def input(self) -> float:
        return self._base(STANDARD, "input") or 0.0

    @property
    def output(self) -> float:
        return self._base(STANDARD, "output") or 0.0

    @property
    def cached_input(self) -> float | None:
        return self._base(STANDARD, "cached_input")

    @property
    def batch_input(self) -> float | None:
        return self._base(BATCH, "input")

    @property
    def batch_output(self) -> float | None:
        return self._base(BATCH, "output")

    @property
    def source(self) -> str:
        """Where its rates came from: one name, or several joined by ' + '."""
        return " + ".join(sorted(set(self.origins.values()))) or "genai-prices"

    def context(self, batch: bool = False, tier: str | None = None) -> Rates | None:
        """The rates of the Batch API (`batch`) or of a service tier; None when the table has no
        price there. Kinds the context leaves out cost the standard rate scaled as that context
        scales the input (or, for output kinds, the output) price, cached input included."""
        standard = self.rates.get(STANDARD, {})
        if not batch and tier in STANDARD_TIERS:
            return standard
        variant = self.rates.get(BATCH if batch else str(tier))
        if variant is None:
            return None
        merged = dict(variant)
        for kind, rate in standard.items():
            if kind not in merged:
                merged[kind] = rate.scaled(_ratio(variant, standard, "output" if kind in _OUTPUT_KINDS else "input"))
        return merged

    def cost(
        self,
        prompt: int,
        completion: int,
        cached: int = 0,
        batch: bool = False,
        billed: Billed = PLAIN,
        tier: str | None = None,
    ) -> float | None:
        """USD for one answer; None when a kind it used has no price in its context."""
        rates = self.context(batch, tier)
        return None if rates is None else bill(rates, prompt, completion, cached, billed)

    def thresholds(self) -> tuple[int, ...]:
        """Every input size past which some rate of it rises, ascending."""
        starts = {start for kinds in self.rates.values() for rate in kinds.values() for start, _ in rate.tiers}
        return tuple(sorted(starts))

    def to_json(self) -> dict[str, Any]:
        rates = {
            c: {k: [r.base, [list(t) for t in r.tiers]] for k, r in kinds.items()} for c, kinds in self.rates.items()
        }
        return {"rates": rates, "origins": dict(self.origins)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Price:
        rates = {
            context: {
                kind: Rate(float(base), tuple((int(s), float(p)) for s, p in tiers))
                for kind, (base, tiers) in kinds.items()
            }
            for context, kinds in data["rates"].items()
        }
        return cls(rates, dict(data["origins"]))


def _ratio(variant: Rates, standard: Rates, side: str) -> float:
    """How a context scales the standard `side` price (input or output); the other side's ratio
    when it lists only that one (a job's `batch_input` alone), else 1."""
    for name in (side, "output" if side == "input" else "input"):
        mine, theirs = variant.get(name), standard.get(name)
        if mine is not None and theirs is not None and theirs.base:
            return mine.base / theirs.base
    return 1.0


def parts(
    rates: Rates, prompt: int, completion: int, cached: int, billed: Billed, at: int | None = None
) -> list[tuple[str, int, float | None]]:
    """(kind, tokens, USD per 1M or None when unpriced) for each kind an answer used. The kinds
    are parts of the prompt or the completion; what no detail claims is text. Cached tokens
    without a cached price, cache writes without a write price and images without an image price
    cost the plain input (or output) rate, as the providers bill them; audio has no such fallback
    (its price is many times the text's). `at`: the input that picks a long-context tier, when
    these are the tokens of many requests (default: `prompt`, one request's)."""
    threshold = prompt if at is None else at

    def rate(kind: str, fallback: str | None = None) -> float | None:
        found = rates.get(kind) or (rates.get(fallback) if fallback else None)
        return None if found is None else found.at(threshold)

    cached = min(cached, prompt)
    write = min(billed.cache_write, prompt - cached)
    uncached = prompt - cached - write
    audio_in = min(billed.audio_in, uncached)
    image_in = min(billed.image_in, uncached - audio_in)
    audio_out = min(billed.audio_out, completion)
    image_out = min(billed.image_out, completion - audio_out)
    found = (
        ("input", uncached - audio_in - image_in, None),
        ("cached_input", cached, "input"),
        ("cache_write", write, "input"),
        ("input_audio", audio_in, None),
        ("input_image", image_in, "input"),
        ("output", completion - audio_out - image_out, None),
        ("output_audio", audio_out, None),
        ("output_image", image_out, "output"),
    )
    # each answer is priced this way: the rates of the kinds it did not use are not looked up
    return [(kind, tokens, rate(kind, fallback)) for kind, tokens, fallback in found if tokens]


def bill(
    rates: Rates, prompt: int, completion: int, cached: int = 0, billed: Billed = PLAIN, at: int | None = None
) -> float | None:
    """USD for one answer at `rates`; None when a kind it used has no price."""
    total = 0.0
    for _, tokens, price in parts(rates, prompt, completion, cached, billed, at):
        if price is None:
            return None
        total += tokens * price
    return total / MILLION


def unpriced_kinds(
    rates: Rates, prompt: int, completion: int, cached: int, billed: Billed, at: int | None = None
) -> list[str]:
    """The kinds an answer used that have no price in `rates`."""
    return [kind for kind, _, price in parts(rates, prompt, completion, cached, billed, at) if price is None]
