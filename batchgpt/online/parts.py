"""What an engine works with, handed to it whole: the lifecycle's wiring builds each part, tests
give it a fake clock. The engine builds none of them itself."""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from batchgpt.budget import Budget
from batchgpt.estimate import Estimator
from batchgpt.media import MediaWriter
from batchgpt.outage import Outage
from batchgpt.pacing import Pacing
from batchgpt.pricing import Pricing
from batchgpt.shared import SharedLimits
from batchgpt.slow import Deadlines


@dataclass(frozen=True)
class Timing:
    """Where the engine takes time and chance from. Tests give it a fake clock and a sleep that
    only moves that clock, so a fault test waits out no real backoff."""

    clock: Callable[[], float] = time.monotonic
    draw: Callable[[], float] = random.random  # uniform in [0, 1): jitter
    sleep: Callable[[float], Awaitable[None]] | None = None  # None: really wait, waking when the run stops


@dataclass(frozen=True)
class Parts:
    """An engine's collaborators: prices, the worst-case estimator, the budget (None: no limit),
    where generated files go, the pacers, the outage watch, the per-limit deadlines, a limit
    shared with other processes (None: this process's alone) and the clock."""

    pricing: Pricing
    estimator: Estimator
    budget: Budget | None
    media: MediaWriter
    pacing: Pacing
    outage: Outage
    deadlines: Deadlines
    shared: SharedLimits | None
    timing: Timing
