"""One HTTP client per provider for the length of a run, opened on first use and closed with the
run's exit stack. Both backends (online and the Batch API) keep theirs here. The clients share one
cache of attached files' encodings (encoded.py): a file attached to many items is encoded once a run."""

from __future__ import annotations

from contextlib import AsyncExitStack

from .bodies import mebibytes
from .client import Client
from .encoded import Encodings
from .providers import api_key
from .records import Provider


class Clients:
    def __init__(self, stack: AsyncExitStack, timeout: float, connections: int, max_answer_mb: float | None = None):
        self._stack = stack
        self._timeout = timeout
        self._connections = connections
        self._max_answer = mebibytes(max_answer_mb)  # the most one answer may take (limits.max_answer_mb)
        self._open: dict[Provider, Client] = {}
        self.encodings = Encodings()

    async def get(self, provider: Provider) -> Client:
        client = self._open.get(provider)
        if client is None:
            key = api_key(provider)
            client = Client(provider, key, self._timeout, self._connections, self._max_answer, self.encodings)
            self._open[provider] = client = await self._stack.enter_async_context(client)
        return client
