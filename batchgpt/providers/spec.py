"""The seam for providers: what batchgpt asks of an API it sends requests to.

A provider module describes, in one place, where each request goes (the URL of a task's endpoint,
of the Batch API's routes and of a batch input line), how requests are authenticated (headers
built from the key), how a request body maps onto the provider's own and back (the identity
for OpenAI and the servers compatible with it, so their bodies go out as they were packed), and
how its answers report usage (openai.py's usage parsing). client.py talks to a provider only
through this Protocol; providers/__init__.py picks the one a job's `provider.kind` names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from batchgpt.records import Provider


class MalformedReply(Exception):
    """The server answered 2xx with a body that is not the documented shape; worth a retry."""


class ProviderApi(Protocol):
    """How batchgpt speaks to one kind of API (OpenAI-compatible, Azure OpenAI ...)."""

    @property
    def kinds(self) -> tuple[str, ...]:
        """The `provider.kind` values it serves."""
        ...

    @property
    def openai_wire(self) -> bool:
        """Requests and answers are OpenAI's as they are: no mapping either way."""
        ...

    def url(self, provider: Provider, endpoint: str, model: str) -> str:
        """Where a task's request to `endpoint` (`/chat/completions`) for `model` goes."""
        ...

    def route(self, provider: Provider, path: str) -> tuple[str, dict[str, str]]:
        """The URL and query of another API route (the Batch API's `/files`, `/batches/ID`)."""
        ...

    def line_url(self, provider: Provider, endpoint: str) -> str:
        """A batch input line's `url` for a task endpoint, and the batch's `endpoint`."""
        ...

    def headers(self, provider: Provider, api_key: str | None) -> dict[str, str]:
        """Every request's headers: the key as the provider takes it, and the provider's own."""
        ...

    def needs_key(self, provider: Provider) -> bool:
        """Whether a request without a key is sure to be refused (an official host)."""
        ...

    def request(self, endpoint: str, body: Mapping[str, Any]) -> Mapping[str, Any]:
        """A task's OpenAI-shaped body as this provider takes it (asked only without openai_wire)."""
        ...

    def answer(self, endpoint: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """An answer in OpenAI's shape, for the tasks to read (asked only without openai_wire)."""
        ...
