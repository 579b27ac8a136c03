"""Models no price is known for: a warning for each, once, where the job names it, with the
nearest name the price table knows (`gpt-4o-mnii`: did you mean 'gpt-4o-mini'?).

A warning, never an error: relays and gateways serve models under names of their own, which no
table lists. But such a name is more often a typo, which the API refuses only once the run has
begun, item after item. The walk notes where each model is first named (`note`, a lookup per
item); `unpriced` looks each distinct model up once, at the end. A model the job prices itself
(`pricing:`) is known; so is one priced per image, character or minute, or free.
"""

from __future__ import annotations

import logging

from batchgpt import logs
from batchgpt.errors import NO_POINTER, Problem
from batchgpt.pricing import Pricing
from batchgpt.schema import JsonPath, pointer
from batchgpt.tasks import TASKS

from .job import Item, Job, Overrides
from .problems import Problems

log = logging.getLogger(__name__)


def note(item: Item, problems: Problems, line: int | None) -> None:
    """Where the item's model is named, when it is the first item to name it: the item's own
    field (a batch line's body), else its task's or the defaults' (resolved by `unpriced`). Most
    items name a model named before: for them, two lookups."""
    fields = item.fields
    model = fields.get("model")
    own: JsonPath | None = ("model",)
    if model is None:
        body = fields.get("body")
        if body is not None:
            model, own = (body.get("model") if isinstance(body, dict) else None), ("body", "model")
        else:
            model, own = item.task.params.get("model"), None
    if type(model) is not str or model in problems.models or not model:
        return
    path = None if own is None else (*item.path, *own)
    if path is not None and item.line is None:  # an item in the job file: the line of its model
        line = problems.line_of(path)
    problems.models[model] = (item.file, line if path is not None else None, path, item.task.index)


def unpriced(job: Job | None, problems: Problems, overrides: Overrides) -> tuple[str, ...]:
    """The models the job names that have no known price, each warned of (problems.warnings) where
    it is first named."""
    if job is None or not problems.models:
        return ()
    pricing = Pricing(job.pricing, job.provider.base_url)
    found = []
    for model, (file, line, path, task) in problems.models.items():
        if pricing.knows(model):
            continue
        found.append(model)
        nearest = pricing.nearest(model)
        hint = f" (did you mean {nearest!r}?)" if nearest else ""
        if path is None:
            file, line, path, hint = _set_by(job, problems, overrides, model, task, hint)
        message = (
            f"no price known for model {model!r}{hint}: its cost is left empty; if a relay or gateway "
            "serves this name, price it under `pricing:` in the job"
        )
        problems.warnings.append(Problem(file, line, message, NO_POINTER if path is None else pointer(path)))
    return tuple(found)


def _set_by(
    job: Job, problems: Problems, overrides: Overrides, model: str, task: int, hint: str
) -> tuple[str, int | None, JsonPath | None, str]:
    """Where a model no item names is set: the task, the defaults, or --model."""
    kind = next((t.type for t in job.tasks if t.index == task), None)
    chat = kind is None or TASKS[kind].chat_family  # a JSONL job's tasks take the defaults
    if not (chat and job.defaults.get("model") == model):
        path: JsonPath = ("tasks", task, "model")
        return problems.file, problems.line_of(path), path, hint
    if overrides.model == model:
        return problems.file, None, None, f" (given by --model){hint}"
    return problems.file, problems.line_of(("defaults", "model")), ("defaults", "model"), hint


def say(problems: Problems, job: Job | None) -> None:
    """Log the warnings: each a line of the run's log naming the job, its place as fields."""
    for warning in problems.warnings:
        where = {"file": warning.file, "line": warning.line, "pointer": warning.pointer}
        logs.event(log, "unpriced model", str(warning), job.name if job else None, logging.WARNING, **where)


def shown(warning: Problem) -> str:
    """A warning as `validate` prints it, beside the problems: FILE:LINE: warning: message (at /pointer)."""
    where = f"{warning.file}:{warning.line}" if warning.line else warning.file
    at = "" if warning.pointer == NO_POINTER else f" (at {warning.pointer or '/'})"
    return f"{where}: warning: {warning.message}{at}"
