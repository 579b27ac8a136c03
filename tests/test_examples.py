"""The example jobs in jobs/ are valid and run against the mock server."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import SECRET

import batchgpt
from batchgpt.batch import EXIT_SUBMITTED

JOBS = sorted((Path(__file__).resolve().parents[1] / "jobs").glob("*.[yj]*"))


@pytest.mark.parametrize("job", JOBS, ids=[j.name for j in JOBS])
def test_example_jobs_are_valid(job):
    assert batchgpt.validate(job) == []


@pytest.mark.parametrize("job", JOBS, ids=[j.name for j in JOBS])
def test_example_jobs_run(job, server, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    copy = tmp_path / "jobs"
    shutil.copytree(job.parent, copy, ignore=shutil.ignore_patterns("out", ".batchgpt"))
    frame = batchgpt.run(copy / job.name, base_url=server.base_url)
    if frame.attrs["summary"].exit_code == EXIT_SUBMITTED:  # a batch-mode job: the next run collects
        assert set(frame["status"]) == {"submitted"}
        frame = batchgpt.run(copy / job.name, base_url=server.base_url)
    assert len(frame) > 0 and set(frame["status"]) == {"ok"}
    assert frame.attrs["summary"].results.is_file()
