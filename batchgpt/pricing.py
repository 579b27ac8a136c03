"""Model prices in USD: the job's `pricing` first, then the genai-prices table.

An unknown model has no price, never a price of zero: its cost is None and it is named once.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Mapping

log = logging.getLogger("batchgpt")
_MILLION = 1_000_000

# Output token limits, for a worst case when a job sets no max_tokens. genai-prices has none.
# Source: OpenAI's model pages (developers.openai.com/api/docs/models/*), read 2026-11.
# Longest prefix first; a job's `pricing: {model: {max_output_tokens: N}}` wins.
OUTPUT_LIMITS: tuple[tuple[str, int], ...] = (
    ("gpt-5", 128_000), ("o1-mini", 65_536), ("o1", 100_000), ("o3", 100_000), ("o4-mini", 100_000),
    ("gpt-4.1", 32_768), ("gpt-4o-mini", 16_384), ("gpt-4o", 16_384), ("chatgpt-4o", 16_384),
    ("gpt-4-turbo", 4_096), ("gpt-4", 8_192), ("gpt-3.5-turbo", 4_096),
)


@dataclass(frozen=True)
class Price:
    """USD per 1M tokens. `batch_*` are the Batch API's prices where the provider has them."""

    input: float
    output: float
    cached_input: float | None = None
    batch_input: float | None = None
    batch_output: float | None = None
    source: str = "genai-prices"

    def cost(self, prompt: int, completion: int, cached: int = 0, batch: bool = False) -> float | None:
        if batch:
            if self.batch_input is None:
                return None
            return (prompt * self.batch_input + completion * (self.batch_output or 0.0)) / _MILLION
        cached = min(cached, prompt) if self.cached_input is not None else 0
        cached_price = self.cached_input or 0.0
        return ((prompt - cached) * self.input + cached * cached_price + completion * self.output) / _MILLION


class Pricing:
    def __init__(self, overrides: Mapping[str, Mapping[str, float]] | None = None, base_url: str | None = None):
        self._overrides = dict(overrides or {})
        self._base_url = base_url
        self._cache: dict[str, Price | None] = {}
        self.unknown: list[str] = []

    def price(self, model: str) -> Price | None:
        if model not in self._cache:
            self._cache[model] = self._lookup(model)
            if self._cache[model] is None:
                self.unknown.append(model)
                log.warning("no price known for model %r: its cost is left empty (add it under `pricing:` "
                            "in the job to price it)", model)
        return self._cache[model]

    def output_limit(self, model: str) -> int | None:
        override = self._overrides.get(model, {}).get("max_output_tokens")
        if override:
            return int(override)
        name = model.rsplit("/", 1)[-1]
        return next((limit for prefix, limit in OUTPUT_LIMITS if name.startswith(prefix)), None)

    def cost(self, model: str, prompt: int | None, completion: int | None, cached: int = 0) -> float | None:
        price = self.price(model)
        if price is None or prompt is None:
            return None
        cost = price.cost(prompt, completion or 0, cached)
        return None if cost is None else round(cost, 10)  # no float dust like 1.3199999999999999e-05

    def _lookup(self, model: str) -> Price | None:
        if model in self._overrides:
            spec = self._overrides[model]
            if "input" not in spec and "output" not in spec:
                return None
            return Price(
                input=spec.get("input", 0.0), output=spec.get("output", 0.0),
                cached_input=spec.get("cached_input"), batch_input=spec.get("batch_input"),
                batch_output=spec.get("batch_output"), source="job",
            )
        return _genai_price(model, self._base_url)


def _genai_price(model: str, base_url: str | None) -> Price | None:
    try:
        from genai_prices import Usage, calc_price
    except ImportError:  # pragma: no cover - a declared dependency
        return None
    found = None
    attempts: list[dict[str, Any]] = [{"provider_api_url": base_url}] if base_url else []
    for extra in attempts + [{"provider_id": "openai"}]:
        try:
            found = calc_price(Usage(input_tokens=1), model_ref=model, **extra)
            break
        except (LookupError, ValueError):
            continue
    if found is None:
        return None
    standard = found.model_price
    variants = getattr(found.model, "price_variants", None) or []
    has_batch = any(getattr(v, "when", None) == {"processing": "batch"} for v in variants)
    batch = found.model.get_prices(_now(), {"processing": "batch"}) if has_batch else None
    values = {
        "input": _per_m(getattr(standard, "input_mtok", None)),
        "output": _per_m(getattr(standard, "output_mtok", None)),
        "cached_input": _per_m(getattr(standard, "cache_read_mtok", None)),
    }
    if values["input"] is None and values["output"] is None:
        return None
    if batch is not None:
        values["batch_input"] = _per_m(getattr(batch, "input_mtok", None))
        values["batch_output"] = _per_m(getattr(batch, "output_mtok", None))
    return Price(input=values.pop("input") or 0.0, output=values.pop("output") or 0.0, **values)


def _now():
    from datetime import datetime, timezone

    return datetime.now(tz=timezone.utc)


def _per_m(value: Any) -> float | None:
    """A flat per-1M price; tiered prices (by context length) are priced at their base tier."""
    if value is None:
        return None
    if isinstance(value, Decimal | int | float):
        return float(value)
    base = getattr(value, "base", None)
    return float(base) if base is not None else None
