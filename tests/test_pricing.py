"""Prices: job overrides first, then genai-prices; unknown models are never free."""

from __future__ import annotations

import logging

import pytest
from genai_prices import Usage, calc_price

from batchgpt.pricing import Price, Pricing


@pytest.mark.parametrize("model", ["gpt-4o-mini", "gpt-4.1", "gpt-5", "o3-mini"])
def test_costs_match_genai_prices(model):
    expected = calc_price(Usage(input_tokens=12_345, output_tokens=678), model_ref=model, provider_id="openai")
    assert Pricing().cost(model, 12_345, 678) == pytest.approx(float(expected.total_price))


def test_cached_tokens_are_cheaper():
    pricing = Pricing()
    full = pricing.cost("gpt-4o-mini", 1000, 0)
    cached = pricing.cost("gpt-4o-mini", 1000, 0, cached=800)
    assert cached < full
    price = pricing.price("gpt-4o-mini")
    assert cached == pytest.approx((200 * price.input + 800 * price.cached_input) / 1e6)


def test_job_pricing_overrides_the_table():
    pricing = Pricing({"gpt-4o-mini": {"input": 1.0, "output": 2.0}, "my-proxy-model": {"input": 0.5, "output": 1.5}})
    assert pricing.cost("gpt-4o-mini", 1_000_000, 1_000_000) == 3.0
    assert pricing.cost("my-proxy-model", 2_000_000, 0) == 1.0
    assert pricing.price("my-proxy-model").source == "job"


def test_an_unknown_model_has_no_price_and_one_warning():
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("batchgpt")
    logger.addHandler(handler)
    try:
        pricing = Pricing()
        assert pricing.cost("llama-local-7b", 100, 100) is None
        assert pricing.cost("llama-local-7b", 5, 5) is None
    finally:
        logger.removeHandler(handler)
    assert pricing.unknown == ["llama-local-7b"]
    assert [r.levelno for r in records if "llama-local-7b" in r.getMessage()] == [logging.WARNING]


def test_batch_prices_where_the_provider_has_them():
    price = Pricing().price("gpt-4o-mini")
    assert price.batch_input == pytest.approx(price.input / 2)
    assert Price.flat(1.0, 2.0).cost(10, 10, batch=True) is None


def test_unit_prices_come_from_the_jobs_pricing_first():
    pricing = Pricing({"my-image": {"per_image": 0.5}, "my-tts": {"per_1m_chars": 20}, "my-stt": {"per_minute": 0.01}})
    assert pricing.unit_price("my-image", "images") == 0.5
    assert pricing.unit_price("my-tts", "characters") == pytest.approx(20 / 1_000_000)
    assert pricing.unit_price("my-stt", "minutes") == 0.01
    assert pricing.unit_price("my-image", "tokens") is None  # token billing has no unit price
    assert pricing.unit_price("my-image", "free") == 0.0
    assert pricing.unit_price("dall-e-3", "images", size="1792x1024", quality="hd") == 0.12
    assert pricing.unit_price("nobody-knows", "minutes") is None


def test_batch_prices_scale_cached_input_too():
    pricing = Pricing()
    online = pricing.charge("tokens", "gpt-5", {}, 10_000, 100, cached=8_000)
    batch = pricing.charge("tokens", "gpt-5", {}, 10_000, 100, cached=8_000, batch=True)
    assert batch == pytest.approx(online / 2)  # gpt-5's batch prices are half, cached input too


def test_genai_prices_answers_are_kept_for_the_day_and_its_version(monkeypatch, tmp_path):
    import json

    from batchgpt import genaiprices

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    looked_up: list[str] = []
    real = genaiprices._genai_price
    monkeypatch.setattr(genaiprices, "_genai_price", lambda model, url: looked_up.append(model) or real(model, url))
    first = Pricing({}, None).price("gpt-4o-mini")
    assert (
        first is not None
        and Pricing({}, None).price("gpt-4o-mini") == first
        and Pricing({}, None).price("nope") is None
    )
    assert Pricing({}, None).price("nope") is None and looked_up == ["gpt-4o-mini", "nope"]  # unknown: known so
    cache = tmp_path / "batchgpt" / "prices.json"
    stale = json.loads(cache.read_text())
    for change in ({"day": "2000-01-01"}, {"genai_prices": "0.0.1"}):  # another day or version: looked up again
        cache.write_text(json.dumps({**stale, **change}))
        assert Pricing({}, None).price("gpt-4o-mini") == first
    assert looked_up == ["gpt-4o-mini", "nope", "gpt-4o-mini", "gpt-4o-mini"]
    cache.write_text("{not json")
    assert Pricing({}, None).price("gpt-4o-mini") == first  # a broken cache is no cache
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))
    (tmp_path / "file").write_text("")  # no folder can be made there
    assert Pricing({}, None).price("gpt-4o-mini") == first


def test_the_price_cache_names_the_installed_genai_prices_version():
    from importlib.metadata import version

    from batchgpt.genaiprices import _prices_version

    assert _prices_version() == version("genai-prices")
