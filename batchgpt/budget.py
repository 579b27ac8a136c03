"""The spending limit of a run: reserve each request's worst case before it starts, settle with
the real cost when its answer arrives.

Invariant: spent + reserved <= limit at all times, and a request's real cost never exceeds its
reservation, so the real spend never exceeds the limit. A request that cannot be reserved is not
started; the run stops starting requests from then on.
"""
from __future__ import annotations


class Budget:
    def __init__(self, limit_usd: float):
        self.limit = limit_usd
        self.spent = 0.0
        self.reserved = 0.0

    def reserve(self, worst_usd: float) -> bool:
        if self.spent + self.reserved + worst_usd > self.limit:
            return False
        self.reserved += worst_usd
        return True

    def settle(self, worst_usd: float, actual_usd: float | None) -> None:
        self.reserved = max(0.0, self.reserved - worst_usd)
        self.spent += actual_usd or 0.0

    def __repr__(self) -> str:
        return f"Budget(limit=${self.limit:.4f}, spent=${self.spent:.4f}, reserved=${self.reserved:.4f})"
