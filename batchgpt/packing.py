"""Packing: items of packable tasks (embeddings, moderations) share one request, within the API's limits.

A pack holds items of one task whose bodies differ only in `input`, in input order, up to the
task's `batch_size` and, for embeddings, 300,000 prompt tokens. An input over the embeddings
limit of 8,192 tokens goes alone, so that its 400 fails no other item.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

from .records import Pack, Provider, Reply, Request, dump
from .tasks import MalformedReply
from .tokens import Counter
from .words import count

MAX_PACK_TOKENS = 300_000  # /v1/embeddings: tokens in one request, all inputs together
MAX_INPUT_TOKENS = 8_192  # /v1/embeddings: tokens in one input


# What items must share to share a pack: their task, their provider and their body but for `input`.
_Key = tuple[str, Provider, str]


class Packer:
    """Groups requests into packs as they come, in input order; `flush` closes what is left open."""

    def __init__(self, counter: Counter) -> None:
        self._counter = counter
        self._open: dict[_Key, list[tuple[Request, int]]] = {}
        self._tokens: dict[_Key, int] = {}

    def add(self, request: Request) -> Iterator[Pack]:
        """The packs that are full once `request` is added (often none)."""
        if not request.pack_size:
            yield Pack.of(request)
            return
        tokens = self._counter.text(request.model, request.body["input"]).tokens if request.type == "embedding" else 0
        if tokens > MAX_INPUT_TOKENS:
            yield Pack.of(request)
            return
        shape = json.dumps({k: v for k, v in request.body.items() if k != "input"}, sort_keys=True)
        key = (request.task, request.provider, shape)
        if key in self._open and self._tokens[key] + tokens > MAX_PACK_TOKENS:
            yield self._close(key)
        self._open.setdefault(key, []).append((request, tokens))
        self._tokens[key] = self._tokens.get(key, 0) + tokens
        if len(self._open[key]) >= request.pack_size:
            yield self._close(key)

    def flush(self) -> Iterator[Pack]:
        """Every pack still open, full or not."""
        for key in list(self._open):
            yield self._close(key)

    def _close(self, key: _Key) -> Pack:
        members = self._open.pop(key)
        self._tokens.pop(key, None)
        requests = tuple(request for request, _ in members)
        body = (
            {**requests[0].body, "input": [r.body["input"] for r in requests]}
            if len(requests) > 1
            else requests[0].body
        )
        payload = dump(body) if len(requests) > 1 else requests[0].payload
        return Pack(requests, body, payload, tokens=tuple(tokens for _, tokens in members))


def split(pack: Pack, reply: Reply) -> list[Reply]:
    """One reply per item. A packable task answers a list; usage is split in proportion to
    each input's own token count, so the parts add up to what the server reported."""
    if not pack.first.pack_size:  # not a packable task, or a Batch API line with its own input list
        return [reply]
    outputs = reply.output
    if not isinstance(outputs, list) or len(outputs) != len(pack.requests):
        raise MalformedReply(
            f"sent {count(len(pack.requests), 'input')}, the answer has "
            f"{count(len(outputs), 'result') if isinstance(outputs, list) else 'no results'}"
        )
    details = reply.details if isinstance(reply.details, list) else [None] * len(outputs)
    counts = list(pack.tokens) if any(pack.tokens) else [1] * len(outputs)  # the packer counted embeddings
    shares = _apportion(reply.prompt_tokens, counts)
    return [
        replace(reply, output=output, details=detail, prompt_tokens=share, completion_tokens=0)
        for output, detail, share in zip(outputs, details, shares, strict=True)
    ]


def _apportion(total: int | None, counts: list[int]) -> list[int | None]:
    """Split `total` in proportion to `counts` (not all zero), in whole tokens that add up to it."""
    if total is None:
        return [None] * len(counts)
    weight = sum(counts)
    shares = [total * c // weight for c in counts]
    shares[-1] += total - sum(shares)
    return list[int | None](shares)
