"""The retry policy, rule by rule."""

from __future__ import annotations

import asyncio
import csv
import email.utils
import time

import pytest
from conftest import SECRET, chat_job

from batchgpt import retry
from batchgpt.records import Failure
from batchgpt.retry import (
    BACKOFF_CAP,
    MAX_SERVER_DELAY,
    backoff,
    decide,
    retrying,
    server_delay,
    server_wait,
    spaced,
    wait_cap,
)


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


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "infinity"])
def test_a_header_that_is_no_sane_number_is_ignored(value):
    # A relay's `retry-after: nan` once became a NaN wait, which the event loop refuses with a
    # traceback; `inf` is no instruction either. The headers that do make sense still count.
    assert server_delay({"retry-after": value}) is None
    assert server_delay({"retry-after-ms": value}) is None
    assert server_delay({"retry-after-ms": value, "retry-after": "2"}) == 2.0
    used_up = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-limit-requests": value}
    assert server_delay({**used_up, "x-ratelimit-reset-requests": value}) == 1.0  # a second, not NaN
    failure = Failure("http", "slow down", status=429, headers={"retry-after": value})
    verdict = decide(failure, tries=1, retries_used=0, max_retries=3, draw=0.5)
    assert verdict.delay == verdict.delay and 0 <= verdict.delay <= BACKOFF_CAP  # finite: the backoff's


def test_a_negative_wait_or_a_date_past_is_no_wait():
    past = email.utils.formatdate(time.time() - 3600, usegmt=True)
    assert server_delay({"retry-after": "-5"}) == 0.0
    assert server_delay({"retry-after": past}) == 0.0


@pytest.mark.parametrize(
    "failure,transient",
    [
        (Failure("timeout", "x"), True),
        (Failure("connection", "x"), True),
        (Failure("malformed", "x", 200), True),
        (http(500), True),
        (http(429), True),
        (http(408), True),
        (http(401), False),
        (http(400), False),
        (http(404), False),
        (http(422), False),
        (http(403), False),
    ],
)
def test_which_failures_are_transient(failure, transient):
    assert failure.transient is transient
    assert retry.transient(failure) is transient


def test_a_refused_key_and_an_empty_quota_are_not_transient_and_stop_the_run():
    for failure in (http(401, "invalid_api_key"), http(429, "insufficient_quota", "insufficient_quota")):
        assert not retry.transient(failure) and retry.stops_run(failure)
    assert retry.stops_run(http(403)) is None and retry.stops_run(http(500)) is None


def test_a_wrong_keys_items_are_sent_again_by_a_plain_rerun_with_the_right_key(
    cli, server, write_job, tmp_path, monkeypatch
):
    job = write_job(chat_job(["a", "b"], limits={"concurrency": 1}))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key-0123456789")
    assert cli("run", str(job)).exit_code == 3
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    cli_again = cli("run", str(job))
    assert cli_again.exit_code == 0, cli_again.output
    with (tmp_path / "out" / "t.csv").open() as handle:
        assert [row["status"] for row in csv.DictReader(handle)] == ["ok", "ok"]


def test_what_an_outage_looks_like():
    assert Failure("timeout", "x").unreachable and Failure("connection", "x").unreachable and http(502).unreachable
    assert not http(429).unreachable and not http(400).unreachable and not Failure("malformed", "x", 200).unreachable


def test_the_refill_wait_of_a_used_up_limit_says_when_when_retry_after_does_not():
    used_up = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2s"}
    assert server_delay(used_up) == 2.0
    assert server_delay({**used_up, "retry-after": "5"}) == 5.0  # retry-after speaks first
    assert server_delay({"x-ratelimit-remaining-requests": "3", "x-ratelimit-reset-requests": "2s"}) is None
    assert first(http(429, **used_up)).delay == 2.0


def test_an_http_date_is_read_against_the_clock_given():
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert server_delay({"retry-after": date}, now=1_000_000) == 30.0
    assert server_delay({"retry-after": date}, now=2_000_000) == 0.0  # a date gone by: no wait


def test_a_server_told_wait_is_capped_by_patience_and_never_absurd():
    # `patience: 5` waited a 300 s retry-after; a reset 36 years away was obeyed (issue 24, item 2)
    long = http(429, "rate_limit_exceeded", **{"retry-after": "300"})
    verdict = decide(long, tries=1, retries_used=0, max_retries=3, draw=0.0, cap=wait_cap(5))
    assert verdict.delay == 5.0 and verdict.told is not None and verdict.told.capped
    assert (verdict.told.asked, verdict.told.header) == (300.0, "retry-after")
    years = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "18934560m0s"}
    told = server_wait(years, cap=wait_cap(900))
    assert told is not None and told.seconds == MAX_SERVER_DELAY and told.asked > 1e9
    assert told.header == "x-ratelimit-reset-requests"
    assert not server_wait({"retry-after": "2"}, cap=5).capped  # a wait within the cap is obeyed as said
    assert first(http(500)).told is None  # a backoff is no server's word


def test_a_backoff_is_at_least_twice_the_last_gap_so_a_long_wait_for_a_turn_cannot_hide_it():
    assert spaced(0.5, None, 0.0) == 0.5  # a first retry: the backoff alone
    assert spaced(1.0, 0.5, 0.0) == 1.0  # the gap was the backoff: nothing to add
    assert spaced(1.0, 6.0, 0.0) == 12.0  # a turn came 6 s after the failure: the next wait doubles it
    assert spaced(1.0, 6.0, 0.999) == pytest.approx(9.0, abs=0.01)  # less up to a quarter at random
    assert spaced(1.0, 60.0, 0.0) == BACKOFF_CAP


class Script:
    """A call that fails as scripted, then succeeds; it counts its attempts and the sleeps between."""

    def __init__(self, *failures: Failure):
        self.failures = list(failures)
        self.calls = 0
        self.slept: list[float] = []

    async def __call__(self) -> str | Failure:
        self.calls += 1
        return self.failures.pop(0) if self.failures else "ok"

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def call(script: Script, **options) -> str | Failure:
    return asyncio.run(retrying(script, "test call", sleep=script.sleep, draw=lambda: 0.0, **options))


def test_a_one_off_call_retries_transient_failures_with_backoff_then_succeeds():
    script = Script(http(500), Failure("connection", "reset"))
    assert call(script) == "ok" and script.calls == 3 and script.slept == [0.5, 1.0]


def test_a_one_off_call_obeys_retry_after_and_stops_after_its_retries():
    script = Script(*[http(429, "rate_limit_exceeded", **{"retry-after": "3"})] * 5)
    outcome = call(script, max_retries=2)
    assert isinstance(outcome, Failure) and outcome.status == 429
    assert script.calls == 3 and script.slept == [3.0, 3.0]  # a rate limit's wait counts here: no pacer ends it


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_a_one_off_call_is_never_retried_after_a_client_error(status):
    script = Script(http(status))
    outcome = call(script)
    assert isinstance(outcome, Failure) and outcome.status == status and script.calls == 1 and not script.slept


def test_a_one_off_call_that_may_have_taken_effect_is_made_once_and_retries_are_heard():
    once = Script(http(500))
    assert isinstance(call(once, retry=False), Failure) and once.calls == 1
    heard: list[str] = []
    twice = Script(http(502))
    assert call(twice, on_retry=lambda failure, verdict: heard.append(verdict.rule)) == "ok"
    assert heard == ["transient"]
