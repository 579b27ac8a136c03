"""The HTML run report: the store's sums behind it."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from batchgpt.store import Store

JOB = "job"
NO_END = 1e18  # a run still going: its answers are every one from its start on
INSERT = """INSERT INTO items (job, id, seq, run_id, task, type, model, hash, status, prompt_tokens,
                               completion_tokens, cost_usd, attempts, latency_s, error, answered)
            VALUES (:job, :id, :seq, :run, :task, 'chat', :model, 'h', :status, :prompt, :completion, :cost,
                    :attempts, :latency, :error, :answered)"""


def add(store: Store, run: int, rows: list[dict[str, Any]]) -> None:
    """Items as a run leaves them, written straight into the store: `at` is seconds after the run
    began (None: never answered), `latency` seconds."""
    started = _started(store, run)
    defaults = {"job": JOB, "run": run, "task": "t", "model": "m", "status": "ok", "prompt": 10, "completion": 5}
    defaults |= {"cost": 0.001, "attempts": 1, "latency": 1.0, "error": None, "at": 1.0}
    values = []
    for seq, row in enumerate(rows):
        value = {**defaults, "seq": seq, **row}
        value["answered"] = None if value["at"] is None else started + value["at"]
        values.append(value)
    with sqlite3.connect(store.directory / "state.db") as db:
        db.executemany(INSERT, values)
    db.close()


def _started(store: Store, run: int) -> float:
    info = store.run(run)
    assert info is not None
    return info.started


# The store's sums


def test_the_timeline_slices_this_runs_answers_with_nearest_rank_percentiles(tmp_path):
    store = Store(tmp_path)
    run = store.begin_run(JOB, None)
    first = [{"id": f"a{n}", "latency": float(n), "at": 0.5} for n in range(1, 11)]  # 1..10 s, first slice
    second = [{"id": "b", "latency": 4.0, "at": 9.0, "status": "error", "attempts": 3, "error": "HTTP 500: x"}]
    earlier = [{"id": "old", "latency": 99.0, "at": -60.0}]  # answered by an earlier run: not this run's
    unanswered = [{"id": "s", "status": "skipped", "latency": None, "at": None}]
    add(store, run, first + second + earlier + unanswered)

    timeline = store.timeline(JOB, run, _started(store, run), NO_END, points=2)
    assert (timeline.answers, timeline.retried, timeline.extra_attempts) == (11, 1, 2)
    one, two = timeline.slices
    assert (one.start_s, one.end_s, two.end_s) == pytest.approx((0.0, 4.5, 9.0))
    assert (one.ok, one.failed, one.tokens) == (10, 0, 150)
    assert (one.p50_s, one.p95_s, one.max_s) == (5.0, 10.0, 10.0)  # ceil(0.5 * 10) = 5th, ceil(0.95 * 10) = 10th
    assert (two.ok, two.failed, two.p50_s, two.p95_s) == (0, 1, 4.0, 4.0)
    assert len(store.timeline(JOB, run, _started(store, run), NO_END, points=120).slices) == 11
    assert store.timeline(JOB, run, _started(store, run) + 100, NO_END, 120).slices == ()


def test_errors_are_grouped_by_kind_with_the_first_examples_and_the_rest_counted(tmp_path):
    store = Store(tmp_path)
    run = store.begin_run(JOB, None)
    errors = (
        [f"HTTP 429: Rate limit reached ({n})" for n in range(5)]
        + ["timeout: no answer in 60 s"] * 3
        + ["HTTP 400 invalid_request_error: bad input", "malformed answer (HTTP 200): not JSON", "no colon at all"]
    )
    add(store, run, [{"id": f"e{n}", "status": "error", "error": e} for n, e in enumerate(errors)])
    add(store, run, [{"id": "fine"}])

    groups = store.error_groups(JOB, run, "error", kinds=2, examples=3)
    assert (groups.total, groups.kinds) == (11, 5)
    assert [(k.kind, k.count) for k in groups.shown] == [("HTTP 429", 5), ("timeout", 3)]
    assert [x.id for x in groups.shown[0].examples] == ["e0", "e1", "e2"]  # the first in input order
    assert groups.shown[0].examples[0].message == "HTTP 429: Rate limit reached (0)"
    every = store.error_groups(JOB, run, "error", kinds=12, examples=1)
    assert {k.kind for k in every.shown} == {
        "HTTP 429",
        "timeout",
        "HTTP 400 invalid_request_error",
        "malformed answer (HTTP 200)",
        "no colon at all",
    }


def test_skipped_items_are_grouped_by_their_whole_reason(tmp_path):
    store = Store(tmp_path)
    run = store.begin_run(JOB, None)
    reason = "not answered: budget of $1.0000 reached: $0.99 spent"
    add(store, run, [{"id": f"s{n}", "status": "skipped", "error": reason, "at": None} for n in range(4)])
    groups = store.error_groups(JOB, run, "skipped", kinds=12, examples=3)
    assert [(k.kind, k.count, len(k.examples)) for k in groups.shown] == [(reason, 4, 3)]


def test_the_slowest_answers_of_this_run_come_first_with_ids_and_messages_cut(tmp_path):
    store = Store(tmp_path)
    run = store.begin_run(JOB, None)
    rows = [{"id": f"i{n}", "latency": n / 10} for n in range(30)]
    rows += [{"id": "x" * 5000, "latency": 50.0, "status": "error", "error": "HTTP 500: " + "y" * 100_000}]
    rows += [{"id": "old", "latency": 99.0, "at": -60.0}, {"id": "none", "latency": None}]
    add(store, run, rows)
    slowest = store.slowest(JOB, run, _started(store, run), NO_END, limit=3)
    assert [s.latency_s for s in slowest] == [50.0, 2.9, 2.8]
    assert len(slowest[0].id) == 201 and len(slowest[0].error or "") == 501  # cut in SQL, shortened on the page
