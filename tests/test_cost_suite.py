"""The cost-truth suite: every kind of job, end to end against the test server, which bills known
usage (MockServer.billed). For each: (a) the dry run's worst case is at least the bill, (b) each
row's cost is the usage the server billed times the price of each kind of token (or unit), and
(c) the report's TOTAL is the sum of the rows.

Prices are written here from their sources (genai-prices 0.2.5's openai provider, USD per 1M
tokens, and OpenAI's model pages for units), not taken from batchgpt's tables. The finer cases
of each kind (cache writes, audio in and out, tiers a request asks for, MP3 lengths) are in
test_cost_billed.py and test_worst_case.py; this file holds every kind to the three checks.
"""

from __future__ import annotations

import csv
import json
import math
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import conftest
import pytest
from conftest import faults
from test_vision import png

from batchgpt.estimate import estimate
from batchgpt.jobs import load
from batchgpt.mock import silent_wav

M = 1e6
TOKENS = {  # model: {kind: USD per 1M}, genai-prices 0.2.5
    "gpt-4o-mini": {"input": 0.15, "cached_input": 0.075, "output": 0.6},
    "gpt-4o": {"input": 2.5, "cached_input": 1.25, "output": 10},
    "gpt-5.4": {"input": 2.5, "output": 15},  # below 272,000 input tokens
    "gpt-5.4 long": {"input": 5, "output": 22.5},  # past it
    "gpt-5-mini flex": {"input": 0.125, "cached_input": 0.0125, "output": 1.0},
    "gpt-4o-transcribe": {"input": 6, "output": 10},  # audio in, text out
    "gpt-image-1": {"input": 5, "output": 40},  # text in, image out
}
WHISPER_PER_MINUTE = 0.006  # developers.openai.com/api/docs/models/whisper-1
TTS_1_PER_MILLION_CHARS = 15.0  # developers.openai.com/api/docs/models/tts-1
LONG_CONTEXT = 272_000  # gpt-5.4's threshold


def chat_job(prompts: list[str], **extra: Any) -> dict[str, Any]:
    """conftest's chat job, with time to answer on a busy machine: an attempt that times out may
    have been billed and is sent again, and this suite counts every bill."""
    job = conftest.chat_job(prompts, **extra)
    job["limits"] = {**job["limits"], "timeout": 60}
    return job


def read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def by_hand(usage: dict[str, Any], prices: dict[str, float]) -> float:
    """A chat, Responses, transcription or image usage at its prices, each kind of token its own."""
    prompt = usage.get("prompt_tokens", usage.get("input_tokens", 0))
    completion = usage.get("completion_tokens", usage.get("output_tokens", 0))
    details = usage.get("prompt_tokens_details") or usage.get("input_tokens_details") or {}
    cached = details.get("cached_tokens", 0)
    return (
        (prompt - cached) * prices["input"] + cached * prices.get("cached_input", 0) + completion * prices["output"]
    ) / M


def priced(bill: dict[str, Any]) -> float:
    model, usage = bill["model"], bill["usage"]
    prompt = usage.get("prompt_tokens", usage.get("input_tokens", 0))
    key = model
    if bill.get("service_tier") == "flex":
        key = f"{model} flex"
    elif model == "gpt-5.4" and prompt > LONG_CONTEXT:
        key = f"{model} long"
    return by_hand(usage, TOKENS[key])


def line(custom_id: str, body: dict[str, Any], url: str = "/v1/chat/completions") -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": body}


def jsonl(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path


# Each case writes a job and says how to price each billed answer (None: by the token table).
Case = Callable[[Path, Any, Any], Path]


def text(tmp: Path, write_job: Any, server: Any) -> Path:
    job = chat_job(["Say hello", "Name three colours"], defaults={"model": "gpt-4o-mini", "max_tokens": 50})
    job["tasks"].append({"type": "translate", "target_lang": "fr", "items": [{"id": "q", "text": "Good morning"}]})
    return write_job(job, "text.yaml")


def structured(tmp: Path, write_job: Any, server: Any) -> Path:
    faults(server, "schema-miss")  # every answer misses its schema: each item is asked again, twice
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}},
        "required": ["name"],
        "additionalProperties": False,
    }
    job = chat_job(["Red shoe"], defaults={"model": "gpt-4o-mini", "max_tokens": 40})
    job["tasks"][0].update(schema=schema, reask=2)
    return write_job(job, "structured.yaml")


def conversation(tmp: Path, write_job: Any, server: Any) -> Path:
    job = chat_job([], defaults={"model": "gpt-4o-mini", "max_tokens": 5})
    turns = ["Start a story.", "Go on.", "End it."]
    job["tasks"] = [{"type": "conversation", "system": "Be brief.", "params": {"n": 2}, "items": [{"turns": turns}]}]
    return write_job(job, "conversation.yaml")


def tools_and_image_lines(tmp: Path, write_job: Any, server: Any) -> Path:
    weather = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
    picture = png(1024, 1024)  # a data URL
    looked = [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": picture}}]
    return jsonl(
        tmp / "lines.jsonl",
        [
            line(
                "tools",
                {
                    "model": "gpt-4o-mini",
                    "max_tokens": 20,
                    "messages": [{"role": "user", "content": "Weather in Paris?"}],
                    "tools": [weather],
                    "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
                },
            ),
            line("image", {"model": "gpt-4o", "max_tokens": 20, "messages": [{"role": "user", "content": looked}]}),
            line(
                "flex",
                {
                    "model": "gpt-5-mini",
                    "service_tier": "flex",
                    "max_completion_tokens": 30,
                    "messages": [{"role": "user", "content": "c"}],
                },
            ),
        ],
    )


def long_context(tmp: Path, write_job: Any, server: Any) -> Path:
    job = chat_job([], defaults={"model": "gpt-5.4", "max_tokens": 20})
    job["tasks"] = [
        {"type": "completion", "items": [{"id": "long", "prompt": "tier " * 280_000}, {"id": "short", "prompt": "hi"}]}
    ]
    return write_job(job, "long.yaml")


def media(tmp: Path, write_job: Any, server: Any) -> Path:
    (tmp / "call.wav").write_bytes(silent_wav(30))
    job = {
        "name": "media",
        "tasks": [
            {"type": "transcription", "name": "whisper", "items": [{"file": "call.wav"}]},
            {"type": "transcription", "name": "heard", "model": "gpt-4o-transcribe", "items": [{"file": "call.wav"}]},
            {"type": "speech", "name": "said", "items": [{"text": "The library closes at six."}]},
            {"type": "image", "name": "drawn", "model": "gpt-image-1", "items": [{"prompt": "a fox"}]},  # size auto
        ],
    }
    return write_job(job, "media.yaml")


def batch(tmp: Path, write_job: Any, server: Any) -> Path:
    return write_job(
        chat_job(["one", "two"], mode="batch", defaults={"model": "gpt-4o-mini", "max_tokens": 30}), "batch.yaml"
    )


CASES: dict[str, Case] = {
    "text": text,
    "structured, re-asked": structured,
    "conversation, n=2": conversation,
    "batch lines: tools, an image, a service tier": tools_and_image_lines,
    "long context": long_context,
    "transcription, speech, image generation": media,
    "batch mode": batch,
}


def unit_cost(row: dict[str, str], job_dir: Path) -> float | None:
    """A row billed by the unit, from its own source; None for a row billed by tokens."""
    if row["task"] == "whisper":
        with wave.open(str(job_dir / "call.wav"), "rb") as audio:
            return audio.getnframes() / audio.getframerate() / 60 * WHISPER_PER_MINUTE
    if row["task"] == "said":
        return len("The library closes at six.") * TTS_1_PER_MILLION_CHARS / M
    return None


@pytest.mark.parametrize("case", list(CASES))
def test_the_dry_run_bounds_the_bill_and_each_row_costs_what_was_billed(cli, server, write_job, tmp_path, case):
    path = CASES[case](tmp_path, write_job, server)
    worst = estimate(load(path))[-1]
    assert worst["task"] == "TOTAL"
    for _ in range(3):  # batch mode: submit, then collect
        result = cli("run", str(path), "--out", str(tmp_path / "r.csv"), "--report", str(tmp_path / "rep.csv"))
        if result.exit_code != 5:
            break
    rows = read(tmp_path / "r.csv")
    assert rows and all(r["status"] in ("ok", "error") for r in rows), result.output
    bills = [b for b in server.billed if b["usage"]]
    if case == "batch mode":  # a batch's answers are in its output file: their usage as the rows hold it
        bills = [
            {
                "model": r["model"],
                "usage": {"prompt_tokens": int(r["prompt_tokens"]), "completion_tokens": int(r["completion_tokens"])},
            }
            for r in rows
        ]
    # (b) what each answer was billed, priced by hand, is what the rows cost: per row where a row
    # is one answer; in all where a row holds several (re-asks, n answers)
    by_units = [c for c in (unit_cost(r, tmp_path) for r in rows) if c is not None]
    by_tokens = sum(priced(b) for b in bills if b["model"] not in ("whisper-1", "tts-1"))
    billed = by_tokens + sum(by_units)
    if case == "batch mode":
        billed /= 2  # the Batch API's half price (genai-prices lists gpt-4o-mini's batch prices at half)
    row_costs = [float(r["cost_usd"]) for r in rows]
    assert sum(row_costs) == pytest.approx(billed, rel=1e-6, abs=1e-12)
    if case in ("text", "batch lines: tools, an image, a service tier", "long context"):
        # one answer a row; rows are in item order and bills in answer order, so pair them by usage
        def rows_usage(r: dict[str, str]) -> tuple[int, int]:
            return int(r["prompt_tokens"]), int(r["completion_tokens"])

        def bills_usage(b: dict[str, Any]) -> tuple[int, int]:
            return b["usage"]["prompt_tokens"], b["usage"]["completion_tokens"]

        for row, bill in zip(sorted(rows, key=rows_usage), sorted(bills, key=bills_usage), strict=True):
            assert rows_usage(row) == bills_usage(bill)
            assert float(row["cost_usd"]) == pytest.approx(priced(bill), rel=1e-6)
    # (c) the report's TOTAL is the rows
    total = read(tmp_path / "rep.csv")[-1]
    assert total["task"] == "TOTAL" and float(total["cost_usd"]) == pytest.approx(sum(row_costs), rel=1e-9)
    # (a) the dry run's worst case is never below the bill
    assert float(worst["cost_usd_max"]) >= sum(row_costs) > 0
    if case == "long context":
        assert any(b["usage"]["prompt_tokens"] > LONG_CONTEXT for b in bills)  # the tier was reached
    if case == "transcription, speech, image generation":
        assert math.isclose(sum(by_units), sum(unit_cost(r, tmp_path) or 0 for r in rows))
