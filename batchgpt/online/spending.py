"""What an online run may spend and has spent: each attempt's worst case held against the budget
before it is sent and settled at its cost when answered, and attempts that may have been billed
without saying so counted at their worst case (slow.Unconfirmed)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from batchgpt.budget import Budget
from batchgpt.estimate import Bound, Estimator
from batchgpt.records import Failure, Pack, Request
from batchgpt.slow import Unconfirmed

log = logging.getLogger(__name__)

Bounds = Callable[[], list[Bound]]


class Spending:
    def __init__(self, budget: Budget | None, estimator: Estimator, stop: Callable[[str], None]):
        self.budget = budget
        self.estimator = estimator
        self.unconfirmed = Unconfirmed()
        self._stop = stop  # told why, when the budget ends the run

    def bounds(self, pack: Pack) -> Bounds:
        """The pack's token bounds, counted once and only when the budget or a token limit asks."""
        counted: list[list[Bound]] = []

        def bounds() -> list[Bound]:
            if not counted:
                counted.append([self.estimator.bound(request) for request in pack.requests])
            return counted[0]

        return bounds

    def worst(self, pack: Pack, bounds: Bounds) -> float | str:
        """The most the pack can cost (0 without a budget), or why that cannot be known."""
        if self.budget is None:
            return 0.0
        most = self.most(pack, bounds)
        if isinstance(most, Request):
            return (
                f"the cost of model {most.model!r} cannot be bounded (no price or no max_tokens), "
                f"so the budget cannot be kept: add it under `pricing:` or set max_tokens"
            )
        return most

    def most(self, pack: Pack, bounds: Bounds) -> float | Request:
        """The most the pack can cost, or the first of its requests whose cost has no bound."""
        worst = 0.0
        for request, bound in zip(pack.requests, bounds(), strict=True):
            cost = self.estimator.worst_cost(request, bound)
            if cost is None:
                return request
            worst += cost
        return worst

    async def hold(self, worst: float) -> bool:
        """Reserve the worst case of one attempt; False (and the run stops) when the budget is reached."""
        if self.budget is None or await self.budget.hold(worst):
            return True
        self._stop(
            f"budget of ${self.budget.limit:g} reached: ${self.budget.spent:.6f} spent, "
            f"and the next request could cost ${worst:.6f}"
        )
        return False

    def settle(self, pack: Pack, worst: float, cost: float) -> None:
        assert self.budget is not None
        self.budget.settle(worst, cost)
        if cost > worst * 1.01 + 1e-9:  # the server reported more than max_tokens allows, or more images
            log.warning("%s cost $%.6f, more than its worst case of $%.6f", pack.first.id, cost, worst)
        if self.budget.spent > self.budget.limit:
            self._stop(
                f"budget of ${self.budget.limit:g} passed: ${self.budget.spent:.6f} spent, as answers cost "
                "more than their worst case"
            )

    def unconfirmed_attempt(self, pack: Pack, failure: Failure, bounds: Bounds, worst: float) -> bool:
        """An attempt that may have been billed without saying how much: counted at its worst case,
        in the budget (a retry reserves again) and in the summary. True when its hold was settled."""
        cost: float | None = worst
        settled = False
        if self.budget is not None:
            self.budget.settle(worst, worst)
            settled = True
        else:  # counted only now, as without a budget nothing else needs it
            most = self.most(pack, bounds)
            cost = most if isinstance(most, float) else None
        self.unconfirmed.add(failure, cost)
        return settled

    def close(self) -> None:
        """The run stopped: requests waiting for room in the budget give up."""
        if self.budget is not None:
            self.budget.close()
