"""Every token at its own price (issue 23): audio, long-context tiers, service tiers, cache writes,
partial job prices, image `auto`, models billed by tokens on the unit endpoints, and a TOTAL
that names what it leaves out.

The prices below are written out from their source, never read back from batchgpt: genai-prices
0.2.5 (its openai provider, `python -m genai_prices list`), OpenAI's pages where batchgpt's own
tables name them (unitprices.py), and the documented rules that turn a duration into audio tokens.
"""

from __future__ import annotations

import logging
import math

import pytest

from batchgpt.estimate import estimate
from batchgpt.jobs import load
from batchgpt.mock import silent_wav
from batchgpt.pricing import Pricing
from batchgpt.tasks import TASKS

M = 1e6


def parse(task: str, answer: dict) -> object:
    return TASKS[task].parse(answer)


def charge(pricing: Pricing, billing: str, model: str, reply, body: dict | None = None, units=None, batch=False):
    return pricing.charge(
        billing,
        model,
        body or {},
        reply.prompt_tokens,
        reply.completion_tokens,
        reply.cached_tokens,
        units,
        batch=batch,
        billed=reply.billed,
    )


# ---------------------------------------------------------------- audio tokens


def test_transcription_audio_tokens_cost_the_audio_rate():
    # gpt-4o-transcribe (genai-prices 0.2.5): text in $2.50, audio in $6, out $10 per 1M tokens
    reply = parse(
        "transcription",
        {
            "text": "hello",
            "usage": {
                "type": "tokens",
                "input_tokens": 1000,
                "input_token_details": {"text_tokens": 40, "audio_tokens": 960},
                "output_tokens": 200,
                "total_tokens": 1200,
            },
        },
    )
    cost = charge(Pricing(), "minutes", "gpt-4o-transcribe", reply)
    assert cost == pytest.approx((40 * 2.5 + 960 * 6 + 200 * 10) / M)  # was 0.42x: all of it at $2.50


def test_a_transcription_usage_without_details_is_all_audio():
    reply = parse("transcription", {"text": "hi", "usage": {"type": "tokens", "input_tokens": 500, "output_tokens": 9}})
    assert charge(Pricing(), "minutes", "gpt-4o-mini-transcribe", reply) == pytest.approx((500 * 3 + 9 * 5) / M)


def test_whispers_duration_usage_is_its_length():
    reply = parse("transcription", {"text": "hi", "usage": {"type": "duration", "seconds": 90}})
    assert charge(Pricing(), "minutes", "whisper-1", reply, units=reply.units) == pytest.approx(1.5 * 0.006)


def test_chat_audio_in_and_out_cost_the_audio_rates():
    # gpt-audio (genai-prices 0.2.5): text $2.50 in, $10 out; audio $32 in, $64 out per 1M tokens
    reply = parse(
        "chat",
        {
            "choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": 1000,
                "completion_tokens": 600,
                "prompt_tokens_details": {"audio_tokens": 800, "cached_tokens": 0},
                "completion_tokens_details": {"audio_tokens": 500, "reasoning_tokens": 0},
            },
        },
    )
    cost = charge(Pricing(), "tokens", "gpt-audio", reply)
    assert cost == pytest.approx((200 * 2.5 + 800 * 32 + 100 * 10 + 500 * 64) / M)  # was 0.16x


def test_audio_tokens_with_no_audio_price_are_unpriced_and_said_so(caplog):
    reply = parse(
        "chat",
        {
            "choices": [{"message": {"content": "hi"}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 10, "prompt_tokens_details": {"audio_tokens": 90}},
        },
    )
    pricing = Pricing({"my-voice-model": {"input": 1, "output": 2}})
    with caplog.at_level(logging.WARNING, logger="batchgpt"):
        assert charge(pricing, "tokens", "my-voice-model", reply) is None  # never at the text rate
    assert "input_audio" in caplog.text and "my-voice-model" in pricing.unknown
    pricing = Pricing({"my-voice-model": {"input": 1, "output": 2, "input_audio": 40}})
    assert charge(pricing, "tokens", "my-voice-model", reply) == pytest.approx((10 * 1 + 90 * 40 + 10 * 2) / M)


# ---------------------------------------------------------------- long-context tiers


def test_a_long_prompt_costs_its_tiers_price():
    # gpt-5.4 (genai-prices 0.2.5): $2.50 in, $15 out; past 272,000 input tokens $5 and $22.50
    pricing = Pricing()
    assert pricing.cost("gpt-5.4", 272_000, 1000) == pytest.approx((272_000 * 2.5 + 1000 * 15) / M)
    assert pricing.cost("gpt-5.4", 300_000, 1000) == pytest.approx((300_000 * 5 + 1000 * 22.5) / M)
    # cached tokens too: $0.25, past the threshold $0.50
    assert pricing.cost("gpt-5.4", 300_000, 0, cached=100_000) == pytest.approx((200_000 * 5 + 100_000 * 0.5) / M)


def test_the_dry_run_prices_each_request_in_its_own_tier(write_job):
    long_text = "tier " * 280_000  # one request past 272,000 tokens, one far below it
    path = write_job(
        {
            "defaults": {"model": "gpt-5.4", "max_tokens": 100, "expected_output_tokens": 50},
            "tasks": [{"type": "completion", "items": [{"prompt": long_text}, {"prompt": "short"}]}],
        }
    )
    from batchgpt.tokens import Counter

    counter = Counter()
    long_tokens, short_tokens = (counter.text("gpt-5.4", t).tokens for t in (long_text, "short"))
    assert long_tokens > 272_000
    row = estimate(load(path))[0]
    assert row["cost_usd_expected"] == pytest.approx(
        (long_tokens * 5 + 50 * 22.5 + short_tokens * 2.5 + 50 * 15) / M  # not both at $2.50, nor both at $5
    )
    assert row["cost_usd_max"] == pytest.approx((long_tokens * 5 + 100 * 22.5 + short_tokens * 2.5 + 100 * 15) / M)


# ---------------------------------------------------------------- service tiers


def chat_answer(prompt: int, completion: int, tier: str | None) -> dict:
    answer = {
        "choices": [{"message": {"content": "x"}}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion},
    }
    return answer if tier is None else {**answer, "service_tier": tier}


@pytest.mark.parametrize(
    ("model", "tier", "rates"),
    [
        ("gpt-4o-mini", "priority", (0.25, 1.0)),  # genai-prices 0.2.5: standard $0.15 / $0.60
        ("gpt-5-mini", "flex", (0.125, 1.0)),  # standard $0.25 / $2
        ("gpt-5-mini", "default", (0.25, 2.0)),
        ("gpt-5-mini", "scale", (0.25, 2.0)),  # Scale Tier units are bought ahead: the standard price
    ],
)
def test_an_answer_is_priced_at_the_tier_it_says_served_it(model, tier, rates):
    reply = parse("chat", chat_answer(10_000, 1000, tier))
    assert charge(Pricing(), "tokens", model, reply) == pytest.approx((10_000 * rates[0] + 1000 * rates[1]) / M)


def test_a_tier_without_a_price_is_never_priced_at_another(caplog):
    reply = parse("chat", chat_answer(10_000, 1000, "priority"))
    with caplog.at_level(logging.WARNING, logger="batchgpt"):
        assert charge(Pricing(), "tokens", "gpt-5-nano", reply) is None  # genai-prices lists no priority price
    assert "no priority price known for 'gpt-5-nano'" in caplog.text
    flex = parse("chat", chat_answer(10_000, 1000, "flex"))  # o3-mini has no flex price: the dearer standard one
    assert charge(Pricing(), "tokens", "o3-mini", flex) == pytest.approx((10_000 * 1.1 + 1000 * 4.4) / M)


def test_the_dry_run_prices_the_tier_a_request_asks_for(write_job):
    path = write_job(
        {
            "defaults": {"model": "gpt-4o-mini", "max_tokens": 100, "expected_output_tokens": 40},
            "tasks": [{"type": "chat", "params": {"service_tier": "priority"}, "items": [{"prompt": "hello"}]}],
        }
    )
    row = estimate(load(path))[0]
    prompt = row["prompt_tokens"]
    assert row["cost_usd_expected"] == pytest.approx((prompt * 0.25 + 40 * 1.0) / M)
    assert row["cost_usd_max"] == pytest.approx((prompt * 0.25 + 100 * 1.0) / M)
    assert row["cost_usd_batch"] == pytest.approx((prompt * 0.075 + 40 * 0.3) / M)  # a batch has no tier
    assert "service_tier priority: priced at its priority price" in row["notes"]


# ---------------------------------------------------------------- cache writes


def test_cache_writes_cost_the_write_price():
    reply = parse(
        "chat",
        {
            "choices": [{"message": {"content": "x"}}],
            "usage": {
                "prompt_tokens": 5000,
                "completion_tokens": 100,
                "prompt_tokens_details": {"cached_tokens": 1000, "cache_write_tokens": 3000},
            },
        },
    )
    # gpt-6-sol (genai-prices 0.2.5): $2 in, $0.20 cache read, $2.50 cache write, $10 out
    cost = charge(Pricing(), "tokens", "gpt-6-sol", reply)
    assert cost == pytest.approx((1000 * 2 + 1000 * 0.2 + 3000 * 2.5 + 100 * 10) / M)
    relay = Pricing({"claude-sonnet-4": {"input": 3, "output": 15, "cached_input": 0.3, "cache_write": 3.75}})
    assert charge(relay, "tokens", "claude-sonnet-4", reply) == pytest.approx(
        (1000 * 3 + 1000 * 0.3 + 3000 * 3.75 + 100 * 15) / M
    )


# ---------------------------------------------------------------- partial job prices


def test_a_partial_job_price_keeps_the_tables_other_fields(write_job):
    pricing = Pricing({"gpt-4o-mini": {"input": 1.0, "output": 2.0}})
    # the table's (genai-prices 0.2.5) cached input $0.075 and batch $0.075 / $0.30 stay
    assert pricing.cost("gpt-4o-mini", 1000, 100, cached=800) == pytest.approx((200 * 1 + 800 * 0.075 + 100 * 2) / M)
    reply = parse("chat", chat_answer(1000, 100, None))
    assert charge(pricing, "tokens", "gpt-4o-mini", reply, batch=True) == pytest.approx((1000 * 0.075 + 100 * 0.3) / M)
    path = write_job(
        {
            "defaults": {"model": "gpt-4o-mini", "max_tokens": 10},
            "pricing": {"gpt-4o-mini": {"input": 1.0, "output": 2.0}},
            "tasks": [{"type": "chat", "items": [{"prompt": "hello"}]}],
        }
    )
    row = estimate(load(path))[0]
    assert "price: input, output from the job; cached_input, priority, fast, batch from genai-prices" in row["notes"]
    # the batch column at the table's batch prices, the answer at most max_tokens (10) long
    assert row["cost_usd_batch"] == pytest.approx((row["prompt_tokens"] * 0.075 + 10 * 0.3) / M)


def test_a_job_price_for_a_model_the_tables_lack_is_all_the_jobs():
    pricing = Pricing({"my-proxy-model": {"input": 0.5, "output": 1.5}})
    assert pricing.price("my-proxy-model").source == "job" and pricing.provenance("my-proxy-model") is None
    only_input = Pricing({"my-embedder": {"input": 0.1}})
    assert only_input.cost("my-embedder", 1000, 0) == pytest.approx(1000 * 0.1 / M)
    assert only_input.cost("my-embedder", 1000, 5) is None  # an output price it never had is not $0


# ---------------------------------------------------------------- images: auto


@pytest.mark.parametrize(
    ("options", "per_image"),
    [
        ({}, 0.25),  # gpt-image-1 defaults to auto: high 1024x1536 ($0.25) is the dearest it may choose
        ({"size": "auto", "quality": "auto"}, 0.25),
        ({"size": "auto", "quality": "low"}, 0.016),  # the dearest low-quality size
        ({"size": "1024x1024", "quality": "auto"}, 0.167),
        ({"size": "1024x1024", "quality": "low"}, 0.011),
    ],
)
def test_image_auto_is_priced_as_the_dearest_choice_and_said_so(write_job, options, per_image):
    # developers.openai.com/ja-JP/api/docs/models/gpt-image-1; gpt-image bills tokens, so half again
    path = write_job({"tasks": [{"type": "image", "model": "gpt-image-1", **options, "items": [{"prompt": "a"}] * 2}]})
    row = estimate(load(path))[0]
    assert row["cost_usd_max"] == pytest.approx(2 * per_image * 1.5)
    assert ("the most expensive choice the API may make" in row["notes"]) == (per_image in (0.25, 0.016, 0.167))


# ---------------------------------------------------------------- nothing silently unpriced


def test_models_billed_by_tokens_on_unit_endpoints_are_priced_in_the_dry_run(write_job, tmp_path, caplog):
    (tmp_path / "call.wav").write_bytes(silent_wav(60))
    text = "x" * 1000
    path = write_job(
        {
            "tasks": [
                {"type": "speech", "model": "gpt-4o-mini-tts", "items": [{"text": text}]},
                {"type": "transcription", "model": "gpt-4o-transcribe", "items": [{"file": "call.wav"}]},
                {"type": "transcription", "model": "gpt-4o-mini-transcribe", "items": [{"file": "call.wav"}]},
                {
                    "type": "image",
                    "model": "gpt-image-1-mini",
                    "quality": "low",
                    "size": "1024x1024",
                    "items": [{"prompt": "a"}],
                },
            ]
        }
    )
    with caplog.at_level(logging.WARNING, logger="batchgpt"):
        speech, big, small, image, total = estimate(load(path))
    # speech: text tokens at most its 1,000 bytes ($0.60 per 1M); audio at 10 characters a second,
    # 20 tokens a second (1 per 50 ms: OpenAI's realtime cost guide), half again: 3,000 ($12 per 1M)
    assert speech["cost_usd_max"] == pytest.approx((1000 * 0.6 + math.ceil(1000 / 10 * 20 * 1.5) * 12) / M)
    # 60 s heard: 10 tokens a second (1 per 100 ms), half again: 900; a transcript of 5 tokens a second
    assert big["cost_usd_max"] == pytest.approx((900 * 6 + 300 * 10) / M)  # $6 audio in, $10 out
    assert small["cost_usd_max"] == pytest.approx((900 * 3 + 300 * 5) / M)  # $3 audio in, $5 out
    assert image["cost_usd_max"] == pytest.approx(0.005 * 1.5)  # OpenAI's pricing page: $0.005, plus half
    assert total["cost_usd_max"] == pytest.approx(sum(r["cost_usd_max"] for r in (speech, big, small, image)))
    assert "no price" not in caplog.text and total["notes"] == ""


def test_a_model_with_no_price_on_a_unit_endpoint_is_named(write_job, caplog):
    path = write_job({"tasks": [{"type": "image", "model": "my-painter", "items": [{"prompt": "a"}] * 3}]})
    with caplog.at_level(logging.WARNING, logger="batchgpt"):
        row, total = estimate(load(path))
    assert row["cost_usd_max"] is None and "no price known for model 'my-painter'" in caplog.text
    assert total["cost_usd_max"] is None and total["notes"] == "+ 3 rows unpriced: my-painter"


def test_the_dry_run_total_adds_up_the_priced_rows_and_names_the_rest(write_job):
    path = write_job(
        {
            "defaults": {"max_tokens": 5},
            "tasks": [
                {"type": "chat", "model": "my-local-llama", "items": [{"prompt": "a"}] * 3},
                {"type": "chat", "model": "gpt-4o-mini", "items": [{"prompt": "b"}]},
                {"type": "chat", "model": "gpt-4.1", "items": [{"prompt": "c"}]},
            ],
        }
    )
    local, mini, big, total = estimate(load(path))
    for column in ("cost_usd_max", "cost_usd_expected", "cost_usd_batch"):
        assert local[column] is None and total[column] == pytest.approx(mini[column] + big[column])
    assert "+ 3 rows unpriced: my-local-llama" in total["notes"]


def test_the_worst_case_of_an_audio_request_is_at_the_audio_prices(tmp_path):
    import base64
    import json

    from batchgpt.estimate import Estimator
    from batchgpt.jobs import requests
    from batchgpt.tokens import Counter

    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is said here?"},
                {
                    "type": "input_audio",
                    "input_audio": {"data": base64.b64encode(silent_wav(4)).decode(), "format": "wav"},
                },
            ],
        }
    ]
    body = {"model": "gpt-audio", "modalities": ["text", "audio"], "max_completion_tokens": 100, "messages": messages}
    path = tmp_path / "audio.jsonl"
    path.write_text(json.dumps({"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": body}))
    [request] = requests(load(path))
    text = Counter().messages("gpt-audio", messages)
    # 4 s heard: 10 tokens a second (1 per 100 ms), half again: 60 audio tokens at $32; the answer,
    # asked aloud, up to 100 audio tokens at $64 (gpt-audio, genai-prices 0.2.5); the text at $2.50
    prompt = text.tokens * 3 // 2 if text.approximate else text.tokens  # the budget's margin for a guessed count
    assert Estimator(Pricing()).worst_cost(request) == pytest.approx((prompt * 2.5 + 60 * 32 + 100 * 64) / M)
    row = estimate(load(path))[0]
    assert row["cost_usd_max"] == pytest.approx((text.tokens * 2.5 + 60 * 32 + 100 * 64) / M)
    assert "audio at the model's audio prices" in row["notes"]
