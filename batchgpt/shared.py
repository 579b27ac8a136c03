"""One rate limit shared by every process that names the same Redis: the only module that knows Redis.

`limits.shared: redis://HOST:PORT/DB` makes each request, after its own process's pacer, also take
a slot from a sliding-window counter in Redis (the `limits` library's atomic Lua script, on the
Redis server's clock), so two cron jobs on one key together stay within the key's limit. The
counter is named by a hash of the endpoint and the key, and the model, never by the key itself,
and each process applies the limit it knows (told or learned) to the common count, so the most
careful process sets the pace for itself. Windows are one second long (longer only for limits
under about one request a second, which need a window to hold one), so the count allows no burst
bigger than a second's worth, to within one request a second.

If Redis stops answering mid-run, the run goes on with each process pacing itself, and says so
once: a missing shared limit costs some 429s, never an item.
"""

from __future__ import annotations

import logging
import math

from .errors import UsageError

log = logging.getLogger(__name__)
SHARE = 0.97  # of a limit that the shared count allows: one process's pacing error is not another's
KEY_PREFIX = "batchgpt"


class SharedLimits:
    """A connection to the Redis that holds every shared limit of a run."""

    def __init__(self, url: str):
        try:
            from limits.aio.storage import RedisStorage
            from redis.asyncio import ConnectionPool
        except ImportError:
            raise UsageError("limits.shared needs the Redis client: pip install 'batchgpt[shared]'") from None
        self.url = url
        try:
            self._pool = ConnectionPool.from_url(url, socket_timeout=5, socket_connect_timeout=5)
            self._storage = RedisStorage(
                f"async+{url}",
                implementation="redispy",
                connection_pool=self._pool,  # type: ignore[arg-type]  # passed through to redis; typed too narrowly
                key_prefix=KEY_PREFIX,
                wrap_exceptions=True,
            )
        except Exception as exc:  # a URL the client cannot use: say so, without its password
            raise UsageError(f"cannot use the shared limit at {redacted(url)}: {exc}") from None
        self.broken: str | None = None

    @classmethod
    async def verify(cls, url: str) -> None:
        """Fail before anything is sent when the Redis cannot be used."""
        shared = cls(url)  # a UsageError for a URL the client cannot take
        try:
            await shared._storage.get_sliding_window("probe", 1)
        except Exception as exc:  # the client's errors vary by version; all mean "unusable"
            raise UsageError(f"cannot use the shared limit at {redacted(url)}: {exc}") from None
        finally:
            await shared.close()

    async def close(self) -> None:
        await self._pool.disconnect()

    def limit(self, name: str) -> SharedLimit:
        return SharedLimit(self, name)

    async def take(self, key: str, per_second: float, cost: int) -> float:
        """Take `cost` from the key's count when it fits the limit: 0.0, or seconds to wait first."""
        window = 1 if per_second * SHARE >= 1 else math.ceil(1 / (per_second * SHARE))
        allowed = max(1, math.floor(per_second * window * SHARE))
        cost = min(cost, allowed)
        if self.broken is not None:
            return 0.0
        try:
            taken = await self._storage.acquire_sliding_window_entry(key, allowed, window, cost)
        except Exception as exc:
            self.broken = f"{type(exc).__name__}: {exc}"
            log.warning(
                "the shared limit at %s failed (%s); each process now paces itself", redacted(self.url), self.broken
            )
            return 0.0
        return 0.0 if taken else window * cost / allowed


class SharedLimit:
    """One limit (endpoint, key, model) in the shared Redis. Its pacer asks for one request at a time."""

    def __init__(self, limits: SharedLimits, name: str):
        self._limits = limits
        self._requests = f"{name}:requests"
        self._tokens = f"{name}:tokens"
        self._tokens_taken = False  # the request asking now has its tokens and waits for a request slot

    async def take(self, rate: float | None, tokens: int, token_rate: float | None) -> float:
        """Take this request's tokens, then its request slot: 0.0 once both are taken, else the
        seconds to wait before asking again (what was taken stays taken)."""
        if token_rate and tokens and not self._tokens_taken:
            wait = await self._limits.take(self._tokens, token_rate, tokens)
            if wait > 0:
                return wait
            self._tokens_taken = True
        if rate:
            wait = await self._limits.take(self._requests, rate, 1)
            if wait > 0:
                return wait
        self._tokens_taken = False
        return 0.0


def redacted(url: str) -> str:
    """A Redis URL without its password (before the host, or as ?password=)."""
    scheme, sep, rest = url.partition("://")
    rest = rest.partition("?")[0]
    return f"{scheme}{sep}***@{rest.rpartition('@')[2]}" if "@" in rest else f"{scheme}{sep}{rest}"
