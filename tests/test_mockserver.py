"""The mock server behaves like the real API where batchgpt and its users depend on it."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest
from conftest import SECRET

from batchgpt.mockserver import Config, Fault, MockServer, duration
from batchgpt.tokens import Counter


def post(server: MockServer, path: str, body: dict, key: str | None = SECRET):
    async def go():
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        async with aiohttp.ClientSession() as session:
            async with session.post(server.base_url + path, json=body, headers=headers) as response:
                return response.status, {k.lower(): v for k, v in response.headers.items()}, await response.read()

    return asyncio.run(go())


def test_chat_answers_are_deterministic_and_counted_like_the_api(server):
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say this is a test"}]}
    status, headers, raw = post(server, "/chat/completions", body)
    again = post(server, "/chat/completions", body)[2]
    answer = json.loads(raw)
    assert status == 200 and raw == again
    assert (
        answer["object"] == "chat.completion"
        and answer["choices"][0]["message"]["content"] == "Echo: Say this is a test"
    )
    usage = answer["usage"]
    assert usage["prompt_tokens"] == Counter().messages("gpt-4o-mini", body["messages"]).tokens
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert (
        "cached_tokens" in usage["prompt_tokens_details"] and "reasoning_tokens" in usage["completion_tokens_details"]
    )


def test_max_tokens_truncates_with_finish_reason_length(server):
    body = {"model": "gpt-4o-mini", "prompt": "one two three four five six seven", "max_tokens": 3}
    answer = json.loads(post(server, "/completions", body)[2])
    assert answer["choices"][0]["finish_reason"] == "length" and answer["usage"]["completion_tokens"] == 3


def test_a_bad_key_gets_the_documented_401(server):
    status, _, raw = post(
        server,
        "/chat/completions",
        {"model": "m", "messages": [{"role": "user", "content": "x"}]},
        key="sk-wrong-0000000000",
    )
    error = json.loads(raw)["error"]
    assert status == 401 and error["code"] == "invalid_api_key" and error["type"] == "invalid_request_error"
    assert set(error) == {"message", "type", "param", "code"}


def test_max_tokens_on_a_reasoning_model_is_a_400(server):
    body = {"model": "gpt-5", "messages": [{"role": "user", "content": "x"}], "max_tokens": 5}
    status, _, raw = post(server, "/chat/completions", body)
    assert status == 400 and json.loads(raw)["error"]["param"] == "max_tokens"


def test_rate_limits_answer_429_with_headers():
    server = MockServer(Config(rpm=2)).start()
    try:
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}
        statuses = [post(server, "/chat/completions", body, key=None) for _ in range(3)]
        assert [s for s, _, _ in statuses] == [200, 200, 429]
        status, headers, raw = statuses[-1]
        assert headers["x-ratelimit-limit-requests"] == "2" and headers["x-ratelimit-remaining-requests"] == "0"
        assert int(headers["retry-after"]) >= 1 and int(headers["retry-after-ms"]) > 0
        assert json.loads(raw)["error"]["code"] == "rate_limit_exceeded"
    finally:
        server.stop()


def test_streams_end_with_a_usage_chunk_and_done(server):
    async def go():
        body = {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "stream"}],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        async with aiohttp.ClientSession() as session:
            async with session.post(
                server.base_url + "/chat/completions", json=body, headers={"Authorization": f"Bearer {SECRET}"}
            ) as response:
                return response.headers["content-type"], (await response.read()).decode()

    content_type, text = asyncio.run(go())
    events = [line[6:] for line in text.split("\n\n") if line.startswith("data: ")]
    assert content_type.startswith("text/event-stream") and events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0
    assert all(c["usage"] is None for c in chunks[:-1])
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1]) == "Echo: stream"


def test_fault_specs_parse():
    assert Fault.parse("503:0.1") == Fault("503", rate=0.1)
    assert Fault.parse("500:first=2") == Fault("500", first=2)
    assert Fault.parse("400:match=BAD") == Fault("400", match="BAD")
    assert Fault.parse("429:for=20") == Fault("429", seconds=20.0)
    with pytest.raises(ValueError):
        Fault.parse("teapot")


def test_durations_look_like_the_apis():
    assert [duration(s) for s in (0.012, 1, 1.5, 360)] == ["12ms", "1s", "1.5s", "6m0s"]


def chat(model: str = "gpt-4o-mini") -> dict:
    return {"model": model, "messages": [{"role": "user", "content": "x"}]}


def test_limits_are_per_model_and_may_be_enforced_over_a_short_window():
    # 600 a minute over a one-second window: a burst of 10, though the headers say 600 a minute.
    server = MockServer(Config(rpm=600, window=1)).start()
    try:
        statuses = [post(server, "/chat/completions", chat(), key=None)[0] for _ in range(12)]
        assert statuses[:10] == [200] * 10 and 429 in statuses[10:]
        status, headers, _ = post(server, "/chat/completions", chat("gpt-4.1"), key=None)
        assert status == 200 and headers["x-ratelimit-limit-requests"] == "600"
        assert headers["x-ratelimit-remaining-requests"] == "9"  # gpt-4.1's own bucket
        assert server.refused() == statuses.count(429)
        assert [status for _, status in server.answers] == statuses + [200]
    finally:
        server.stop()


def test_a_server_may_send_no_rate_limit_headers_and_no_retry_after():
    server = MockServer(Config(rpm=1, limit_headers=False, retry_after=False)).start()
    try:
        first, refused = (post(server, "/chat/completions", chat(), key=None) for _ in range(2))
        assert first[0] == 200 and refused[0] == 429
        assert not [h for h in {**first[1], **refused[1]} if h.startswith(("x-ratelimit", "retry-after"))]
        assert json.loads(refused[2])["error"]["code"] == "rate_limit_exceeded"
    finally:
        server.stop()


def test_a_time_window_fault_refuses_everything_then_recovers():
    server = MockServer(Config(faults=[Fault("429", seconds=0.3)])).start()
    try:
        assert post(server, "/chat/completions", chat(), key=None)[0] == 429
        assert post(server, "/chat/completions", chat(), key=None)[0] == 429
        time.sleep(0.35)
        assert post(server, "/chat/completions", chat(), key=None)[0] == 200
    finally:
        server.stop()


def test_an_overloaded_server_answers_503_past_its_capacity():
    server = MockServer(Config(capacity=2, latency=0.2)).start()

    async def burst():
        async with aiohttp.ClientSession() as session:

            async def one():
                async with session.post(server.base_url + "/chat/completions", json=chat()) as response:
                    return response.status, await response.json()

            return await asyncio.gather(*(one() for _ in range(5)))

    try:
        answers = asyncio.run(burst())
        assert sorted(status for status, _ in answers) == [200, 200, 503, 503, 503]
        assert {body["error"]["type"] for status, body in answers if status == 503} == {"server_error"}
    finally:
        server.stop()
