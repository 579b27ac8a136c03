"""Endpoints: the name of where a request goes (provider kind and base URL, without credentials).
An answer from one endpoint never stands in for another's, and each run names those it used."""

from __future__ import annotations

import functools
from collections.abc import Iterable

from batchgpt.records import Provider, Request, shown_url


def endpoint_of(request: Request) -> str:
    """What names where a request goes: the provider's kind and base URL (without credentials)."""
    return _endpoint(request.provider.kind, request.provider.base_url)


def endpoints(providers: Iterable[Provider]) -> list[str]:
    """Where requests made with `providers` go, named as endpoint_of names them."""
    return sorted({_endpoint(provider.kind, provider.base_url) for provider in providers})


@functools.lru_cache(maxsize=64)  # a job has a provider or a few; every item is enrolled with one
def _endpoint(kind: str, base_url: str) -> str:
    return f"{kind} {shown_url(base_url)}"
