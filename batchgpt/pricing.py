"""Model prices in USD: the job's `pricing` first, then the genai-prices table.

An unknown model has no price, never a price of zero: its cost is None and it is named once.
What genai-prices says of a model is kept for the day in the user's cache folder, keyed by its
version: importing it and resolving a model takes 0.25 s, which every cron run paid.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from .errors import OutputError
from .files import atomic_write

log = logging.getLogger(__name__)
_MILLION = 1_000_000

# Output token limits, for a worst case when a job sets no max_tokens. genai-prices has none.
# Source: OpenAI's model pages (developers.openai.com/api/docs/models/*), read 2026-11.
# Longest prefix first; a job's `pricing: {model: {max_output_tokens: N}}` wins.
OUTPUT_LIMITS: tuple[tuple[str, int], ...] = (
    ("gpt-5", 128_000),
    ("o1-mini", 65_536),
    ("o1", 100_000),
    ("o3", 100_000),
    ("o4-mini", 100_000),
    ("gpt-4.1", 32_768),
    ("gpt-4o-mini", 16_384),
    ("gpt-4o", 16_384),
    ("chatgpt-4o", 16_384),
    ("gpt-4-turbo", 4_096),
    ("gpt-4", 8_192),
    ("gpt-3.5-turbo", 4_096),
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
        cached = min(cached, prompt) if self.cached_input is not None else 0
        cached_price = self.cached_input or 0.0
        prompt_cost = (prompt - cached) * self.input + cached * cached_price
        if batch:  # the batch prices scale the online ones, cached input included
            if self.batch_input is None:
                return None
            prompt_cost *= self.batch_input / self.input if self.input else 0.0
            output_price = self.batch_output if self.batch_output is not None else self.output * BATCH_DISCOUNT
            return (prompt_cost + completion * output_price) / _MILLION
        return (prompt_cost + completion * self.output) / _MILLION


# Prices of what is not billed per token; genai-prices lists dall-e-3 not at all and tts-1 and
# whisper-1 at $0. A job's `pricing:` (per_image, per_1m_chars, per_minute) overrides these.
# USD per image by (model, quality, size): openai.com/pricing as kept in kevinhermawan/Canvas
# model-info.json (2023-12-25) and one-api relay/billing/ratio/image.go; gpt-image-1 from
# developers.openai.com/ja-JP/api/docs/models/gpt-image-1 (read 2026-11), where it is an
# approximation: the API bills gpt-image tokens, and an answer's usage is priced instead.
IMAGE_PRICES: dict[tuple[str, str, str], float] = {
    ("dall-e-3", "standard", "1024x1024"): 0.040,
    ("dall-e-3", "standard", "1792x1024"): 0.080,
    ("dall-e-3", "standard", "1024x1792"): 0.080,
    ("dall-e-3", "hd", "1024x1024"): 0.080,
    ("dall-e-3", "hd", "1792x1024"): 0.120,
    ("dall-e-3", "hd", "1024x1792"): 0.120,
    ("dall-e-2", "standard", "1024x1024"): 0.020,
    ("dall-e-2", "standard", "512x512"): 0.018,
    ("dall-e-2", "standard", "256x256"): 0.016,
    ("gpt-image-1", "low", "1024x1024"): 0.011,
    ("gpt-image-1", "low", "1024x1536"): 0.016,
    ("gpt-image-1", "low", "1536x1024"): 0.016,
    ("gpt-image-1", "medium", "1024x1024"): 0.042,
    ("gpt-image-1", "medium", "1024x1536"): 0.063,
    ("gpt-image-1", "medium", "1536x1024"): 0.063,
    ("gpt-image-1", "high", "1024x1024"): 0.167,
    ("gpt-image-1", "high", "1024x1536"): 0.25,
    ("gpt-image-1", "high", "1536x1024"): 0.25,
}
_IMAGE_DEFAULTS = {
    "dall-e-3": ("standard", "1024x1024"),
    "dall-e-2": ("standard", "1024x1024"),
    "gpt-image-1": ("high", "1024x1024"),
}  # the API's defaults (auto is priced as high)
# USD per 1M characters: developers.openai.com/api/docs/models/tts-1 (read 2026-11); one-api agrees.
CHARACTER_PRICES = {"tts-1": 15.0, "tts-1-hd": 30.0}
# USD per minute of audio: developers.openai.com/ja-JP/api/docs/models/whisper-1 (read 2026-11).
MINUTE_PRICES = {"whisper-1": 0.006}
BATCH_DISCOUNT = 0.5  # the Batch API's price over the online one, where no batch price is listed
FREE_MODELS = ("omni-moderation", "text-moderation")  # the moderation endpoint is free


class Pricing:
    def __init__(self, overrides: Mapping[str, Mapping[str, float]] | None = None, base_url: str | None = None):
        self._overrides = dict(overrides or {})
        self._base_url = base_url
        self._cache: dict[str, Price | None] = {}
        self.unknown: list[str] = []
        self.unmeasured: list[str] = []  # priced, but an answer lacked what it bills (usage, audio length)

    def price(self, model: str, warn: bool = True) -> Price | None:
        if model not in self._cache:
            self._cache[model] = self._lookup(model)
        if self._cache[model] is None and warn:
            self._unknown(model)
        return self._cache[model]

    def _unknown(self, model: str) -> None:
        if model not in self.unknown:
            self.unknown.append(model)
            log.warning(
                "no price known for model %r: its cost is left empty (add it under `pricing:` in the job to price it)",
                model,
            )

    def charge(
        self,
        billing: str,
        model: str,
        body: Mapping[str, Any],
        prompt: int | None,
        completion: int | None,
        cached: int = 0,
        units: float | None = None,
        batch: bool = False,
    ) -> float | None:
        """The cost of one answer however its endpoint bills. Endpoints that report token usage
        (gpt-image, gpt-4o-transcribe) are priced by it where the table knows the model. A Batch
        API answer costs the model's batch price where the table has one, else half the online
        price (the Batch API's discount)."""
        online = self._charge(billing, model, body, prompt, completion, cached, units)
        if not batch or online is None:
            return online
        price = self.price(model, warn=False) if prompt is not None else None
        if price is not None and price.batch_input is not None:
            batch_cost = price.cost(prompt or 0, completion or 0, cached, batch=True)
            return None if batch_cost is None else round(batch_cost, 10)
        return round(online * BATCH_DISCOUNT, 10)

    def _charge(
        self,
        billing: str,
        model: str,
        body: Mapping[str, Any],
        prompt: int | None,
        completion: int | None,
        cached: int = 0,
        units: float | None = None,
    ) -> float | None:
        if billing == "tokens":
            if prompt is None and model not in self.unmeasured:
                self.unmeasured.append(model)
                log.warning(
                    "answers from %r carry no usage: their tokens are unknown, and each is charged at "
                    "its worst case (a server that ignores stream_options.include_usage?)",
                    model,
                )
            return self.cost(model, prompt, completion, cached)
        if billing == "free" or model.startswith(FREE_MODELS):
            return 0.0
        if prompt is not None and self.price(model, warn=False) is not None:
            return self.cost(model, prompt, completion, cached)
        unit = self.unit_price(model, billing, body.get("size"), body.get("quality"))
        if unit is None:
            self._unknown(model)
            return None
        if units is None:
            if model not in self.unmeasured:
                self.unmeasured.append(model)
                log.warning(
                    "the cost of %r answers is unknown without the audio's length: use WAV files or "
                    "response_format verbose_json",
                    model,
                )
            return None
        return round(unit * units, 10)

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

    def unit_price(self, model: str, billing: str, size: str | None = None, quality: str | None = None) -> float | None:
        """USD per image, per character or per minute; 0 for free endpoints; None when unknown."""
        if billing == "free" or model.startswith(FREE_MODELS):
            return 0.0
        override = self._overrides.get(model, {})
        key = {"images": "per_image", "characters": "per_1m_chars", "minutes": "per_minute"}.get(billing)
        if key is not None and key in override:
            return override[key] / (_MILLION if billing == "characters" else 1)
        if billing == "images":
            default_quality, default_size = _IMAGE_DEFAULTS.get(model, ("standard", "1024x1024"))
            quality = default_quality if quality in (None, "auto") else quality
            return IMAGE_PRICES.get((model, quality, size if size not in (None, "auto") else default_size))
        if billing == "characters":
            price = CHARACTER_PRICES.get(model)
            return None if price is None else price / _MILLION
        if billing == "minutes":
            return MINUTE_PRICES.get(model)
        return None

    def _lookup(self, model: str) -> Price | None:
        if model in self._overrides:
            spec = self._overrides[model]
            if "input" not in spec and "output" not in spec:
                return None
            return Price(
                input=spec.get("input", 0.0),
                output=spec.get("output", 0.0),
                cached_input=spec.get("cached_input"),
                batch_input=spec.get("batch_input"),
                batch_output=spec.get("batch_output"),
                source="job",
            )
        return _remembered_price(model, self._base_url)


def _prices_version() -> str:
    """genai-prices' version: from the name of its dist-info folder beside it, as pip installs it,
    else from importlib.metadata (whose import and search cost 7 ms of every run)."""
    spec = importlib.util.find_spec("genai_prices")
    if spec is not None and spec.origin is not None:
        found = sorted(Path(spec.origin).parent.parent.glob("genai_prices-*.dist-info"))
        if len(found) == 1:
            return found[0].name[len("genai_prices-") : -len(".dist-info")]
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("genai-prices")
    except PackageNotFoundError:  # no metadata (a frozen app): the day alone dates the cache
        return ""


def _price_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "batchgpt" / "prices.json"


def _remembered_price(model: str, base_url: str | None) -> Price | None:
    """_genai_price, from the cache when today's entry for this genai-prices version has it."""
    stamp = {"genai_prices": _prices_version(), "day": _now().date().isoformat()}
    path, key = _price_cache(), f"{base_url or ''} {model}"
    try:
        cache = json.loads(path.read_text(encoding="utf-8"))
        prices = cache["prices"] if {k: cache.get(k) for k in stamp} == stamp else {}
        if key in prices:
            return None if prices[key] is None else Price(**prices[key])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        prices = {}
    price = _genai_price(model, base_url)
    prices[key] = None if price is None else asdict(price)
    try:
        with atomic_write(path) as handle:
            json.dump({**stamp, "prices": prices}, handle)
    except (OSError, OutputError):
        pass  # no cache folder to write in: the next run looks the price up again
    return price


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
    return Price(
        input=values["input"] or 0.0,
        output=values["output"] or 0.0,
        cached_input=values["cached_input"],
        batch_input=values.get("batch_input"),
        batch_output=values.get("batch_output"),
    )


def _now() -> datetime:
    return datetime.now(tz=timezone.utc)


def _per_m(value: Any) -> float | None:
    """A flat per-1M price; tiered prices (by context length) are priced at their base tier."""
    if value is None:
        return None
    if isinstance(value, Decimal | int | float):
        return float(value)
    base = getattr(value, "base", None)
    return float(base) if base is not None else None
