"""Packing: which embedding and moderation items share a request, and what that request carries."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from batchgpt.api import load_job
from batchgpt.jobs import requests
from batchgpt.packing import MAX_INPUT_TOKENS, MAX_PACK_TOKENS, Packer
from batchgpt.records import Pack, Request
from batchgpt.tokens import Count, Counter


class DigitCounter(Counter):
    """A text's token count is the number it spells, so a test can say exactly how big an input is."""

    def text(self, model: str, text: str) -> Count:
        return Count(int(text))


def job_requests(*tasks: dict[str, Any], **job: Any) -> list[Request]:
    return list(requests(load_job({**job, "tasks": list(tasks)})))


def embedding_task(*texts: str, **task: Any) -> dict[str, Any]:
    return {"type": "embedding", **task, "items": [{"text": t} for t in texts]}


def pack_all(packer: Packer, stream: Iterable[Request]) -> list[Pack]:
    packs: list[Pack] = []
    for request in stream:
        packs.extend(packer.add(request))
    packs.extend(packer.flush())
    return packs


def ids(packs: Iterable[Pack]) -> list[list[str]]:
    return [[r.id for r in pack.requests] for pack in packs]


def without_input(body: Any) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "input"}


def test_packs_hold_up_to_batch_size_items_in_input_order() -> None:
    packer = Packer(Counter())
    stream = job_requests(embedding_task("a", "b", "c", "d", "e", batch_size=2))
    full = [pack for request in stream for pack in packer.add(request)]
    assert ids(full) == [["embedding:1", "embedding:2"], ["embedding:3", "embedding:4"]]
    assert ids(packer.flush()) == [["embedding:5"]]
    first = full[0]
    assert first.body["input"] == ["a", "b"]
    assert json.loads(first.payload) == dict(first.body)
    assert without_input(first.body) == without_input(first.requests[0].body)
    assert len(first.tokens) == 2 and all(t > 0 for t in first.tokens)


def test_the_default_batch_size_is_the_types_own() -> None:
    texts = [f"text {n}" for n in range(33)]
    packs = pack_all(Packer(Counter()), job_requests({"type": "moderation", "items": [{"text": t} for t in texts]}))
    assert [len(p.requests) for p in packs] == [32, 1]


def test_a_pack_of_one_is_the_request_as_it_was_built() -> None:
    (request,) = job_requests(embedding_task("alone"))
    (pack,) = pack_all(Packer(Counter()), [request])
    assert pack.requests == (request,)
    assert pack.body == request.body and pack.body["input"] == "alone"
    assert pack.payload == request.payload


def test_requests_of_types_that_do_not_pack_go_at_once() -> None:
    stream = job_requests(
        {"type": "chat", "items": [{"prompt": "a"}, {"prompt": "b"}]}, defaults={"model": "gpt-4o-mini"}
    )
    packer = Packer(Counter())
    assert [ids(packer.add(r)) for r in stream] == [[["chat:1"]], [["chat:2"]]]
    assert list(packer.flush()) == []


def test_the_token_cap_closes_a_pack_before_it_would_pass() -> None:
    # 36 inputs of 8,192 tokens and one of 5,088 make exactly 300,000: they still fit in one request.
    texts = [str(MAX_INPUT_TOKENS)] * 36 + [str(MAX_PACK_TOKENS - 36 * MAX_INPUT_TOKENS), "1"]
    packs = pack_all(Packer(DigitCounter()), job_requests(embedding_task(*texts)))
    assert [len(p.requests) for p in packs] == [37, 1]
    assert sum(packs[0].tokens) == MAX_PACK_TOKENS
    assert packs[1].tokens == (1,)


def test_a_pack_never_passes_the_token_cap() -> None:
    packs = pack_all(Packer(DigitCounter()), job_requests(embedding_task(*["8000"] * 80)))
    assert [len(p.requests) for p in packs] == [37, 37, 6]
    assert all(sum(p.tokens) <= MAX_PACK_TOKENS for p in packs)


def test_an_oversize_input_goes_alone_and_at_once() -> None:
    packer = Packer(DigitCounter())
    small, oversize, limit = job_requests(embedding_task("10", str(MAX_INPUT_TOKENS + 1), str(MAX_INPUT_TOKENS)))
    assert list(packer.add(small)) == []
    (alone,) = packer.add(oversize)
    assert alone.requests == (oversize,) and alone.body["input"] == str(MAX_INPUT_TOKENS + 1)
    assert list(packer.add(limit)) == []  # exactly at the limit an input still packs
    assert ids(packer.flush()) == [["embedding:1", "embedding:3"]]


def test_flush_closes_every_open_pack_once() -> None:
    packer = Packer(Counter())
    assert list(packer.flush()) == []
    stream = job_requests(embedding_task("a", "b", name="one"), embedding_task("c", name="two"))
    assert [list(packer.add(r)) for r in stream] == [[], [], []]
    assert ids(packer.flush()) == [["one:1", "one:2"], ["two:1"]]
    assert list(packer.flush()) == []


def test_items_whose_bodies_differ_never_share_a_pack() -> None:
    stream = job_requests(
        {
            "type": "embedding",
            "name": "mixed",
            "items": [
                {"id": "plain-1", "text": "a"},
                {"id": "dims-1", "text": "b", "dimensions": 8},
                {"id": "large-1", "text": "c", "model": "text-embedding-3-large"},
                {"id": "plain-2", "text": "d"},
                {"id": "seed-1", "text": "e", "params": {"user": "x"}},
                {"id": "dims-2", "text": "f", "dimensions": 8},
            ],
        },
        embedding_task("g", name="same-body-other-task"),
        embedding_task("h", name="other-endpoint", provider={"base_url": "http://127.0.0.1:9/v1"}),
    )
    packs = pack_all(Packer(Counter()), stream)
    assert sorted(ids(packs)) == sorted(
        [
            ["plain-1", "plain-2"],
            ["dims-1", "dims-2"],
            ["large-1"],
            ["seed-1"],
            ["same-body-other-task:1"],
            ["other-endpoint:1"],
        ]
    )
    for pack in packs:
        shapes = {json.dumps(without_input(r.body), sort_keys=True) for r in pack.requests}
        assert len(shapes) == 1
        assert len({(r.task, r.provider) for r in pack.requests}) == 1
