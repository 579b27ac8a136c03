"""The records' quick constructors make exactly what the dataclasses' own __init__ makes."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import pytest

from batchgpt.estimate import Bound, new_bound
from batchgpt.jobs import Overrides, load, requests
from batchgpt.jobs.items import walk
from batchgpt.records import Request, Result, new_result, quick
from batchgpt.runner import row_for
from batchgpt.tokens import Count


def same(made: object, cls: type) -> None:
    """`made` has every field, equals the instance __init__ makes of them, and stays frozen."""
    values = {f.name: getattr(made, f.name) for f in fields(cls)}
    assert made == cls(**values) and set(vars(made)) == set(values)
    with pytest.raises(AttributeError):
        made.id = "changed"  # type: ignore[attr-defined]


def test_requests_and_items_built_from_a_job_are_whole_frozen_dataclasses(write_job) -> None:
    job = load(
        write_job(
            {
                "defaults": {"model": "gpt-4o-mini", "max_tokens": 9},
                "tasks": [
                    {"type": "chat", "keep": ["note"], "items": [{"id": "a", "prompt": "hi", "note": "n"}]},
                    {"type": "conversation", "items": [{"id": "c", "turns": ["one", "two"]}]},
                ],
            }
        ),
        Overrides(),
    )
    built = list(requests(job))
    assert [r.id for r in built] == ["a", "c"] and built[1].turns == ("one", "two")
    for request in built:
        same(request, Request)
        assert replace(request, seq=7) == replace(Request(**vars(request)), seq=7)
    for item in walk(job, None):
        same(item, type(item))


def test_result_rows_take_the_defaults_of_the_fields_not_given(write_job) -> None:
    job = load(write_job({"tasks": [{"type": "chat", "model": "m", "items": [{"id": "a", "prompt": "hi"}]}]}))
    row = row_for(next(requests(job)), "error", attempts=2, error="boom")
    same(row, Result)
    assert (row.status, row.attempts, row.error, row.mode, row.output) == ("error", 2, "boom", "online", None)
    assert new_result(1, "x", "t", "chat", "m", "ok") == Result(1, "x", "t", "chat", "m", "ok")


def test_a_bound_made_positionally_equals_one_made_by_its_init() -> None:
    assert new_bound(Count(5), 10, 3, "note") == Bound(Count(5), 10, 3, "note")
    same(new_bound(Count(5), None, 3), Bound)


def test_only_dataclasses_whose_init_does_nothing_more_may_be_made_quickly() -> None:
    @dataclass(frozen=True)
    class Listed:
        names: list[str] = field(default_factory=list)

    @dataclass(frozen=True)
    class Checked:
        n: int

        def __post_init__(self) -> None:
            assert self.n >= 0

    for cls in (Listed, Checked):
        with pytest.raises(AssertionError):
            quick(cls)
