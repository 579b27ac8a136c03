"""The worst case never below the bill: every part of a prompt (function definitions, tool choice,
schemas, files, audio), each checked against figures worked out here with tiktoken and the
published formulas, and against the mock's bill."""

from __future__ import annotations

import base64
import csv
import io
import json
import wave

import pytest
import tiktoken
from test_vision import png

from batchgpt.estimate import estimate
from batchgpt.jobs import load

# The cookbook's tool example (How_to_count_tokens_with_tiktoken): the API billed 101 prompt tokens
# on gpt-4o and gpt-4o-mini, 105 on gpt-3.5-turbo and gpt-4.
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Get the current weather in a given location",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
                "unit": {
                    "type": "string",
                    "description": "The unit of temperature to return",
                    "enum": ["celsius", "fahrenheit"],
                },
            },
            "required": ["location"],
        },
    },
}
WEATHER_MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant that can answer to questions about the weather."},
    {"role": "user", "content": "What's the weather like in San Francisco?"},
]
PRODUCT = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "price": {"type": "number"}},
    "required": ["name", "price"],
    "additionalProperties": False,
}
TURNS = ["Write a line about the sea.", "Now make it rhyme.", "Shorter.", "Translate it to French."]
O200K = tiktoken.get_encoding("o200k_base")


def cookbook_messages(messages: list[dict], encoding) -> int:
    """num_tokens_from_messages: 3 a message, 1 a name, 3 to prime the reply."""
    tokens = 3
    for message in messages:
        tokens += 3 + sum(len(encoding.encode(value)) for value in message.values())
        tokens += "name" in message
    return tokens


def cookbook_tools(functions: list[dict], encoding, init: int) -> int:
    """num_tokens_for_tools, less the messages."""
    tokens = 0
    for function in functions:
        tokens += init + len(encoding.encode(f"{function['name']}:{function['description'].removesuffix('.')}"))
        properties = function["parameters"]["properties"]
        tokens += 3 if properties else 0
        for key, spec in properties.items():
            tokens += 3
            if "enum" in spec:
                tokens += -3 + sum(3 + len(encoding.encode(item)) for item in spec["enum"])
            tokens += len(encoding.encode(f"{key}:{spec['type']}:{spec['description'].removesuffix('.')}"))
    return tokens + 12


def text_of(tokens: int, encoding=O200K) -> str:
    """A text of exactly `tokens` tokens: an answer as long as max_tokens allows."""
    text = " sea" * tokens
    assert len(encoding.encode(text)) == tokens
    return text


def line(body: dict, url: str = "/v1/chat/completions", custom_id: str = "l1") -> dict:
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": body}


def jsonl(path, lines: list[dict]):
    path.write_text("".join(json.dumps(entry) + "\n" for entry in lines), encoding="utf-8")
    return path


def total_of(path) -> dict:
    return estimate(load(path))[-1]


@pytest.mark.parametrize(
    "model,encoding,init,billed",
    [("gpt-4o-mini", "o200k_base", 7, 101), ("gpt-4o", "o200k_base", 7, 101), ("gpt-4", "cl100k_base", 10, 105)],
)
def test_function_definitions_count_what_the_api_billed_for_the_cookbooks_example(
    tmp_path, model, encoding, init, billed
):
    body = {"model": model, "max_tokens": 10, "messages": WEATHER_MESSAGES, "tools": [WEATHER]}
    total = total_of(jsonl(tmp_path / "tools.jsonl", [line(body)]))
    enc = tiktoken.get_encoding(encoding)
    assert total["prompt_tokens"] == billed
    assert billed == cookbook_messages(WEATHER_MESSAGES, enc) + cookbook_tools([WEATHER["function"]], enc, init)
    assert "approximate" not in total["notes"]  # the recipe was measured on these models: exact


@pytest.mark.parametrize("model,billed", [("gpt-4o-mini", 101), ("gpt-4", 105)])
def test_the_test_server_bills_function_definitions_as_the_api_did(server, model, billed):
    from test_mockserver import post

    body = {"model": model, "messages": WEATHER_MESSAGES, "tools": [WEATHER]}
    status, _, raw = post(server, "/chat/completions", body)
    assert status == 200 and json.loads(raw)["usage"]["prompt_tokens"] == billed


def test_what_the_recipe_cannot_read_is_counted_high_and_marked(tmp_path):
    nested = {"type": "object", "description": "Where", "properties": {"city": {"type": "string"}}}
    tool = json.loads(json.dumps(WEATHER))
    tool["function"]["parameters"]["properties"]["place"] = nested
    forced = {"type": "function", "function": {"name": "get_current_weather"}}
    body = {"model": "gpt-4o-mini", "max_tokens": 10, "messages": WEATHER_MESSAGES, "tools": [tool]}
    plain = total_of(jsonl(tmp_path / "plain.jsonl", [line(body)]))
    chosen = total_of(jsonl(tmp_path / "chosen.jsonl", [line({**body, "tool_choice": forced})]))
    readable = cookbook_messages(WEATHER_MESSAGES, O200K) + cookbook_tools([WEATHER["function"]], O200K, 7)
    # the nested property: its key, and at least its JSON (the API renders less of it)
    spelled = json.dumps(nested, separators=(",", ":"))
    assert plain["prompt_tokens"] >= readable + 3 + len(O200K.encode("place:" + spelled))
    assert chosen["prompt_tokens"] >= plain["prompt_tokens"] + len(O200K.encode("get_current_weather"))
    assert "approximate" in plain["notes"] and "approximate" in chosen["notes"]


def pdf(pages: int) -> str:
    objects = "".join(f"{3 + n} 0 obj << /Type /Page /Parent 2 0 R >> endobj\n" for n in range(pages))
    raw = f"%PDF-1.4\n2 0 obj << /Type /Pages /Count {pages} >> endobj\n{objects}%%EOF\n".encode()
    return "data:application/pdf;base64," + base64.b64encode(raw).decode()


def wav(seconds: int, rate: int = 8000) -> str:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1), out.setsampwidth(2), out.setframerate(rate)
        out.writeframes(b"\0\0" * rate * seconds)
    return base64.b64encode(buffer.getvalue()).decode()


def test_file_and_audio_parts_are_counted_high_and_marked(tmp_path):
    question = {"type": "text", "text": "Summarise this."}
    document = {"type": "file", "file": {"filename": "a.pdf", "file_data": pdf(3)}}
    sound = {"type": "input_audio", "input_audio": {"data": wav(2), "format": "wav"}}
    bodies = [
        {"model": "gpt-4o", "max_tokens": 10, "messages": [{"role": "user", "content": [question, part]}]}
        for part in (document, sound)
    ]
    [row, _] = estimate(
        load(jsonl(tmp_path / "parts.jsonl", [line(b, custom_id=f"l{i}") for i, b in enumerate(bodies)]))
    )
    text = 2 * cookbook_messages([{"role": "user", "content": "Summarise this."}], O200K)
    # three pages, each at least an image at gpt-4o's most (85 + 8 tiles of 170, the API facts,
    # section 14); two seconds of audio, at least 10 tokens a second
    assert row["prompt_tokens"] >= text + 3 * (85 + 8 * 170) + 2 * 10
    assert "approximate" in row["notes"]


def weather_body(model: str = "gpt-4o-mini") -> dict:
    forced = {"type": "function", "function": {"name": "get_current_weather"}}
    return {"model": model, "max_tokens": 20, "messages": WEATHER_MESSAGES, "tools": [WEATHER], "tool_choice": forced}


def image_body() -> dict:
    content = [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": png(2048, 4096)}},
    ]
    return {"model": "gpt-4o", "max_tokens": 10, "messages": [{"role": "user", "content": content}]}


def responses_body() -> dict:
    tool = {"type": "function", **WEATHER["function"]}  # the Responses API's function tools are flat
    content = [{"type": "input_text", "text": "What's the weather like in San Francisco?"}]
    schema = {"type": "json_schema", "name": "weather", "schema": PRODUCT, "strict": True}
    return {
        "model": "gpt-4o-mini",
        "max_output_tokens": 40,
        "input": [{"role": "user", "content": content}],
        "tools": [tool],
        "text": {"format": schema},
    }


CASES = {
    "tools and tool_choice": lambda tmp_path, *_: jsonl(tmp_path / "tools.jsonl", [line(weather_body())]),
    "an image part": lambda tmp_path, *_: jsonl(tmp_path / "image.jsonl", [line(image_body())]),
    "a Responses line": lambda tmp_path, *_: jsonl(tmp_path / "resp.jsonl", [line(responses_body(), "/v1/responses")]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_dry_runs_worst_case_is_never_below_what_the_server_bills(cli, server, write_job, tmp_path, case):
    path = CASES[case](tmp_path, write_job, server)
    total = total_of(path)
    cli("run", str(path))
    [results] = (tmp_path / "out").glob(f"{path.stem}.csv")
    rows = list(csv.DictReader(results.open(encoding="utf-8")))
    billed_prompt = sum(int(r["prompt_tokens"]) for r in rows)
    billed_completion = sum(int(r["completion_tokens"]) for r in rows)
    assert billed_prompt > 0 and billed_completion > 0
    assert total["prompt_tokens"] >= billed_prompt
    assert total["max_completion_tokens"] >= billed_completion
    assert total["cost_usd_max"] >= sum(float(r["cost_usd"]) for r in rows)
