"""The outage watch, on a fake clock."""

from __future__ import annotations

from batchgpt.outage import Outage
from batchgpt.records import Failure

REFUSED = Failure("connection", "Cannot connect to host")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_spell_of_failures_stops_the_run_once_it_lasts_long_enough():
    clock = Clock()
    outage = Outage(60, clock)
    outage.failed(0.0, REFUSED, "http://127.0.0.1:9/v1")
    clock.now = 59.9
    outage.failed(59.0, Failure("http", "bad gateway", 502), "http://127.0.0.1:9/v1")
    assert outage.verdict() is None and outage.silent_for() == 59.9
    clock.now = 60.0
    verdict = outage.verdict()
    assert verdict is not None and "60 s" in verdict and "http://127.0.0.1:9/v1: HTTP 502" in verdict


def test_any_answer_ends_a_spell():
    clock = Clock()
    outage = Outage(60, clock)
    outage.failed(0.0, REFUSED, "e")
    clock.now = 30
    outage.answered()  # a 429 or a 400 counts: the endpoint is up
    clock.now = 80
    outage.failed(79.0, REFUSED, "e")
    assert outage.verdict() is None and outage.silent_for() == 1.0


def test_a_hanging_server_is_found_from_when_the_first_attempt_started():
    clock = Clock()
    outage = Outage(60, clock)
    clock.now = 60.0
    outage.failed(0.0, Failure("timeout", "no complete answer within 60 s"), "e")
    assert outage.verdict() is not None


def test_an_item_is_held_only_while_nothing_has_answered_since_it_began_failing():
    clock = Clock()
    outage = Outage(60, clock)
    clock.now = 10
    outage.answered()
    assert outage.silent_since(11.0)
    assert not outage.silent_since(9.0)


def test_one_slow_failure_among_answers_is_no_outage():
    clock = Clock()
    outage = Outage(60, clock)
    clock.now = 59.0
    outage.answered()  # others answered while one request hung
    clock.now = 60.0
    outage.failed(0.0, Failure("timeout", "no complete answer within 60 s"), "e")
    assert outage.verdict() is None and outage.silent_for() == 1.0
