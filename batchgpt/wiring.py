"""The run lifecycle's wiring: the one place a run's backend and its collaborators are built.

The engine receives its pricing, estimator, budget, media writer, pacers, outage watch, deadlines
and shared limit (online/parts.py) from `engine_parts`; the Batch API runner receives its prices
and a way to send online the items the Batch API does not take, so neither backend imports the
other. A new backend is one more branch in `wire`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .backend import Backend
from .batch.files import batchable
from .batch.runner import FOLDER, BatchParts, BatchRunner
from .budget import Budget
from .estimate import Estimator
from .jobs import Job
from .media import MediaWriter, file_stem, media_folder
from .online.engine import Engine
from .online.parts import Parts, Timing
from .outage import Outage
from .pacing import Pacing
from .pricing import Pricing
from .progress import Progress
from .records import Request
from .runoptions import RunOptions
from .shared import SharedLimits
from .slow import Deadlines
from .store import Store


def wire(
    job: Job, store: Store, run_id: int, options: RunOptions, progress: Progress, state_dir: Path, cancel: bool
) -> Backend:
    """The backend that executes this run: the Batch API's for a batch-mode job (or a cancel),
    else the online engine."""
    if not cancel and job.mode != "batch":
        return online_engine(job, store, run_id, options, progress)

    def online(part: Job) -> Backend:  # the items the Batch API does not take (speech, transcription)
        return online_engine(part, store, run_id, options, progress, only=_unbatchable)

    pricing = Pricing(job.pricing, job.provider.base_url, job.unpriced)
    parts = BatchParts(pricing, Estimator(pricing), MediaWriter(media_folder(job.results, job.name)), online)
    folder = state_dir / FOLDER / file_stem(job.name)
    return BatchRunner(job, store, run_id, options, cancel, progress, folder, parts)


def online_engine(
    job: Job,
    store: Store,
    run_id: int,
    options: RunOptions,
    progress: Progress,
    timing: Timing | None = None,
    only: Callable[[Request], bool] | None = None,
) -> Engine:
    """An engine for the job's requests (those `only` picks), with its collaborators."""
    return Engine(job, store, run_id, options, progress, engine_parts(job, timing), only)


def engine_parts(job: Job, timing: Timing | None = None) -> Parts:
    """Everything an engine works with, built from the job's settings."""
    timing = timing or Timing()
    pricing = Pricing(job.pricing, job.provider.base_url, job.unpriced)
    limits = job.limits
    shared = SharedLimits(limits.shared) if limits.shared else None
    pacing = Pacing(
        limits.rpm,
        limits.tpm,
        limits.concurrency,
        limits.patience,
        clock=timing.clock,
        shared=shared.limit if shared else None,
        draw=timing.draw,
        sleep=timing.sleep,
    )
    return Parts(
        pricing=pricing,
        estimator=Estimator(pricing),
        budget=Budget(job.budget_usd) if job.budget_usd is not None else None,
        media=MediaWriter(media_folder(job.results, job.name)),
        pacing=pacing,
        outage=Outage(limits.outage, timing.clock),
        deadlines=Deadlines(limits.timeout),
        shared=shared,
        timing=timing,
    )


def _unbatchable(request: Request) -> bool:
    return not batchable(request)
