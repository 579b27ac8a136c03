"""A globbed job's dry run split in two processes, one per half of its files: the same figures
and problems as one walk (issue 26's 100,000 photos)."""

from __future__ import annotations

from pathlib import Path

import yaml
from inputfiles import image
from test_estimate import _halved_and_whole

from batchgpt.jobs import Overrides


def _photos(folder: Path, n: int) -> None:
    for i in range(n):  # sizes vary, so each half's image tokens differ
        image(
            folder / f"p{i:03}.{'jpg' if i % 2 else 'png'}",
            size=(40 + 37 * i, 30 + 11 * i),
            fmt="JPEG" if i % 2 else "PNG",
        )


def _job(tmp_path: Path, **task: object) -> Path:
    spec = {"type": "chat", "template": "Describe {name}", "items_from": "photos/*", "detail": "auto", **task}
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump({"defaults": {"model": "gpt-4o"}, "tasks": [spec]}))
    return path


def test_a_globbed_job_split_in_two_processes_estimates_as_one_walk(tmp_path, monkeypatch):
    _photos(tmp_path / "photos", 30)
    halved, whole, how = _halved_and_whole(monkeypatch, _job(tmp_path), Overrides())
    assert how == "merged" and halved == whole
    assert whole[0] == 30 and whole[1][-1]["requests"] == 30


def test_a_split_globbed_job_reports_each_files_problem_at_its_item(tmp_path, monkeypatch):
    _photos(tmp_path / "photos", 30)
    for name in ("p003.jpg", "p025.jpg"):  # one in each half
        (tmp_path / "photos" / name).write_bytes(b"not a picture")
    halved, whole, how = _halved_and_whole(monkeypatch, _job(tmp_path), Overrides())
    assert how == "merged" and halved == whole
    assert len(whole[0]) == 2 and "p003.jpg" in whole[0][0] and "p025.jpg" in whole[0][1]


def test_a_task_problem_both_halves_find_is_said_once_as_one_walk_says_it(tmp_path, monkeypatch):
    _photos(tmp_path / "photos", 30)
    halved, whole, how = _halved_and_whole(monkeypatch, _job(tmp_path, images="missing.png"), Overrides())
    assert how == "walked here" and halved == whole
    assert len(whole[0]) == 1 and "missing.png" in whole[0][0]
