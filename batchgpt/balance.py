"""What `batchgpt balance` says: an endpoint's spending limit and usage, as its billing routes
report them, in dollars with what each figure is; or why it cannot say.

The routes (/dashboard/billing/subscription and /dashboard/billing/usage) are the OpenAI
dashboard's: a browser session reaches them, an API key does not. Relays keep them for their own
keys (one-api and new-api emulate them), which is what this command reads. `hard_limit_usd` is
dollars; `total_usage` is cents (both relays multiply by 100; one-api's comment says "0.01
dollar"). fetch_balance asks for them through client.Client, each GET under the retry policy
(retry.retrying).
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .client import Client
from .records import Failure, Provider, shortened, shown_url
from .retry import retrying

ROUTES = "/dashboard/billing/subscription and /dashboard/billing/usage"
ABSENT = (
    f"The billing routes ({ROUTES}) are served by relays such as one-api and new-api; OpenAI's own "
    "API keeps them for its dashboard, which API keys cannot reach. For OpenAI, see "
    "platform.openai.com/usage, or the Costs API (/v1/organization/costs) with an admin key"
)


@dataclass(frozen=True)
class Balance:
    """What the billing routes said, as they said it (`total_usage` in cents), and where."""

    hard_limit_usd: float
    total_usage: float  # cents, over since..until
    url: str
    since: str = ""  # the usage window asked for (YYYY-MM-DD), the end excluded
    until: str = ""
    soft_limit_usd: float | None = None
    access_until: float | None = None  # epoch seconds; 0 or None: no end given

    @property
    def used_usd(self) -> float:
        return self.total_usage / 100

    @property
    def remaining_usd(self) -> float:
        return self.hard_limit_usd - self.used_usd


def shown(balance: Balance) -> str:
    """The balance in dollars, then each figure as the relay sent it and what it means."""
    lines = [
        f"limit ${balance.hard_limit_usd:,.2f}, used ${balance.used_usd:,.2f}, remaining "
        f"${balance.remaining_usd:,.2f} (from {balance.url})",
        f"  limit: hard_limit_usd {balance.hard_limit_usd:g}, in dollars",
        f"  used: total_usage {balance.total_usage:g}, in cents (${balance.used_usd:,.2f}), "
        f"from {balance.since} to {balance.until}",
    ]
    if balance.soft_limit_usd is not None and balance.soft_limit_usd != balance.hard_limit_usd:
        lines.append(f"  soft limit: soft_limit_usd {balance.soft_limit_usd:g}, in dollars")
    if balance.access_until:
        day = datetime.datetime.fromtimestamp(balance.access_until, tz=datetime.timezone.utc).date()
        lines.append(f"  access until {day.isoformat()} (access_until {balance.access_until:g})")
    return "\n".join(lines)


def absent(reason: str) -> str:
    """Why no balance could be had, and where the routes live."""
    return f"{reason}. {ABSENT}"


async def fetch_balance(
    provider: Provider,
    api_key: str | None,
    timeout: float = 30.0,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> Balance | str:
    """The balance from /dashboard/billing/subscription and /dashboard/billing/usage, which relays
    (one-api, new-api) keep, tried under the base URL and at the host's root; or why it cannot be
    had. `sleep` waits between retries (asyncio.sleep when None)."""
    today = datetime.date.today()
    window = {
        "start_date": (today - datetime.timedelta(days=99)).isoformat(),
        "end_date": (today + datetime.timedelta(days=1)).isoformat(),
    }
    base = provider.base_url
    roots = [base] + ([base[: -len("/v1")]] if base.endswith("/v1") else [])
    reasons = []
    async with Client(provider, api_key, timeout, connections=2) as client:
        for root in roots:
            shown_root = shown_url(root)
            try:
                subscription = await _get_json(client, f"{root}/dashboard/billing/subscription", {}, sleep)
                if isinstance(subscription, str):
                    reasons.append(subscription)
                    continue
                usage = await _get_json(client, f"{root}/dashboard/billing/usage", window, sleep)
                if isinstance(usage, str):
                    return usage
                return _balance(subscription, usage, shown_root, window)
            except _Unreachable as exc:
                return f"cannot reach {shown_root}: {exc}"
            except (KeyError, TypeError, ValueError):
                reasons.append(f"{shown_root}: the billing answer is not in the expected shape")
    return "this endpoint does not expose its balance (" + "; ".join(reasons) + ")"


def _balance(subscription: dict[str, Any], usage: dict[str, Any], url: str, window: dict[str, str]) -> Balance:
    """The figures of the two answers; a KeyError, TypeError or ValueError when they are not there."""
    limit, cents = float(subscription["hard_limit_usd"]), float(usage["total_usage"])
    soft, until = subscription.get("soft_limit_usd"), subscription.get("access_until")
    if not all(math.isfinite(v) for v in (limit, cents, float(soft or 0), float(until or 0))):
        raise ValueError("not a finite amount")
    extra = {"soft_limit_usd": None if soft is None else float(soft), "access_until": float(until or 0)}
    return Balance(limit, cents, url, window["start_date"], window["end_date"], **extra)


class _Unreachable(Exception):
    """No answer from the host at all: trying its root instead would not get one either."""


async def _get_json(
    client: Client, url: str, params: dict[str, str], sleep: Callable[[float], Awaitable[None]] | None
) -> dict[str, Any] | str:
    """A route's JSON object, or why there is none; _Unreachable when nothing answered."""
    shown = shown_url(url)
    outcome = await retrying(lambda: client.request("GET", url, params), f"GET {shown}", sleep=sleep)
    if isinstance(outcome, Failure):
        if outcome.status is None:
            raise _Unreachable(outcome.message)
        if 300 <= outcome.status < 400:
            return f"GET {shown}: {outcome.message}"
        if outcome.status == 404:
            return f"GET {shown} answered 404"
        if outcome.cause == "malformed":
            return f"GET {shown} answered {outcome.status} with no JSON object"
        return f"GET {shown} answered {outcome.status}: {outcome.message}"
    error = outcome.data.get("error")
    if error:  # the proxies answer errors here with HTTP 200
        message = error.get("message") if isinstance(error, dict) else error
        return f"GET {shown}: {shortened(message)}"
    return dict(outcome.data)
