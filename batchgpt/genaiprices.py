"""What genai-prices says of a model, as batchgpt's Price: its standard rates with their
long-context tiers, and those of each variant it lists (the Batch API's, each service tier's).

Kept for the day in the user's cache folder, keyed by genai-prices' version: importing it and
resolving a model takes 0.25 s, which every cron run paid.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from .errors import OutputError
from .files import atomic_write
from .rates import BATCH, STANDARD, Price, Rate, Rates
from .records import shown_url

TABLE = "genai-prices"


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


def remembered_price(model: str, base_url: str | None) -> Price | None:
    """_genai_price, from the cache when today's entry for this genai-prices version has it."""
    base_url = shown_url(base_url) if base_url else None  # the cache is a file: no credentials in it
    stamp = {"genai_prices": _prices_version(), "day": _now().date().isoformat(), "format": CACHE_FORMAT}
    path, key = _price_cache(), f"{base_url or ''} {model}"
    try:
        cache = json.loads(path.read_text(encoding="utf-8"))
        prices = cache["prices"] if {k: cache.get(k) for k in stamp} == stamp else {}
        if key in prices:
            return None if prices[key] is None else Price.from_json(prices[key])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        prices = {}
    price = _genai_price(model, base_url)
    prices[key] = None if price is None else price.to_json()
    try:
        with atomic_write(path) as handle:
            json.dump({**stamp, "prices": prices}, handle)
    except (OSError, OutputError):
        pass  # no cache folder to write in: the next run looks the price up again
    return price


CACHE_FORMAT = 2  # the cache's shape: rates by context and kind, with their tiers
# genai-prices' price keys (USD per 1M tokens) for each kind of token batchgpt prices.
_GENAI_KEYS = {
    "input_mtok": "input",
    "output_mtok": "output",
    "cache_read_mtok": "cached_input",
    "cache_write_mtok": "cache_write",
    "input_audio_mtok": "input_audio",
    "output_audio_mtok": "output_audio",
    "input_image_mtok": "input_image",
    "output_image_mtok": "output_image",
}


def _genai_price(model: str, base_url: str | None) -> Price | None:
    """What genai-prices says of a model: its standard rates, with their long-context tiers, and
    those of each variant it lists (the Batch API's, and each service tier's)."""
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
    now = _now()
    rates: dict[str, Rates] = {STANDARD: _rates_of(found.model_price)}
    for variant in getattr(found.model, "price_variants", None) or []:
        context = _context_of(getattr(variant, "when", {}))
        constraint = getattr(variant, "constraint", None)
        if context is None or (constraint is not None and not constraint.active(now)):
            continue
        listed = _rates_of(variant.prices)
        if listed:  # the first variant listing a price wins, as genai-prices resolves them
            rates[context] = {**listed, **rates.get(context, {})}
    if not {"input", "output"} & set(rates[STANDARD]):
        return None
    return Price(rates, {f"{c} {k}": TABLE for c, kinds in rates.items() for k in kinds})


def listed_models(base_url: str | None) -> tuple[str, ...]:
    """The model names genai-prices lists where a price is looked up (`_genai_price`): OpenAI's,
    and those of the provider whose API `base_url` is. Each model's id and every exact name it
    matches: the names a job may mean when it names one the table does not know."""
    try:
        from genai_prices.data_snapshot import get_snapshot
    except ImportError:  # pragma: no cover - a declared dependency
        return ()
    providers = get_snapshot().providers
    url = shown_url(base_url) if base_url else None
    chosen = [p for p in providers if p.id == "openai" or (url and re.match(p.api_pattern, url))]
    names: dict[str, None] = {}
    for provider in chosen:
        for model in provider.models:
            names[model.id] = None
            names.update(dict.fromkeys(_exact_names(model.match)))
    return tuple(names)


def _exact_names(clause: Any) -> list[str]:
    """The names a genai-prices match clause takes exactly (its `equals`, within any `or`)."""
    if hasattr(clause, "equals"):
        return [str(clause.equals)]
    return [name for each in getattr(clause, "or_", None) or () for name in _exact_names(each)]


def _context_of(when: Any) -> str | None:
    """The context a genai-prices variant prices: BATCH, or a service tier's name."""
    if not isinstance(when, Mapping) or len(when) != 1:
        return None
    if when.get("processing") == "batch":
        return BATCH
    tier = when.get("service_tier")
    return str(tier) if tier and tier != "default" else None


def _rates_of(model_price: Any) -> dict[str, Rate]:
    rates = {}
    for key, kind in _GENAI_KEYS.items():
        rate = _rate(getattr(model_price, key, None))
        if rate is not None:
            rates[kind] = rate
    return rates


def _now() -> datetime:
    return datetime.now(tz=timezone.utc)


def _rate(value: Any) -> Rate | None:
    """A genai-prices price: flat, or tiered by the request's input (TieredPrices)."""
    if value is None:
        return None
    if isinstance(value, Decimal | int | float):
        return Rate(float(value))
    base = getattr(value, "base", None)
    if base is None:
        return None
    tiers = tuple(sorted((int(t.start), float(t.price)) for t in getattr(value, "tiers", None) or ()))
    return Rate(float(base), tiers)
