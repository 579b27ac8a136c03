"""Model prices in USD: the job's `pricing` field by field over the genai-prices table, over
batchgpt's own (unitprices.py); and what an answer costs, each kind of token at its own price.

An unknown model has no price, never a price of zero: its cost is None and it is named once, and
so is an answer that used a kind of token (audio, a service tier) whose price is unknown.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Collection, Mapping
from typing import Any

from . import unitprices
from .genaiprices import listed_models, remembered_price
from .rates import BATCH, KINDS, MILLION, STANDARD, Price, Rate, bill, unpriced_kinds
from .records import PLAIN, Billed

log = logging.getLogger(__name__)

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


IMAGE_TOKEN_MARGIN = 1.5  # gpt-image bills tokens; its per-image prices are OpenAI's approximations
BATCH_DISCOUNT = 0.5  # the Batch API's price over the online one, where no batch price is listed
FREE_MODELS = ("omni-moderation", "text-moderation")  # the moderation endpoint is free
# A job's `pricing:` keys for token prices: (context, kind) each sets.
OVERRIDE_KEYS = {kind: (STANDARD, kind) for kind in KINDS} | {
    "batch_input": (BATCH, "input"),
    "batch_output": (BATCH, "output"),
}
UNIT_KEYS = {"images": "per_image", "characters": "per_1m_chars", "minutes": "per_minute"}
OWN = "batchgpt"  # unitprices.AUDIO_RATES


class Pricing:
    def __init__(
        self,
        overrides: Mapping[str, Mapping[str, float]] | None = None,
        base_url: str | None = None,
        warned: Collection[str] = (),
    ):
        """`warned`: the models the job's check warns of, where the job names them, if they have no
        price (jobs/models.py): counted among the unknown in silence. It may grow while this is in
        use (a dry run checks and prices in one walk), so it is kept, not copied."""
        self._overrides = dict(overrides or {})
        self._base_url = base_url
        self._cache: dict[str, Price | None] = {}
        self.unknown: list[str] = []
        self._warned = warned
        self.unmeasured: list[str] = []  # priced, but an answer lacked what it bills (usage, audio length)
        self._said: set[str] = set()  # warnings given, each once

    def price(self, model: str, warn: bool = True) -> Price | None:
        if model not in self._cache:
            self._cache[model] = self._lookup(model)
        if self._cache[model] is None and warn:
            self._unknown(model)
        return self._cache[model]

    def knows(self, model: str) -> bool:
        """Whether some price of the model is known: per token, image, character or minute, or free."""
        if model.startswith(FREE_MODELS) or self.price(model, warn=False) is not None:
            return True
        return any(self.unit_price(model, billing) is not None for billing in UNIT_KEYS)

    def nearest(self, model: str) -> str | None:
        """The priced name nearest `model` (difflib), for a name that may be misspelt."""
        names = [*listed_models(self._base_url), *unitprices.NAMES, *self._overrides]
        close = difflib.get_close_matches(model, [n for n in dict.fromkeys(names) if n != model], n=1)
        return close[0] if close else None

    def _unknown(self, model: str) -> None:
        if model not in self.unknown:
            self.unknown.append(model)
            if model not in self._warned:
                log.warning(
                    "no price known for model %r: its cost is left empty (add it under `pricing:` in the job to "
                    "price it)",
                    model,
                )

    def _once(self, message: str, model: str | None = None) -> None:
        """A warning said once a run; `model`, when given, is counted among those left unpriced."""
        if model is not None and model not in self.unknown:
            self.unknown.append(model)
        if message not in self._said:
            self._said.add(message)
            log.warning("%s", message)

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
        billed: Billed = PLAIN,
        units_note: str | None = None,
    ) -> float | None:
        """The cost of one answer however its endpoint bills: its usage, each kind of token at
        its price in the service tier the answer names; else per image, character or minute
        (`units_note`: how `units` was bounded, when not measured; said once, if it is used).
        A Batch API answer costs the model's batch price where the table has one, else half the
        online price (the Batch API's discount)."""
        if units_note and prompt is None:
            self._once(units_note)
        online = self._charge(billing, model, body, prompt, completion, cached, units, billed)
        if not batch or online is None:
            return online
        price = self.price(model, warn=False) if prompt is not None else None
        if price is not None and price.batch_input is not None:
            return self.cost(model, prompt, completion, cached, billed=billed, batch=True)
        return round(online * BATCH_DISCOUNT, 10)

    def _charge(
        self,
        billing: str,
        model: str,
        body: Mapping[str, Any],
        prompt: int | None,
        completion: int | None,
        cached: int,
        units: float | None,
        billed: Billed,
    ) -> float | None:
        if billing == "tokens":
            if prompt is None and model not in self.unmeasured:
                self.unmeasured.append(model)
                log.warning(
                    "answers from %r carry no usage: their tokens are unknown, and each is charged at "
                    "its worst case (a server that ignores stream_options.include_usage?)",
                    model,
                )
            return self.cost(model, prompt, completion, cached, billed=billed, tier=billed.tier)
        if billing == "free" or model.startswith(FREE_MODELS):
            return 0.0
        if prompt is not None and self.price(model, warn=False) is not None:
            return self.cost(model, prompt, completion, cached, billed=billed, tier=billed.tier)
        if billing == "characters" and billed.audio_seconds is not None and self.unit_price(model, billing) is None:
            text, audio = unitprices.speech_tokens(body, billed.audio_seconds)
            return self.cost(model, text, audio, billed=Billed(audio_out=audio))
        if billing == "minutes" and units is None:
            if model not in self.unmeasured:
                self.unmeasured.append(model)
                log.warning(
                    "the cost of %r answers is unknown without the audio's length: use WAV, MP3, FLAC, "
                    "OGG or M4A files, or response_format verbose_json",
                    model,
                )
            return None
        return self.worst_fixed(model, billing, body, units)[0]

    def output_limit(self, model: str) -> int | None:
        override = self._overrides.get(model, {}).get("max_output_tokens")
        if override:
            return int(override)
        name = model.rsplit("/", 1)[-1]
        return next((limit for prefix, limit in OUTPUT_LIMITS if name.startswith(prefix)), None)

    def cost(
        self,
        model: str,
        prompt: int | None,
        completion: int | None,
        cached: int = 0,
        *,
        billed: Billed = PLAIN,
        tier: str | None = None,
        batch: bool = False,
        at: int | None = None,
    ) -> float | None:
        """USD for `prompt` and `completion` tokens: each kind `billed` tells apart at its own
        price, in the Batch API's context or the service tier's, in the long-context tier `at`
        (one request's input: by default `prompt`). None where a price is unknown, with a
        warning, once; None without one for a model with no batch price (callers halve the
        online cost). A flex answer without a flex price costs the standard price."""
        price = self.price(model)
        if price is None or prompt is None:
            return None
        rates = price.context(batch, None if batch else tier)
        if rates is None and batch:
            return None
        if rates is None and tier == "flex":
            self._once(f"no flex price known for {model!r}: its flex answers are priced at the standard price")
            rates = price.context()
        if rates is None:
            self._once(f"no {tier} price known for {model!r}: the cost of its {tier} answers is left empty", model)
            return None
        missing = unpriced_kinds(rates, prompt, completion or 0, cached, billed, at)
        if missing:
            self._once(
                f"no price known for the {', '.join(missing)} tokens of {model!r}: the cost of answers "
                f"using them is left empty (add {', '.join(missing)} under `pricing:` in the job)",
                model,
            )
            return None
        cost = bill(rates, prompt, completion or 0, cached, billed, at)
        return None if cost is None else round(cost, 10)  # no float dust like 1.3199999999999999e-05

    def thresholds(self, model: str) -> tuple[int, ...]:
        """The input sizes past which some price of the model rises (long-context tiers)."""
        price = self.price(model, warn=False)
        return () if price is None else price.thresholds()

    def unit_price(self, model: str, billing: str, size: Any = None, quality: Any = None) -> float | None:
        """USD per image, per character or per minute; 0 for free endpoints; None when unknown.
        An image whose size or quality is `auto` is priced as the most the API may choose."""
        if billing == "free" or model.startswith(FREE_MODELS):
            return 0.0
        override = self._overrides.get(model, {})
        key = UNIT_KEYS.get(billing)
        if key is not None and key in override:
            return override[key] / (MILLION if billing == "characters" else 1)
        if billing == "images":
            return unitprices.image_price(model, size, quality)[0]
        if billing == "characters":
            price = unitprices.CHARACTER_PRICES.get(model)
            return None if price is None else price / MILLION
        if billing == "minutes":
            return unitprices.MINUTE_PRICES.get(model)
        return None

    def worst_fixed(
        self, model: str, billing: str, body: Mapping[str, Any], units: float | None
    ) -> tuple[float | None, str | None]:
        """The most a request not billed per token can cost (None when unknown: a warning says
        why), and a note on what that rests on. Models billed by tokens (GPT image, gpt-4o-mini-tts,
        gpt-4o-transcribe) are bounded from the image's size and quality, the text or the audio's length."""
        if billing == "free" or model.startswith(FREE_MODELS):
            return 0.0, None
        if billing == "images":
            return self._images(model, body, units)
        unit = self.unit_price(model, billing)
        if units is None and billing == "minutes":
            return None, "audio length unknown"
        if unit is not None:
            return (None if units is None else unit * units), None
        if self.price(model) is None:
            return None, None
        if billing == "characters":
            text, audio = unitprices.speech_tokens(body)
            return self.cost(model, text, audio, billed=Billed(audio_out=audio)), unitprices.SPEECH_BOUND
        audio, text, transcript = unitprices.transcription_tokens(units or 0.0, body)
        cost = self.cost(model, audio + text, transcript, billed=Billed(audio_in=audio))
        return cost, unitprices.TRANSCRIPT_BOUND

    def _images(self, model: str, body: Mapping[str, Any], units: float | None) -> tuple[float | None, str | None]:
        size, quality = body.get("size"), body.get("quality")
        unit = self.unit_price(model, "images", size, quality)
        if unit is None:
            self._unknown(model)
            return None, None
        notes = []
        if "per_image" not in self._overrides.get(model, {}) and unitprices.image_price(model, size, quality)[1]:
            notes.append(unitprices.IMAGE_AUTO)
        if model.startswith("gpt-image"):
            unit *= IMAGE_TOKEN_MARGIN
            notes.append("gpt-image bills tokens: the published per-image price, plus half")
        return (None if units is None else unit * units), "; ".join(notes) or None

    def provenance(self, model: str) -> str | None:
        """Where a price's fields came from, when the job's `pricing:` set some and the tables the
        rest: 'price: input, output from the job; cached_input, batch from genai-prices'."""
        price = self.price(model, warn=False)
        return None if price is None else provenance(price)

    def _lookup(self, model: str) -> Price | None:
        """The job's fields over the table's: genai-prices, then batchgpt's own audio rates."""
        table = remembered_price(model, self._base_url)
        rates: dict[str, dict[str, Rate]] = {c: dict(k) for c, k in (table.rates if table else {}).items()}
        origins = dict(table.origins) if table else {}
        standard = rates.setdefault(STANDARD, {})
        for kind, value in unitprices.audio_rates(model).items():
            if kind not in standard:
                standard[kind], origins[f"{STANDARD} {kind}"] = Rate(value), OWN
        for key, value in self._overrides.get(model, {}).items():
            if key in OVERRIDE_KEYS:
                context, kind = OVERRIDE_KEYS[key]
                rates.setdefault(context, {})[kind] = Rate(float(value))
                origins[f"{context} {kind}"] = "job"
        if not {"input", "output"} & set(standard):
            return None
        price = Price(rates, origins)
        merged = provenance(price)
        if merged:
            log.info("the %s of %r", merged, model)
        return price


def provenance(price: Price) -> str | None:
    """Where a price's fields came from, when the job set some and a table others (None when
    one source set them all)."""
    if "job" not in price.origins.values() or len(set(price.origins.values())) < 2:
        return None
    fields: dict[str, list[str]] = {}
    for key, origin in price.origins.items():
        context, kind = key.split(" ")
        name = kind if context == STANDARD else context
        if name not in fields.setdefault(origin, []):
            fields[origin].append(name)
    order = sorted(fields, key=lambda origin: origin != "job")
    return "price: " + "; ".join(f"{', '.join(fields[o])} from {'the job' if o == 'job' else o}" for o in order)
