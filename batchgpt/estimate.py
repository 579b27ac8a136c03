"""What a job may cost before anything is sent: the dry run (`batchgpt estimate`, `run --dry-run`)
and the verdict on its budget.

It walks the job's items once, checking them as it goes, and sums each request's bound
(bounds.py) into the table drytable.py shapes; a big JSONL job is walked in two processes at
once (dryfork.py). The names the runner and the budget use are importable from here as before.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from . import dryfork
from .bounds import DEFAULT_EXPECTED_OUTPUT, Bound, Estimator, choices
from .drytable import COLUMNS, sums, table
from .jobs import ItemCheck, Job, Overrides, models, read, requests
from .pricing import Pricing

__all__ = [
    "COLUMNS",
    "DEFAULT_EXPECTED_OUTPUT",
    "Bound",
    "Estimator",
    "budget_verdict",
    "choices",
    "dry_run",
    "estimate",
]


def estimate(job: Job, pricing: Pricing | None = None, check: ItemCheck | None = None) -> list[dict[str, Any]]:
    """The dry-run table: one row per task and model in input order, then TOTAL. With `check`, the
    items are checked as they are estimated (see `dry_run`)."""
    # the models the check notes as it walks are warned of by it, where the job names them
    pricing = pricing or Pricing(job.pricing, job.provider.base_url, job.unpriced if check is None else check.models)
    estimator = Estimator(pricing)
    groups = dryfork.halves(job, check, estimator) if check is not None else None
    if groups is None:
        groups = sums(requests(job, check, sendable=False), estimator)
    return table(groups, pricing, job.limits, estimator.counter.offline)


def dry_run(source: str | Path, overrides: Overrides) -> tuple[Job, list[dict[str, Any]]]:
    """Load and estimate a job in one walk over its items: nothing is sent, so the estimate need not
    wait for the check; it is thrown away when JobError lists the problems. (The loaded job, rows.)"""
    job, problems = read(source, overrides)
    if job is None:
        problems.raise_any()
    assert job is not None
    check = ItemCheck(problems)
    rows = estimate(job, check=check)
    unpriced = models.unpriced(job, problems, overrides)
    models.say(problems, job)
    problems.raise_any()
    return replace(job, count=check.rows, unpriced=unpriced), rows


def budget_verdict(budget: float, worst: float | None, expected: float | None) -> tuple[bool, str]:
    """Whether a job fits its budget, and a sentence saying so: (over, sentence). `worst` and
    `expected` are the estimate's totals (None when some model has no price)."""
    limit = f"the budget of ${budget:.6g}"
    if worst is None or expected is None:
        return True, f"{limit} cannot bound a model with no price: a budgeted run stops before sending to it"
    if expected > budget:
        return True, (
            f"over {limit}: the expected cost is ${expected:,.6f}, so the run would stop at the budget "
            "and leave the rest of the items skipped"
        )
    if worst > budget:
        return True, (
            f"the worst case (${worst:,.6f}) is over {limit}: the expected ${expected:,.6f} fits, but answers "
            "as long as max_tokens would stop the run at the budget"
        )
    return False, f"within {limit}: the worst case is ${worst:,.6f}"
