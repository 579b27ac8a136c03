"""Job files: read YAML, JSON and JSONL jobs, validate every item before anything is sent, yield requests.

`load` is the way in. It reads the source (`source`), builds the `Job` (`definition`), then walks
every item (`items`), all the while adding to one `Problems` collector, and raises JobError listing
every problem found. `requests` (`build`) then turns the items of an accepted job into requests.
An item's attached images, files and audio are found, sniffed and checked by `inputs` (on
`sniff`); `items_from: a glob` makes a file an item (`globbed`). A field a template names that
items lack is one problem per cause (`gaps`); a model without a known price is a warning, once
(`models`).
Paths inside a job file are relative to the job file, so a job runs the same from cron as by hand.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from . import models
from .bounds import MAX_DEPTH, MAX_YAML_BYTES, MAX_YAML_EXPANDED, MAX_YAML_NODES
from .build import build_request, dump, request_hash, requests, turn_request
from .definition import REPORT_SUFFIXES, RESULT_SUFFIXES, from_document, from_mapping, jsonl_job
from .endpoints import check_ready, check_trust, provider_for
from .globbed import matched_files
from .items import ItemCheck, check_items
from .job import PARAM_KEYS, Item, Job, Overrides, Task
from .problems import MAX_PROBLEMS, Problems
from .rows import MAX_CSV_CELL
from .source import read_document
from .span import Span

__all__ = [
    "MAX_CSV_CELL",
    "MAX_DEPTH",
    "MAX_PROBLEMS",
    "MAX_YAML_BYTES",
    "MAX_YAML_EXPANDED",
    "MAX_YAML_NODES",
    "PARAM_KEYS",
    "REPORT_SUFFIXES",
    "RESULT_SUFFIXES",
    "Item",
    "ItemCheck",
    "Job",
    "Overrides",
    "Problems",
    "Span",
    "Task",
    "build_request",
    "check_ready",
    "checked",
    "check_trust",
    "matched_files",
    "provider_for",
    "request_hash",
    "turn_request",
    "dump",
    "load",
    "read",
    "requests",
]

_NO_OVERRIDES = Overrides()


def load(source: str | os.PathLike[str] | Mapping[str, Any], overrides: Overrides = _NO_OVERRIDES) -> Job:
    """Read and fully validate a job; raises JobError listing every problem found. Warnings (a
    model without a known price) are logged."""
    job, problems = checked(source, overrides)
    models.say(problems, job)
    problems.raise_any()
    assert job is not None  # no problems: the job was built
    return job


def checked(
    source: str | os.PathLike[str] | Mapping[str, Any], overrides: Overrides = _NO_OVERRIDES
) -> tuple[Job | None, Problems]:
    """A job read and fully validated, and what was found: its problems, and its warnings
    (problems.warnings), said by no one yet. The job is None when it cannot be built."""
    job, problems = read(source, overrides)
    if job is None:
        return None, problems
    count, items, ids = check_items(job, problems)
    return replace(job, count=count, items=items, ids=ids, unpriced=models.unpriced(job, problems, overrides)), problems


def read(
    source: str | os.PathLike[str] | Mapping[str, Any], overrides: Overrides = _NO_OVERRIDES
) -> tuple[Job | None, Problems]:
    """A job as `load` builds it, its items not walked yet: (the job, or None if it cannot be
    built; the problems so far). `requests(job, ItemCheck(problems))` walks and checks them."""
    if isinstance(source, Mapping):
        problems = Problems("<job>")
        return from_mapping(dict(source), overrides, problems), problems
    path = Path(source)
    problems = Problems(str(path))
    if path.suffix.lower() == ".jsonl":
        return jsonl_job(path, overrides, problems), problems
    return _yaml_job(path, overrides, problems), problems


def _yaml_job(path: Path, overrides: Overrides, problems: Problems) -> Job | None:
    parsed = read_document(path, problems)
    if parsed is None:
        return None
    problems.locate(parsed.lines, parsed.blanks)
    return from_document(parsed.document, path, overrides, problems)
