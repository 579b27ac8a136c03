"""The worst case never below the bill: every request an item may send (turns, re-asks) and every
part of a prompt (function definitions, tool choice, schemas, files, audio), each checked against
figures worked out here with the cookbook's recipes and the published formulas, and against the
mock's bill. Where exact counts are the subject, the recipes count with tiktoken itself (and need
its encodings); elsewhere with batchgpt's counter, approximate without them, as the estimate is."""

from __future__ import annotations

import base64
import csv
import io
import json
import wave
from dataclasses import replace

import pytest
import tiktoken
from conftest import chat_job, faults
from test_vision import png

from batchgpt.estimate import estimate
from batchgpt.jobs import load, requests
from batchgpt.structured import reasked
from batchgpt.tokens import Counter

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
COUNTER = Counter()


def o200k():
    return tiktoken.get_encoding("o200k_base")


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


def text_of(tokens: int) -> str:
    """A text of exactly `tokens` tokens (o200k_base's, and four characters a token): an answer as
    long as max_tokens allows."""
    text = " sea" * tokens
    assert COUNTER.text("gpt-4o-mini", text).tokens == tokens
    return text


def counted(messages: list[dict]) -> int:
    """num_tokens_from_messages, as the counter works it (tiktoken's o200k_base where it loads)."""
    return COUNTER.messages("gpt-4o-mini", messages).tokens


def line(body: dict, url: str = "/v1/chat/completions", custom_id: str = "l1") -> dict:
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": body}


def jsonl(path, lines: list[dict]):
    path.write_text("".join(json.dumps(entry) + "\n" for entry in lines), encoding="utf-8")
    return path


def total_of(path) -> dict:
    return estimate(load(path))[-1]


@pytest.mark.usefixtures("exact_encodings")
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


@pytest.mark.usefixtures("exact_encodings")
@pytest.mark.parametrize("model,billed", [("gpt-4o-mini", 101), ("gpt-4", 105)])
def test_the_test_server_bills_function_definitions_as_the_api_did(server, model, billed):
    from test_mock_server import post

    body = {"model": model, "messages": WEATHER_MESSAGES, "tools": [WEATHER]}
    status, _, raw = post(server, "/chat/completions", body)
    assert status == 200 and json.loads(raw)["usage"]["prompt_tokens"] == billed


@pytest.mark.usefixtures("exact_encodings")
def test_what_the_recipe_cannot_read_is_counted_high_and_marked(tmp_path):
    enc = o200k()
    nested = {"type": "object", "description": "Where", "properties": {"city": {"type": "string"}}}
    tool = json.loads(json.dumps(WEATHER))
    tool["function"]["parameters"]["properties"]["place"] = nested
    forced = {"type": "function", "function": {"name": "get_current_weather"}}
    body = {"model": "gpt-4o-mini", "max_tokens": 10, "messages": WEATHER_MESSAGES, "tools": [tool]}
    plain = total_of(jsonl(tmp_path / "plain.jsonl", [line(body)]))
    chosen = total_of(jsonl(tmp_path / "chosen.jsonl", [line({**body, "tool_choice": forced})]))
    readable = cookbook_messages(WEATHER_MESSAGES, enc) + cookbook_tools([WEATHER["function"]], enc, 7)
    # the nested property: its key, and at least its JSON (the API renders less of it)
    spelled = json.dumps(nested, separators=(",", ":"))
    assert plain["prompt_tokens"] >= readable + 3 + len(enc.encode("place:" + spelled))
    assert chosen["prompt_tokens"] >= plain["prompt_tokens"] + len(enc.encode("get_current_weather"))
    assert "approximate" in plain["notes"] and "approximate" in chosen["notes"]


def test_each_reask_is_counted_as_sent(write_job):
    prompts, most = ["Red shoe", "Blue hat"], 40
    job = chat_job(prompts, defaults={"model": "gpt-4o-mini", "max_tokens": most})
    job["tasks"][0].update(schema=PRODUCT, reask=2)
    path = write_job(job)
    [row, _] = estimate(load(path))
    # Each item sends its question, then twice more with the answer that missed (as long as
    # max_tokens) and a follow-up quoting a long validation error, the schema every time. The
    # schema as measured (openai-cookbook #2140): its JSON without required and
    # additionalProperties, and 9.
    schema = COUNTER.text("gpt-4o-mini", json.dumps({"type": "object", "properties": PRODUCT["properties"]})).tokens + 9
    error = "at /name: " + "".join(chr(33 + (i * 7) % 94) for i in range(990))
    sent = 0
    for request in requests(load(path)):
        body = request.body
        for _ in range(3):
            sent += counted(body["messages"]) + schema
            body = reasked(replace(request, body=body), text_of(most), error)
    assert row["prompt_tokens"] >= sent
    assert row["max_completion_tokens"] == len(prompts) * 3 * most


def test_the_expected_cost_asks_once(write_job):
    job = chat_job(["Red shoe"], defaults={"model": "gpt-4o-mini", "max_tokens": 40})
    job["tasks"][0]["schema"] = PRODUCT
    asked = {n: estimate(load(write_job({**job, "tasks": [{**job["tasks"][0], "reask": n}]})))[0] for n in (0, 2)}
    assert asked[2]["cost_usd_max"] > 3 * asked[0]["cost_usd_max"]
    assert asked[2]["cost_usd_expected"] == asked[0]["cost_usd_expected"]
    assert asked[2]["cost_usd_batch"] == asked[0]["cost_usd_batch"]


def test_a_conversation_counts_each_turn_as_sent_and_n_answers_a_turn(write_job):
    most = 30
    job = chat_job([], defaults={"model": "gpt-4o-mini", "max_tokens": most})
    job["tasks"] = [
        {"type": "conversation", "system": "You write.", "params": {"n": 2}, "items": [{"id": "s", "turns": TURNS}]}
    ]
    [row, _] = estimate(load(write_job(job)))
    history, sent = [{"role": "system", "content": "You write."}], 0
    for said in TURNS:
        history.append({"role": "user", "content": said})
        sent += counted(history)
        history.append({"role": "assistant", "content": text_of(most)})  # the first of its n answers
    assert row["prompt_tokens"] == sent
    assert row["max_completion_tokens"] == len(TURNS) * 2 * most


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


def test_file_parts_are_counted_high_and_marked(tmp_path):
    """(Audio parts are audio tokens, priced at the audio rate: test_cost_truth.py.)"""
    question = {"type": "text", "text": "Summarise this."}
    document = {"type": "file", "file": {"filename": "a.pdf", "file_data": pdf(3)}}
    body = {"model": "gpt-4o", "max_tokens": 10, "messages": [{"role": "user", "content": [question, document]}]}
    row = estimate(load(jsonl(tmp_path / "parts.jsonl", [line(body, custom_id="l0")])))[0]  # then TOTAL
    text = counted([{"role": "user", "content": "Summarise this."}])
    # three pages, each at least an image at gpt-4o's most (85 + 8 tiles of 170, the API facts, section 14)
    assert row["prompt_tokens"] >= text + 3 * (85 + 8 * 170)
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


def structured_missed(tmp_path, write_job, server):
    faults(server, "schema-miss")  # every answer misses: each item is asked twice more
    job = chat_job(["Red shoe", "Blue hat"], defaults={"model": "gpt-4o-mini", "max_tokens": 40})
    job["name"] = "missed"
    job["tasks"][0].update(schema=PRODUCT, reask=2)
    return write_job(job, "missed.yaml")


def conversation(tmp_path, write_job, server):
    job = chat_job([], defaults={"model": "gpt-4o-mini", "max_tokens": 3})  # each answer cut at max_tokens
    job["name"] = "chat2"
    job["tasks"] = [
        {"type": "conversation", "system": "You write.", "params": {"n": 2}, "items": [{"id": "s", "turns": TURNS}]}
    ]
    return write_job(job, "chat2.yaml")


CASES = {
    "structured re-asks": structured_missed,
    "conversation, n=2": conversation,
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
