"""The mock server behaves like the real API where batchgpt and its users depend on it."""

from __future__ import annotations

import asyncio
import json
import random

import aiohttp
import pytest
from conftest import SECRET

from batchgpt.mock import ENDPOINTS, FAULT_KINDS, Config, Fault, MockServer, api, duration
from batchgpt.mock.faults import FaultPicker
from batchgpt.mock.limits import Bucket, RateLimiter
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


def test_without_tiktoken_the_mock_still_cuts_at_max_tokens_and_gives_logprobs(server, monkeypatch):
    """Offline with no encodings cached, the mock sent whole answers past max_tokens (finish_reason
    `stop`) and empty logprobs: it cuts by the approximate count it bills by, four characters a token."""
    monkeypatch.setattr(server.counter, "encoding", lambda name: None)  # as where tiktoken cannot load
    body = {"model": "gpt-4o-mini", "prompt": "one two three four five six seven", "max_tokens": 3}
    choice, usage = (lambda a: (a["choices"][0], a["usage"]))(json.loads(post(server, "/completions", body)[2]))
    assert choice["finish_reason"] == "length" and usage["completion_tokens"] == 3
    assert choice["text"] == "Echo: one tw"  # twelve characters: three tokens of four
    asked = [{"role": "user", "content": "odds and ends"}]
    body = {"model": "gpt-4o-mini", "messages": asked, "logprobs": True, "top_logprobs": 2}
    choice = json.loads(post(server, "/chat/completions", body)[2])["choices"][0]
    content = choice["logprobs"]["content"]
    assert content and "".join(t["token"] for t in content) == choice["message"]["content"]
    assert all(len(t["top_logprobs"]) == 2 and t["top_logprobs"][0]["token"] == t["token"] for t in content)
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
    body = {"model": "gpt-4o-mini", "messages": asked, "tools": [tool], "max_tokens": 1}
    call = json.loads(post(server, "/chat/completions", body)[2])["choices"][0]
    assert call["finish_reason"] == "length"


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
    server = MockServer(Config(rpm=600, window=1), clock=Clock()).start()
    try:
        statuses = [post(server, "/chat/completions", chat(), key=None)[0] for _ in range(12)]
        assert statuses == [200] * 10 + [429, 429]
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
    clock = Clock()
    server = MockServer(Config(faults=[Fault("429", seconds=0.3)]), clock=clock).start()
    try:
        assert post(server, "/chat/completions", chat(), key=None)[0] == 429
        clock.now += 0.29
        assert post(server, "/chat/completions", chat(), key=None)[0] == 429
        clock.now += 0.02
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


# ------------------------------------------------------------------ the pieces, without a server


class Clock:
    """A clock the test moves by hand (a slow machine takes no time on it)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_starts_full_refuses_when_empty_and_refills_at_its_rate():
    clock = Clock()
    bucket = Bucket(60, clock=clock)  # one a second, a minute's worth at once
    assert bucket.capacity == 60 and all(bucket.take(1) for _ in range(60))
    assert not bucket.take(1) and bucket.level == 0  # a refusal takes nothing
    assert bucket.wait_for(3) == pytest.approx(3.0) and bucket.reset_in() == pytest.approx(60.0)
    clock.now += 2.5
    assert bucket.take(2) and not bucket.take(1)
    clock.now += 1000
    bucket.refill()
    assert bucket.level == 60  # never past its capacity


def test_a_short_window_holds_that_share_of_the_minute_but_at_least_one():
    assert Bucket(600, window=1).capacity == 10
    assert Bucket(6, window=1).capacity == 1  # one request always fits
    clock = Clock()
    bucket = Bucket(600, window=1, clock=clock)
    assert bucket.take(10) and not bucket.take(1)
    assert bucket.wait_for(50) == pytest.approx(1.0)  # more than the bucket holds waits for a full one


def test_the_limiter_keeps_a_bucket_per_model_and_says_so_in_headers():
    clock = Clock()
    limiter = RateLimiter(Config(rpm=2, tpm=1000), clock=clock)
    first = limiter.check("gpt-4o-mini", 100)
    assert first.refusal is None and first.headers == {
        "x-ratelimit-limit-requests": "2",
        "x-ratelimit-remaining-requests": "1",
        "x-ratelimit-reset-requests": "30s",
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": "900",
        "x-ratelimit-reset-tokens": "6s",
    }
    assert limiter.check("gpt-4o-mini", 100).refusal is None
    refused = limiter.check("gpt-4o-mini", 100)
    assert refused.refusal == {
        "error": {
            "message": "Rate limit reached for gpt-4o-mini on requests per min (RPM/TPM): Limit 2. "
            "Please try again in 30s.",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    assert refused.retry == {"retry-after": "30", "retry-after-ms": "30000"}
    assert refused.headers["x-ratelimit-remaining-tokens"] == "700"  # every bucket is charged
    assert limiter.check("gpt-4.1", 100).headers["x-ratelimit-remaining-requests"] == "1"  # its own bucket


def test_the_limiter_reports_the_first_refusal_and_honours_the_header_settings():
    limiter = RateLimiter(Config(tpm=100, limit_headers=False, retry_after=False), clock=Clock())
    verdict = limiter.check("m", 150)
    assert verdict.headers == {} and verdict.retry == {}
    assert verdict.refusal is not None and verdict.refusal["error"]["type"] == "tokens"
    assert RateLimiter(Config(), clock=Clock()).check("m", 10**9).refusal is None  # no limits set


def test_fault_specs_combine_options_and_reject_unknown_ones():
    assert Fault.parse("429:0.5,match=BAD") == Fault("429", rate=0.5, match="BAD")
    assert Fault.parse("hang:first=1,for=2.5") == Fault("hang", first=1, seconds=2.5)
    assert Fault.parse("split-emoji") == Fault("split-emoji")
    # --help and README write KIND[:RATE|:first=N|:for=S][,match=TEXT]: a match straight after the kind
    assert Fault.parse("400,match=x") == Fault("400", match="x")
    assert Fault.parse("500,match=a:b") == Fault("500", match="a:b")
    with pytest.raises(ValueError, match="'often' is no rate"):
        Fault.parse("500:often")
    with pytest.raises(ValueError, match="unknown fault option 'often'"):
        Fault.parse("500:often=2")
    with pytest.raises(ValueError, match="500, 503"):
        Fault.parse("")
    assert all(Fault.parse(kind).kind == kind for kind in FAULT_KINDS)


def test_first_n_counts_attempts_of_each_distinct_body():
    picker = FaultPicker(random.Random(0))
    faults = [Fault("500", first=2)]
    picks = [picker.pick(faults, body) for body in (b"a", b"a", b"b", b"a", b"b", b"b")]
    assert [p is not None for p in picks] == [True, True, True, False, True, False]


def test_match_limits_a_fault_to_bodies_holding_the_text_and_the_first_fault_that_applies_wins():
    bad, always = Fault("400", match="BAD"), Fault("503")
    picker = FaultPicker(random.Random(0))
    assert picker.pick([bad, always], b'{"x": "BAD"}') is bad
    assert picker.pick([bad, always], b'{"x": "good"}') is always
    assert picker.pick([bad], b'{"x": "good"}') is None
    assert picker.pick([], b"anything") is None


def test_a_for_window_opens_at_the_first_request_and_closes_after_its_seconds():
    clock = Clock()
    picker = FaultPicker(random.Random(0), clock=clock)
    fault = Fault("429", seconds=2)
    clock.now += 100  # the window opens at the first request, not when the fault was made
    assert picker.pick([fault], b"a") is fault
    clock.now += 1.9
    assert picker.pick([fault], b"b") is fault
    clock.now += 0.2
    assert picker.pick([fault], b"c") is None
    assert picker.pick([Fault("429", seconds=2)], b"d") is not None  # a new fault opens its own window


def test_rated_faults_follow_the_seed():
    def run(seed: int) -> list[bool]:
        picker = FaultPicker(random.Random(seed))
        return [picker.pick([Fault("503", rate=0.3)], b"x") is not None for _ in range(200)]

    assert run(7) == run(7) and run(7) != run(8)
    assert 30 < sum(run(7)) < 90
    never = FaultPicker(random.Random(0))
    assert not any(never.pick([Fault("500", rate=0.0)], b"x") for _ in range(50))


def test_every_endpoint_kind_has_an_answer():
    assert set(ENDPOINTS.values()) == set(api.REPLIES)


def test_a_streamed_answer_is_framed_as_server_sent_events():
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello there"}], "stream": True}
    events = api.reply("chat", body, b"raw", Counter()).events
    assert events is not None and events[-1] == b"data: [DONE]\n\n"
    assert all(e.startswith(b"data: ") and e.endswith(b"\n\n") for e in events)
    chunks = [json.loads(e[6:]) for e in events[:-1]]
    assert [c["choices"][0]["delta"].get("content") for c in chunks] == ["Echo: he", "llo ther", "e"]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant" and chunks[-1]["choices"][0]["finish_reason"]
    assert len({c["id"] for c in chunks}) == 1 and all(c["usage"] is None for c in chunks)
    assert api.reply("chat", body, b"raw", Counter(), "no-done").events == events[:-1]


def test_answer_faults_break_the_answer_itself():
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    usage = api.reply("chat", body, b"raw", Counter(), "usage-strings").body["usage"]
    assert isinstance(usage["prompt_tokens"], str)
    assert api.reply("chat", body, b"raw", Counter(), "usage-negative").body["usage"]["total_tokens"] < 0
    streamed = {**body, "stream": True}
    assert api.reply("chat", streamed, b"raw", Counter(), "ignore-stream").events is None
    events = api.reply("chat", streamed, b"raw", Counter(), "split-emoji").events
    assert events is not None
    halves = [json.loads(e[6:])["choices"][0]["delta"]["content"] for e in events[:-1]]
    assert "\ud83d" in halves[-2] and halves[-1].startswith("\ude00")  # a lone surrogate in each of two events
