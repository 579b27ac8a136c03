"""What a server's `x-ratelimit-*` headers say about a rate limit: its size, and how long until one
more request fits when it is used up.

OpenAI sends `x-ratelimit-limit-{requests,tokens}`, `x-ratelimit-remaining-*` and
`x-ratelimit-reset-*`, the last as durations such as '1s', '6m0s' or '12ms'. Pure parsing: the
pacer (pacing.py) learns its pace from these, and the retry policy (retry.py) its wait.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

TOKEN_WAIT_CAP = 1.0  # an exhausted token limit pauses at most this long (the request size is unknown)
RATE_HEADERS = (
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


@dataclass(frozen=True)
class ServerLimits:
    """What one answer's `x-ratelimit-*` headers say about its limit."""

    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    wait: float = 0.0  # seconds until one more request fits, when a limit is used up

    @classmethod
    def parse(cls, headers: Mapping[str, str]) -> ServerLimits:
        return cls(
            number(headers.get("x-ratelimit-limit-requests")),
            number(headers.get("x-ratelimit-limit-tokens")),
            max(refill_wait(headers, "requests") or 0.0, refill_wait(headers, "tokens") or 0.0),
        )


def refill_wait(headers: Mapping[str, str], what: str) -> float | None:
    """How long until one more request fits a limit the headers say is used up (None when they do
    not say so). `x-ratelimit-reset-*` is when the limit is whole again, but one request needs only
    part of it back: a minute's share (60 / limit) for requests, and at most TOKEN_WAIT_CAP for
    tokens, whose next request's size is not known here."""
    remaining = number(headers.get(f"x-ratelimit-remaining-{what}"))
    if remaining is None or remaining > 0:
        return None
    reset = reset_delay(headers, what) or 1.0
    if what == "tokens":
        return min(reset, TOKEN_WAIT_CAP)
    limit = number(headers.get(f"x-ratelimit-limit-{what}"))
    return min(reset, 60.0 / limit) if limit else reset


def reset_delay(headers: Mapping[str, str], what: str) -> float | None:
    """Seconds until x-ratelimit-reset-{requests,tokens} ('1s', '6m0s', '12ms')."""
    value = headers.get(f"x-ratelimit-reset-{what}")
    return parse_duration(value) if value else None


def parse_duration(value: str) -> float | None:
    """Seconds in a plain number or a Go-style duration ('1h2m3.5s', '12ms'); None for anything else."""
    value = value.strip()
    seconds = number(value)
    if seconds is not None:
        return max(seconds, 0.0)
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        return None
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return sum(float(n) * scale[u] for n, u in parts)


def number(value: str | None) -> float | None:
    """A header's number, or None when it is absent or not a finite number: a server (or a relay)
    that sends `nan` or `inf` tells us nothing, and a NaN wait would break the event loop's clock."""
    try:
        found = float(value) if value is not None else None
    except ValueError:
        return None
    return found if found is not None and math.isfinite(found) else None
