"""What `batchgpt balance` says: an endpoint's spending limit and usage, as its billing routes
report them, in dollars with what each figure is; or why it cannot say.

The routes (/dashboard/billing/subscription and /dashboard/billing/usage) are the OpenAI
dashboard's: a browser session reaches them, an API key does not. Relays keep them for their own
keys (one-api and new-api emulate them), which is what this command reads. `hard_limit_usd` is
dollars; `total_usage` is cents (both relays multiply by 100; one-api's comment says "0.01
dollar"). client.fetch_balance does the HTTP.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

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
