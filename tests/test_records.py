"""The records made with records.quick's __init__ are what the dataclasses' own __init__ makes."""

from __future__ import annotations

from dataclasses import astuple, dataclass, field, fields, replace

import pytest

from batchgpt.estimate import Bound
from batchgpt.jobs import Overrides, load, requests
from batchgpt.jobs.items import walk
from batchgpt.records import Request, Result, quick
from batchgpt.resultrows import row_for
from batchgpt.tokens import Count


def same(made: object, cls: type) -> None:
    """`made` has every field and nothing else, equals a copy made from them, and stays frozen."""
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
    assert Result(1, "x", "t", "chat", "m", "ok", attempts=3).attempts == 3


def test_a_bound_made_positionally_equals_one_made_by_its_init() -> None:
    assert astuple(Bound(Count(5), 10, 3, "note")) == ((5, False), 10, 3, "note", "tokens", 0.0, 0, 0, ())
    same(Bound(Count(5), None, 3), Bound)


def test_quick_makes_what_the_generated_init_makes_for_every_call_shape() -> None:
    @dataclass(frozen=True)
    class Plain:
        a: int
        b: str = "b"
        c: tuple[int, ...] = ()

    @quick
    @dataclass(frozen=True)
    class Quick:
        a: int
        b: str = "b"
        c: tuple[int, ...] = ()

    calls: list[tuple[tuple[object, ...], dict[str, object]]] = [((1,), {}), ((1, "x"), {}), ((1,), {"c": (2,)})]
    calls += [((), {"a": 1, "b": "y", "c": ()})]
    for args, kwargs in calls:
        quick_one, plain_one = Quick(*args, **kwargs), Plain(*args, **kwargs)  # type: ignore[arg-type]
        assert astuple(quick_one) == astuple(plain_one) and vars(quick_one) == vars(plain_one)
        assert repr(quick_one).replace("Quick", "Plain") == repr(plain_one)
    with pytest.raises(TypeError):
        Quick()  # type: ignore[call-arg]


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
