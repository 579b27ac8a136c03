"""End to end against the test server: each row's cost is the usage the server billed times the
price of each kind of token, and the report's TOTAL adds up the rows.

The server reports what it billed (MockServer.billed: each answer's usage and service tier); the
prices are written out from genai-prices 0.2.5 (openai provider), USD per 1M tokens.
"""

from __future__ import annotations

import base64
import csv
import json
import math
import wave
from pathlib import Path

import pytest
from audiofiles import MP3_FRAME_S, mp3

from batchgpt.mock import silent_wav

M = 1e6
PRICES = {  # (model, service tier): USD per 1M tokens, from genai-prices 0.2.5
    ("gpt-audio", "default"): {"input": 2.5, "output": 10, "input_audio": 32, "output_audio": 64},
    ("gpt-4o-mini", "default"): {"input": 0.15, "cached_input": 0.075, "output": 0.6},
    ("gpt-6-sol", "default"): {"input": 2, "cached_input": 0.2, "cache_write": 2.5, "output": 10},
    ("gpt-4.1-mini", "priority"): {"input": 0.7, "cached_input": 0.175, "output": 2.8},
    ("gpt-4.1-nano", "priority"): {"input": 0.2, "cached_input": 0.05, "output": 0.8},
    ("gpt-5-mini", "flex"): {"input": 0.125, "cached_input": 0.0125, "output": 1.0},
}


def by_hand(usage: dict, prices: dict) -> float:
    """What a usage object costs: every kind of token it names at that kind's price."""
    asked, answered = usage.get("prompt_tokens_details") or {}, usage.get("completion_tokens_details") or {}
    cached, written = asked.get("cached_tokens", 0), asked.get("cache_write_tokens", 0)
    heard, spoken = asked.get("audio_tokens", 0), answered.get("audio_tokens", 0)
    text_in = usage["prompt_tokens"] - cached - written - heard
    text_out = usage["completion_tokens"] - spoken
    return (
        text_in * prices["input"]
        + cached * prices.get("cached_input", 0)
        + written * prices.get("cache_write", 0)
        + heard * prices.get("input_audio", 0)
        + text_out * prices["output"]
        + spoken * prices.get("output_audio", 0)
    ) / M


def line(custom_id: str, body: dict) -> dict:
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}


def read(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open(encoding="utf-8")))


def test_every_kind_of_token_costs_its_own_price_end_to_end(cli, server, tmp_path):
    heard = base64.b64encode(silent_wav(3)).decode()
    system = {"role": "system", "content": "Rules. " + "Always answer briefly. " * 300}  # over 1,024 tokens
    lines = [
        line(
            "audio",
            {
                "model": "gpt-audio",
                "modalities": ["text", "audio"],
                "audio": {"voice": "alloy", "format": "wav"},
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "What is said here?"},
                            {"type": "input_audio", "input_audio": {"data": heard, "format": "wav"}},
                        ],
                    }
                ],
            },
        ),
        line(
            "cached",
            {
                "model": "gpt-4o-mini",
                "prompt_cache_key": "rules",
                "messages": [system, {"role": "user", "content": "hi"}],
            },
        ),
        line(
            "written",
            {
                "model": "gpt-6-sol",
                "messages": [
                    {
                        "role": "system",
                        "content": [
                            {"type": "text", "text": "Long rules " * 50, "cache_control": {"type": "ephemeral"}}
                        ],
                    },
                    {"role": "user", "content": "hi"},
                ],
            },
        ),
        line(
            "priority",
            {"model": "gpt-4.1-mini", "service_tier": "priority", "messages": [{"role": "user", "content": "a"}]},
        ),
        line(
            "streamed",
            {
                "model": "gpt-4.1-nano",
                "service_tier": "priority",
                "stream": True,
                "stream_options": {"include_usage": True},
                "messages": [{"role": "user", "content": "b"}],
            },
        ),
        line("flex", {"model": "gpt-5-mini", "service_tier": "flex", "messages": [{"role": "user", "content": "c"}]}),
    ]
    job = tmp_path / "kinds.jsonl"
    job.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    result = cli("run", str(job), "--out", str(tmp_path / "r.csv"), "--report", str(tmp_path / "rep.csv"))
    assert result.exit_code == 0, result.output
    billed = {b["model"]: b for b in server.billed}
    rows = {r["id"]: r for r in read(tmp_path / "r.csv")}
    kinds = {}
    for row in rows.values():
        bill = billed[row["model"]]
        kinds[row["id"]] = bill["usage"]
        assert float(row["cost_usd"]) == pytest.approx(
            by_hand(bill["usage"], PRICES[(row["model"], bill["service_tier"])])
        )
    # each line used the kind it is about
    assert kinds["audio"]["prompt_tokens_details"]["audio_tokens"] == 30  # 3 s at 10 a second
    assert kinds["audio"]["completion_tokens_details"]["audio_tokens"] > 0
    assert kinds["cached"]["prompt_tokens_details"]["cached_tokens"] >= 1024
    assert kinds["written"]["prompt_tokens_details"]["cache_write_tokens"] > 0
    assert {billed[m]["service_tier"] for m in ("gpt-4.1-mini", "gpt-4.1-nano")} == {"priority"}
    total = read(tmp_path / "rep.csv")[-1]
    assert total["task"] == "TOTAL" and total["notes"] == ""
    assert float(total["cost_usd"]) == pytest.approx(sum(float(r["cost_usd"]) for r in rows.values()))


def test_audio_and_image_models_cost_their_tokens_end_to_end(cli, server, write_job, tmp_path):
    (tmp_path / "call.wav").write_bytes(silent_wav(30))
    (tmp_path / "memo.mp3").write_bytes(mp3(383, xing=383))  # 10.0 s, in its Xing header
    said = "The library closes at six o'clock today."
    path = write_job(
        {
            "name": "media",
            "tasks": [
                {
                    "type": "transcription",
                    "name": "heard",
                    "model": "gpt-4o-transcribe",
                    "items": [{"file": "call.wav"}],
                },
                {"type": "transcription", "name": "memo", "items": [{"file": "memo.mp3"}]},  # whisper-1, json
                {
                    "type": "speech",
                    "name": "said",
                    "model": "gpt-4o-mini-tts",
                    "format": "wav",
                    "items": [{"text": said}],
                },
                {
                    "type": "image",
                    "name": "drawn",
                    "model": "gpt-image-1-mini",
                    "quality": "low",
                    "items": [{"prompt": "a fox"}],
                },
            ],
        }
    )
    result = cli("run", str(path))
    assert result.exit_code == 0, result.output
    rows = {r["task"]: r for r in read(tmp_path / "out" / "media.csv")}
    billed = {b["model"]: b["usage"] for b in server.billed}
    heard = billed["gpt-4o-transcribe"]  # genai-prices: audio in $6, text out $10
    assert heard["input_token_details"]["audio_tokens"] == heard["input_tokens"]
    assert float(rows["heard"]["cost_usd"]) == pytest.approx(
        (heard["input_tokens"] * 6 + heard["output_tokens"] * 10) / M
    )
    # whisper-1, $0.006 a minute (its model page), of the length the MP3's header gives
    assert float(rows["memo"]["cost_usd"]) == pytest.approx(383 * MP3_FRAME_S / 60 * 0.006)
    # gpt-4o-mini-tts: no usage in a speech answer; the audio it returned, 20 tokens a second
    # (1 per 50 ms, OpenAI's realtime cost guide) at $12 per 1M, its text at most a token a byte at $0.60
    with wave.open(rows["said"]["output"], "rb") as audio:
        seconds = audio.getnframes() / audio.getframerate()
    assert float(rows["said"]["cost_usd"]) == pytest.approx((len(said) * 0.6 + math.ceil(seconds * 20) * 12) / M)
    drawn = billed["gpt-image-1-mini"]  # genai-prices: text in $2, image out $8
    assert float(rows["drawn"]["cost_usd"]) == pytest.approx(
        (drawn["input_tokens"] * 2 + drawn["output_tokens"] * 8) / M
    )
    total = read(tmp_path / "out" / "media-report.csv")[-1]
    assert float(total["cost_usd"]) == pytest.approx(sum(float(r["cost_usd"]) for r in rows.values()))


def test_the_report_total_adds_up_the_priced_rows_and_names_the_rest(cli, server, write_job, tmp_path):
    path = write_job(
        {
            "name": "mixed",
            "defaults": {"max_tokens": 20},
            "tasks": [
                {
                    "type": "chat",
                    "name": "local",
                    "model": "my-local-llama",
                    "items": [{"prompt": "a"}, {"prompt": "b"}],
                },
                {"type": "chat", "name": "known", "model": "gpt-4o-mini", "items": [{"prompt": "c"}]},
            ],
        }
    )
    assert cli("run", str(path)).exit_code == 0
    report = {r["task"]: r for r in read(tmp_path / "out" / "mixed-report.csv")}
    [known] = [r for r in read(tmp_path / "out" / "mixed.csv") if r["model"] == "gpt-4o-mini"]
    usage = next(b["usage"] for b in server.billed if b["model"] == "gpt-4o-mini")
    assert float(known["cost_usd"]) == pytest.approx(by_hand(usage, PRICES[("gpt-4o-mini", "default")]))
    assert report["local"]["cost_usd"] == "" and report["local"]["notes"] == "+ 2 rows unpriced"
    assert float(report["TOTAL"]["cost_usd"]) == pytest.approx(float(known["cost_usd"]))
    assert report["TOTAL"]["notes"] == "+ 2 rows unpriced: my-local-llama"


def test_balance_shows_what_the_relay_returns_in_plain_units(cli, server):
    server.config.billing = (120.0, 30.5)  # the relay answers total_usage 3050: cents
    result = cli("balance", "--base-url", server.base_url)
    assert result.exit_code == 0
    assert "limit $120.00, used $30.50, remaining $89.50" in result.stdout
    assert "hard_limit_usd 120, in dollars" in result.stdout and "total_usage 3050, in cents ($30.50)" in result.stdout
    server.config.billing = None  # as api.openai.com with an API key: no such route for it
    result = cli("balance", "--base-url", server.base_url)
    assert result.exit_code == 1 and "does not expose its balance" in result.stderr
    assert "served by relays such as one-api and new-api" in result.stderr
    assert "API keys cannot reach" in result.stderr
