"""The retry policy, rule by rule."""
from __future__ import annotations

import email.utils
import time

import pytest

from batchgpt.retry import BACKOFF_CAP, MAX_SERVER_DELAY, Failure, backoff, decide, parse_duration, server_delay


def http(status: int, code: str | None = None, type_: str | None = None, **headers: str) -> Failure:
    return Failure("http", "message", status, code=code, type=type_, headers=headers)


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
def test_transient_statuses_are_retried(status):
    assert decide(http(status), attempt=1, max_retries=3, draw=0.0).retry


@pytest.mark.parametrize("status", [400, 403, 404, 422])
def test_client_errors_are_not_retried_and_do_not_stop_the_run(status):
    verdict = decide(http(status), attempt=1, max_retries=3, draw=0.0)
    assert not verdict.retry and verdict.stop_run is None


@pytest.mark.parametrize("kind", ["timeout", "connection", "malformed"])
def test_transport_failures_are_retried(kind):
    assert decide(Failure(kind, "x"), attempt=1, max_retries=3, draw=0.5).retry


def test_retries_run_out():
    assert decide(http(500), attempt=3, max_retries=3, draw=0).retry
    assert not decide(http(500), attempt=4, max_retries=3, draw=0).retry
    assert not decide(http(500), attempt=1, max_retries=0, draw=0).retry


def test_quota_and_authentication_stop_the_run():
    quota = decide(http(429, "insufficient_quota", "insufficient_quota"), 1, 5, 0)
    assert not quota.retry and "quota" in quota.stop_run
    auth = decide(http(401, "invalid_api_key"), 1, 5, 0)
    assert not auth.retry and "authentication" in auth.stop_run


def test_a_429_pauses_the_whole_run_for_the_server_delay():
    verdict = decide(http(429, "rate_limit_exceeded", **{"retry-after-ms": "250", "retry-after": "1"}), 1, 5, 0)
    assert verdict.retry and verdict.delay == pytest.approx(0.25) and verdict.pause_run == pytest.approx(0.25)


def test_a_429_without_retry_after_waits_until_its_exhausted_limit_refills_one_request():
    headers = {"x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "0",
               "x-ratelimit-reset-requests": "1m0s", "x-ratelimit-remaining-tokens": "900",
               "x-ratelimit-reset-tokens": "6m0s"}
    verdict = decide(http(429, **headers), 1, 5, 0)
    assert verdict.delay == pytest.approx(1) and verdict.pause_run == pytest.approx(1)
    no_limit = decide(http(429, **{"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2s"}), 1, 5, 0)
    assert no_limit.delay == pytest.approx(2)
    capped = decide(http(429, **{"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "5m0s"}), 1, 5, 0)
    assert capped.delay == pytest.approx(60)
    bare = decide(http(429), 1, 5, 0)
    assert bare.delay == pytest.approx(0.5) and bare.pause_run == pytest.approx(0.5)


def test_x_should_retry_overrides_the_status():
    assert not decide(http(503, **{"x-should-retry": "false"}), 1, 5, 0).retry
    assert decide(http(400, **{"x-should-retry": "true"}), 1, 5, 0).retry


def test_backoff_grows_exponentially_with_bounded_jitter():
    assert backoff(1, 0.0) == 0.5 and backoff(2, 0.0) == 1.0 and backoff(4, 0.0) == 4.0
    assert backoff(30, 0.0) == BACKOFF_CAP
    assert backoff(2, 0.999) == pytest.approx(0.75, abs=0.01)


def test_server_delay_formats():
    assert server_delay({"retry-after-ms": "1500"}) == 1.5
    assert server_delay({"retry-after": "2"}) == 2.0
    assert server_delay({"retry-after": "0.5"}) == 0.5
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < server_delay({"retry-after": date}) <= 31
    assert server_delay({"retry-after": "86400"}) == MAX_SERVER_DELAY
    assert server_delay({"retry-after": "soon"}) is None
    assert server_delay({}) is None


@pytest.mark.parametrize("text,seconds", [("1s", 1), ("6m0s", 360), ("12ms", 0.012), ("0s", 0), ("1.5s", 1.5),
                                          ("1h2m3s", 3723), ("20", 20)])
def test_reset_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


def test_garbage_durations_are_ignored():
    assert parse_duration("soon") is None and parse_duration("5x") is None
