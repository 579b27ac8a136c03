"""Which columns matter most in each table the command line prints, for a terminal too narrow to
show them all (screen.Ranking: needed columns go last, after long names have wrapped).

The dry run is read for what a job may cost: the worst case first, the cost in the mode it runs
in, and the completion tokens behind the worst case. `runs` is read for what each run spent
and how it ended; `batches` for where each batch stands. The counts behind a figure, times and
endpoints are there for a wider look: `--report FILE`, or the whole table off a terminal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from batchgpt.screen import Ranking

# off a terminal (piped, in a log) a table is printed whole
WHOLE = " (every column: a wider terminal, or the command piped through `| cat`)"


def dry_run(mode: str) -> Ranking:
    """The estimate: task and model name the row; then the worst case, the cost in this mode and
    the completion tokens the worst case counts."""
    this, other = (
        ("cost_usd_batch", "cost_usd_expected") if mode == "batch" else ("cost_usd_expected", "cost_usd_batch")
    )
    return Ranking(
        needed=("task", "model", "cost_usd_max", this, "max_completion_tokens"),
        optional=("requests", other, "minutes", "prompt_tokens"),
        fold=("notes",),
        names=("task", "model"),
        more=" (--report FILE writes every column)",
    )


# The batch files a batch run would make: what each holds and its worst case at the batch price.
PLAN = Ranking(needed=("file", "cost_usd_max", "requests"), optional=("model", "megabytes", "inputs", "endpoint"))


def runs(rows: Sequence[Mapping[str, Any]]) -> Ranking:
    """Past runs: how each ended (its exit code) and what it spent, then its counts. The job names
    a row only when the runs are of several jobs."""
    several = len({row.get("job") for row in rows}) > 1
    return Ranking(
        needed=("run", *(("job",) if several else ()), "exit", "spent_usd", "failed", "ok"),
        optional=(
            "started",
            "job_cost_usd",
            "items",
            "skipped",
            "seconds",
            "job_tokens",
            *(() if several else ("job",)),
            "endpoint",
        ),
        fold=("retries",),
        names=("run", "job"),
        more=WHOLE,
    )


def batches(rows: Sequence[Mapping[str, Any]]) -> Ranking:
    """Batch API batches: where each stands, then its counts, then when it was made and ends. The
    id is whole at any width (it is pasted into --adopt and the dashboard): on 60 columns the
    counts give way to it."""
    several = len({row.get("job") for row in rows}) > 1
    return Ranking(
        needed=("batch", "status", "completed", "failed", "requests", *(("job",) if several else ())),
        optional=("ends", "model", "run", "created", *(() if several else ("job",))),
        names=("job", "status"),  # "completed (collected)" wraps at its space
        more=WHOLE,
    )
