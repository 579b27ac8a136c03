"""The Python API: validate, load_job, run, list_runs and export_run, against the mock server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import SECRET, chat_job, faults

import batchgpt
from batchgpt.api import export_run, list_runs, load_job
from batchgpt.errors import JobError, StateError, UsageError
from batchgpt.mock import MockServer

# The results columns the README's "Outputs" table promises, in file order, plus `details`.
RESULT_COLUMNS = [
    "job",
    "task",
    "type",
    "id",
    "model",
    "status",
    "output",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "attempts",
    "latency_s",
    "error",
    "cached_tokens",
    "reasoning_tokens",
    "ttft_s",
    "details",
    "mode",
    "reasks",
    "turn",
]
RUN_ROW_KEYS = [
    "run",
    "job",
    "started",
    "seconds",
    "items",
    "ok",
    "failed",
    "skipped",
    "job_tokens",
    "spent_usd",
    "job_cost_usd",
    "endpoint",
    "retries",
    "exit",
]


@pytest.fixture
def api_run(server: MockServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., pd.DataFrame]:
    """batchgpt.run against the mock server, with state and outputs under tmp_path."""
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.chdir(tmp_path)  # a job given as a dict has no folder of its own

    def run(job: Any, **settings: Any) -> pd.DataFrame:
        settings = {
            "base_url": server.base_url,
            "state_dir": tmp_path / "state",
            "out": str(tmp_path / "results.csv"),
            "report": str(tmp_path / "report.csv"),
            **settings,
        }
        return batchgpt.run(job, **settings)

    return run


def test_validate_accepts_valid_jobs_as_files_and_dicts(write_job: Callable[..., Path]) -> None:
    path = write_job(chat_job(["a"]))
    assert batchgpt.validate(path) == []
    assert batchgpt.validate(str(path), chat_job(["b"])) == []


def test_validate_reports_every_problem_with_file_line_and_pointer(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "defaults:\n  model: gpt-4o-mini\ntasks:\n  - type: chat\n    sytem: be brief\n"
        "    items:\n      - prompt: hi\n        temperature: 2.5\n",
        encoding="utf-8",
    )
    problems = batchgpt.validate(path, {"tasks": [{"type": "chat", "items": [{"prompt": "x"}]}]})
    found = {(p.file, p.line, p.pointer, p.message) for p in problems}
    assert found == {
        (str(path), 5, "/tasks/0/sytem", "unknown key 'sytem' (did you mean 'system'?)"),
        (str(path), 8, "/tasks/0/items/0/temperature", "2.5 is greater than the maximum of 2"),
        ("<job>", None, "/tasks/0/items/0", "no model: set `model` in defaults, the task or the item (or --model)"),
    }
    assert f"{path}:5: unknown key 'sytem'" in str(problems[[p.line for p in problems].index(5)])


def test_validate_takes_the_default_model_as_run_does() -> None:
    job = {"tasks": [{"type": "chat", "items": [{"prompt": "x"}]}]}
    assert [p.message for p in batchgpt.validate(job)] == [
        "no model: set `model` in defaults, the task or the item (or --model)"
    ]
    assert batchgpt.validate(job, model="gpt-4o-mini") == []


def test_load_job_applies_settings_and_refuses_unknown_ones() -> None:
    job = load_job(chat_job(["a"]), concurrency=3, rpm=60, model="gpt-4.1")
    assert (job.limits.concurrency, job.limits.rpm) == (3, 60)
    with pytest.raises(TypeError, match="concurency, modle") as raised:
        load_job(chat_job(["a"]), concurency=2, modle="x")
    assert "concurrency" in str(raised.value)  # the message lists the known settings


def test_run_returns_a_frame_in_input_order_with_its_summary(
    api_run: Callable[..., pd.DataFrame], tmp_path: Path
) -> None:
    frame = api_run(chat_job(["first", "second", "third"]))
    assert list(frame.columns) == RESULT_COLUMNS
    assert list(frame["id"]) == ["p0", "p1", "p2"]
    assert list(frame["output"]) == ["Echo: first", "Echo: second", "Echo: third"]
    assert set(frame["status"]) == {"ok"} and set(frame["job"]) == {"t"} and set(frame["type"]) == {"chat"}
    assert (frame["prompt_tokens"] > 0).all() and (frame["completion_tokens"] > 0).all()
    summary = frame.attrs["summary"]
    assert (summary.job, summary.items, summary.sent, summary.ok, summary.failed, summary.exit_code) == (
        "t",
        3,
        3,
        3,
        0,
        0,
    )
    assert summary.prompt_tokens == frame["prompt_tokens"].sum()
    assert summary.results == tmp_path / "results.csv" and summary.results.is_file()
    assert summary.report == tmp_path / "report.csv" and summary.report.is_file()


def test_run_marks_failed_items_and_resumes_only_what_is_missing(
    api_run: Callable[..., pd.DataFrame], server: MockServer
) -> None:
    faults(server, "400:match=BAD")
    first = api_run(chat_job(["fine", "BAD request"]))
    assert list(first["status"]) == ["ok", "error"]
    assert "400" in first["error"].iloc[1]
    assert first.attrs["summary"].exit_code == 1
    sent = len(server.seen)
    again = api_run(chat_job(["fine", "BAD request"]))
    assert len(server.seen) == sent  # the ok item is reused, the 400 stays failed
    assert (again.attrs["summary"].sent, again.attrs["summary"].reused) == (0, 2)
    assert list(again["status"]) == ["ok", "error"]


def test_run_refuses_unknown_settings_before_sending(api_run: Callable[..., pd.DataFrame], server: MockServer) -> None:
    with pytest.raises(TypeError, match="state"):
        api_run(chat_job(["a"]), state="elsewhere")
    assert server.seen == []


def test_run_raises_job_error_for_an_invalid_job(api_run: Callable[..., pd.DataFrame], server: MockServer) -> None:
    with pytest.raises(JobError) as raised:
        api_run({"defaults": {"model": "gpt-4o-mini"}, "tasks": [{"type": "chat", "items": [{"prompt": ""}]}]})
    assert [p.pointer for p in raised.value.problems] == ["/tasks/0/items/0/prompt"]
    assert server.seen == []


def test_list_runs_lists_runs_newest_first(api_run: Callable[..., pd.DataFrame], tmp_path: Path) -> None:
    api_run(chat_job(["a", "b"]))
    api_run(chat_job(["a", "b", "c"]))
    api_run(chat_job(["x"], name="other"))
    rows = list_runs(tmp_path / "state")
    assert [list(row) for row in rows] == [RUN_ROW_KEYS] * 3
    assert [(r["job"], r["items"], r["ok"], r["failed"], r["skipped"], r["exit"]) for r in rows] == [
        ("other", 1, 1, 0, 0, 0),
        ("t", 3, 3, 0, 0, 0),
        ("t", 2, 2, 0, 0, 0),
    ]
    assert [r["run"] for r in rows] == [1, 2, 1]  # each job numbers its own runs
    assert rows[2]["job_tokens"] > 0 and rows[2]["seconds"] is not None
    assert [r["run"] for r in list_runs(tmp_path / "state", Path("t"))] == [rows[1]["run"], rows[2]["run"]]
    assert [r["run"] for r in list_runs(tmp_path / "state", limit=1)] == [rows[0]["run"]]


def test_list_runs_names_a_missing_state_folder(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="no run state"):
        list_runs(tmp_path / "nowhere")


def test_export_run_writes_a_run_again(api_run: Callable[..., pd.DataFrame], tmp_path: Path) -> None:
    frame = api_run(chat_job(["a", "b"]))
    run_id = frame.attrs["summary"].run_id
    info, results, report = export_run(tmp_path / "state", str(run_id), tmp_path / "again.csv", tmp_path / "rep2.csv")
    assert (info.id, info.job) == (run_id, "t")
    assert (results, report) == (tmp_path / "again.csv", tmp_path / "rep2.csv")
    assert results.read_bytes() == (tmp_path / "results.csv").read_bytes()
    assert report.read_bytes() == (tmp_path / "report.csv").read_bytes()
    by_name, _, _ = export_run(tmp_path / "state", "t", tmp_path / "by-name.csv", tmp_path / "rep3.csv")
    assert by_name.id == run_id
    with pytest.raises(UsageError, match="no run '999'"):
        export_run(tmp_path / "state", "999")
