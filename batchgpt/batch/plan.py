"""A batch-mode run's plan, nothing sent: how the job splits into files (by lines and by bytes,
attached files counted inline, unread), and the most each could cost at the batch price (what a
budget holds before uploading it)."""

from __future__ import annotations

import logging
from typing import Any

from batchgpt import jobs
from batchgpt.estimate import Estimator
from batchgpt.jobs import Job
from batchgpt.pricing import BATCH_DISCOUNT, Pricing
from batchgpt.records import Request

from .files import Splitter, batchable, line_size, line_url, oversized

log = logging.getLogger(__name__)


def batch_worst(estimator: Estimator, request: Request) -> float | None:
    """The most a request can cost in a batch: its online worst case at the model's batch price
    (the larger of its input and output ratios to the online ones), else at half."""
    worst = estimator.worst_cost(request)
    if worst is None:
        return None
    price = estimator.pricing.price(request.model, warn=False)
    if price is None or price.batch_input is None or not price.input or not price.output:
        return worst * BATCH_DISCOUNT
    return worst * max(price.batch_input / price.input, (price.batch_output or 0.0) / price.output)


PLAN_COLUMNS = ["file", "endpoint", "model", "requests", "inputs", "megabytes", "cost_usd_max"]


def plan(job: Job) -> tuple[list[dict[str, Any]], int]:
    """How a batch-mode run would split the job into files (nothing sent), each with its worst
    case at the batch price (what a budget holds before uploading it), and how many items it
    would send online instead."""
    splitter = Splitter()
    estimator = Estimator(Pricing(job.pricing, job.provider.base_url, job.unpriced))
    rows: dict[int, dict[str, Any]] = {}
    online = 0
    for request in jobs.requests(job):
        if not batchable(request):
            online += 1
            continue
        size = line_size(request)
        too_big = oversized(size)
        if too_big is not None:  # the run fails it alone (submit.py)
            log.warning("%s: %s", request.id, too_big)
            continue
        key, fill, _ = splitter.add(request, size, batch_worst(estimator, request))
        rows[fill.number] = {
            "file": fill.number,
            "endpoint": line_url(key.provider, key.endpoint),
            "model": key.model,
            "requests": fill.lines,
            "inputs": fill.inputs,
            "megabytes": round(fill.bytes / 10**6, 2),
            "cost_usd_max": None if fill.worst_usd is None else round(fill.worst_usd, 6),
        }
    return [rows[n] for n in sorted(rows)], online
