"""The retry policy, rule by rule."""

from __future__ import annotations

import email.utils
import time

import pytest

from batchgpt.records import Failure
from batchgpt.retry import BACKOFF_CAP, MAX_SERVER_DELAY, backoff, decide, server_delay


def http(status: int, code: str | None = None, type_: str | None = None, **headers: str) -> Failure:
    return Failure("http", "message", status, code=code, type=type_, headers=headers)


def first(failure: Failure, max_retries: int = 3):
    return decide(failure, tries=1, retries_used=0, max_retries=max_retries, draw=0.0)


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
def test_transient_statuses_are_retried(status):
    assert first(http(status)).retry


@pytest.mark.parametrize("status", [400, 403, 404, 422])
def test_client_errors_are_not_retried_do_not_stop_the_run_and_stay_failed(status):
    verdict = first(http(status))
    assert not verdict.retry and verdict.stop_run is None


@pytest.mark.parametrize("kind", ["timeout", "connection", "malformed"])
def test_transport_failures_are_retried(kind):
    verdict = decide(Failure(kind, "x"), tries=1, retries_used=0, max_retries=3, draw=0.5)
    assert verdict.retry and verdict.counts


def test_retries_run_out():
    assert decide(http(500), tries=3, retries_used=2, max_retries=3, draw=0).retry
    last = decide(http(500), tries=4, retries_used=3, max_retries=3, draw=0)
    assert not last.retry and last.exhausted
    assert not decide(http(500), tries=1, retries_used=0, max_retries=0, draw=0).retry


def test_waiting_for_a_rate_limit_uses_up_no_retries():
    # However many 429s came before, a rate limit is waited for: the engine's patience ends it.
    verdict = decide(http(429, "rate_limit_exceeded", "requests"), tries=50, retries_used=3, max_retries=3, draw=0)
    assert verdict.retry and not verdict.counts
    assert verdict.delay == BACKOFF_CAP  # grown with every try, not stuck at the first backoff


def test_a_503_that_says_when_to_come_back_is_waited_for_and_one_that_does_not_is_counted():
    told = decide(http(503, **{"retry-after": "2"}), tries=9, retries_used=3, max_retries=3, draw=0)
    assert told.retry and not told.counts and told.delay == 2.0
    untold = first(http(503))
    assert untold.retry and untold.counts


def test_quota_and_authentication_stop_the_run():
    quota = first(http(429, "insufficient_quota", "insufficient_quota"), 5)
    assert not quota.retry and "quota" in quota.stop_run
    auth = first(http(401, "invalid_api_key"), 5)
    assert not auth.retry and "authentication" in auth.stop_run


def test_no_retry_before_the_server_delay():
    verdict = first(http(429, "rate_limit_exceeded", **{"retry-after-ms": "250", "retry-after": "1"}))
    assert verdict.retry and verdict.delay == pytest.approx(0.25)
    assert first(http(429, **{"retry-after": "3"})).delay == 3.0
    bare = first(http(429))
    assert bare.delay == pytest.approx(0.5)


def test_x_should_retry_overrides_the_status():
    assert not first(http(503, **{"x-should-retry": "false"})).retry
    assert first(http(400, **{"x-should-retry": "true"})).retry


def test_backoff_grows_exponentially_with_bounded_jitter():
    assert backoff(1, 0.0) == 0.5 and backoff(2, 0.0) == 1.0 and backoff(4, 0.0) == 4.0
    assert backoff(30, 0.0) == BACKOFF_CAP
    assert backoff(2, 0.999) == pytest.approx(0.75, abs=0.01)
    draws = {round(decide(http(500), tries=3, retries_used=0, max_retries=9, draw=d).delay, 3) for d in (0, 0.5, 0.9)}
    assert len(draws) == 3 and all(1.5 <= d <= 2.0 for d in draws)


def test_server_delay_formats():
    assert server_delay({"retry-after-ms": "1500"}) == 1.5
    assert server_delay({"retry-after": "2"}) == 2.0
    assert server_delay({"retry-after": "0.5"}) == 0.5
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < server_delay({"retry-after": date}) <= 31
    assert server_delay({"retry-after": "86400"}) == MAX_SERVER_DELAY
    assert server_delay({"retry-after": "soon"}) is None
    assert server_delay({}) is None


@pytest.mark.parametrize(
    "failure,transient",
    [
        (Failure("timeout", "x"), True),
        (Failure("connection", "x"), True),
        (Failure("malformed", "x", 200), True),
        (http(500), True),
        (http(429), True),
        (http(408), True),
        (http(401), True),
        (http(400), False),
        (http(404), False),
        (http(422), False),
        (http(403), False),
    ],
)
def test_which_failures_a_plain_rerun_sends_again(failure, transient):
    assert failure.transient is transient


def test_what_an_outage_looks_like():
    assert Failure("timeout", "x").unreachable and Failure("connection", "x").unreachable and http(502).unreachable
    assert not http(429).unreachable and not http(400).unreachable and not Failure("malformed", "x", 200).unreachable
