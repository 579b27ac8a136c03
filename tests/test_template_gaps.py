"""A field a template names that the items lack: one problem per cause, at the template's line, with
how many rows lack it, the first of them and the name it was probably meant to be (issue 28, item 8)."""

from __future__ import annotations

from pathlib import Path

import yaml
from conftest import chat_job
from test_dryfork_glob import _photos
from test_estimate import _halved_and_whole

from batchgpt.jobs import MAX_PROBLEMS, Overrides


def _csv_job(tmp_path: Path, template: str, rows: int = 3, cells: list[str] | None = None) -> Path:
    lines = ["question,topic", *(cells if cells is not None else (f"what is {n},math" for n in range(rows)))]
    (tmp_path / "data.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    job = chat_job([])
    job["tasks"] = [{"type": "chat", "template": template, "items_from": "data.csv"}]
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job, sort_keys=False), encoding="utf-8")
    return path


def _line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_a_misspelt_template_field_is_one_problem_at_the_template_in_validate_run_and_dry_run(cli, server, tmp_path):
    job = _csv_job(tmp_path, "Answer {questoin} about {topic}")
    line = _line_of(job, "template:")
    expected = (
        f"{job}:{line}: field `questoin` not in data.csv (did you mean `question`?): "
        "3 rows lack it, the first at line 2 (at /tasks/0/template)"
    )
    checked = cli("validate", str(job))
    assert checked.exit_code == 2
    assert expected in checked.output and "1 problem found" in checked.output
    assert "which this item lacks" not in checked.output
    for args in (("run", str(job)), ("run", str(job), "--dry-run")):
        result = cli(*args)
        assert result.exit_code == 2 and expected in result.output
        assert "1 problem found; nothing was sent" in result.output
    assert server.seen == []


def test_ten_thousand_rows_lacking_a_field_are_one_problem_not_a_capped_list(cli, tmp_path):
    job = _csv_job(tmp_path, "Answer {questoin}", rows=10 * MAX_PROBLEMS)
    result = cli("validate", str(job))
    assert result.exit_code == 2 and "1 problem found" in result.output
    assert "10,000 rows lack it, the first at line 2" in result.output and "more problem" not in result.output


def test_each_field_lacking_is_its_own_cause(cli, tmp_path):
    job = _csv_job(tmp_path, "{questoin} {topik} {question}")
    result = cli("validate", str(job))
    assert "field `questoin` not in data.csv (did you mean `question`?)" in result.output
    assert "field `topik` not in data.csv (did you mean `topic`?)" in result.output
    assert "2 problems found" in result.output


def test_a_field_some_rows_of_a_jsonl_file_lack_says_how_many_and_the_first(cli, tmp_path):
    lines = ['{"q": "a", "topic": "x"}', '{"q": "b"}', '{"q": "c", "topik": "y"}', '{"q": "d", "topic": "z"}']
    (tmp_path / "rows.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    job = chat_job([])
    job["tasks"] = [{"type": "chat", "template": "{q} about {topic}", "items_from": "rows.jsonl"}]
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job, sort_keys=False), encoding="utf-8")
    result = cli("validate", str(path))
    assert result.exit_code == 2
    assert (
        f"{path}:{_line_of(path, 'template:')}: field `topic` missing from 2 of 4 rows of rows.jsonl, "
        "the first at line 2 (do they have it as `topik`?) (at /tasks/0/template)"
    ) in result.output
    assert "1 problem found" in result.output


def test_empty_csv_cells_are_said_to_be_empty(cli, tmp_path):
    job = _csv_job(tmp_path, "{question} about {topic}", cells=["a,x", "b,", "c,"])
    result = cli("validate", str(job))
    assert "field `topic` empty in 2 of 3 rows of data.csv, the first at line 3 (at /tasks/0/template)" in result.output


def test_a_task_s_own_items_turns_and_id_are_grouped_too(cli, tmp_path):
    (tmp_path / "data.csv").write_text("sku,word\na,x\nb,y\n", encoding="utf-8")
    job = chat_job([])
    job["tasks"] = [
        {"type": "chat", "name": "own", "template": "{a} {b}", "items": [{"a": 1, "b": 2}, {"a": 1}, {"a": 2}]},
        {"type": "conversation", "turns": ["Describe {prodcut}", "Name it"], "items_from": "data.csv"},
        {"type": "chat", "name": "ids", "template": "Say {word}", "id_column": "skew", "items_from": "data.csv"},
    ]
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job, sort_keys=False), encoding="utf-8")
    result = cli("validate", str(path))
    assert "field `b` missing from 2 of the task's 3 items, the first at line" in result.output
    assert "field `prodcut` not in data.csv: 2 rows lack it, the first at line 2 (at /tasks/1/turns)" in result.output
    assert f"{path}:{_line_of(path, 'id_column:')}: field `skew` not in data.csv (did you mean `sku`?)" in result.output
    assert "(at /tasks/2/id_column)" in result.output and "3 problems found" in result.output


def test_a_split_globbed_dry_run_says_a_field_its_halves_both_lack_once(tmp_path, monkeypatch):
    _photos(tmp_path / "photos", 30)
    spec = {"type": "chat", "template": "Describe {nmae}", "items_from": "photos/*", "detail": "auto"}
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump({"defaults": {"model": "gpt-4o"}, "tasks": [spec]}))
    halved, whole, how = _halved_and_whole(monkeypatch, path, Overrides())
    assert how == "merged" and halved == whole
    [problem] = whole[0]
    assert "field `nmae` not in the items of 'photos/*' (a file's item has `path` and `name` only; did you " in problem


def test_an_input_template_naming_a_field_no_row_has_is_one_problem_at_it(cli, server, tmp_path):
    (tmp_path / "rows.csv").write_text("q,photo\nwhat,a.png\nwhy,b.png\n", encoding="utf-8")
    job = chat_job([])
    job["tasks"] = [{"type": "chat", "template": "{q}", "images": "{phtoo}", "items_from": "rows.csv"}]
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job, sort_keys=False), encoding="utf-8")
    result = cli("run", str(path))
    assert result.exit_code == 2 and server.seen == []
    assert (
        f"{path}:{_line_of(path, 'images:')}: field `phtoo` not in rows.csv (did you mean `photo`?): "
        "2 rows lack it, the first at line 2 (at /tasks/0/images)"
    ) in result.output
    assert "1 problem found; nothing was sent" in result.output


def test_a_job_given_as_a_dict_names_the_first_item_lacking_a_field_by_its_id():
    from batchgpt.api import validate

    job = {"defaults": {"model": "gpt-4o-mini"}, "tasks": [{"type": "chat", "template": "{a} {b}"}]}
    job["tasks"][0]["items"] = [{"a": 1, "b": 2}, {"id": "second", "a": 2}]
    [problem] = validate(job)
    assert (
        str(problem) == "<job>: field `b` missing from 1 of the task's 2 items, at item 'second' (at /tasks/0/template)"
    )


def test_a_placeholder_that_is_no_field_name_is_one_problem_at_the_template_not_at_a_row(cli, tmp_path):
    job = _csv_job(tmp_path, "Answer {金额（元）}")
    checked = cli("validate", str(job))
    assert checked.exit_code == 2
    line = _line_of(job, "template:")
    assert f"{job}:{line}: bad template: template placeholder {{金额（元）}}" in checked.output
    assert "(at /tasks/0/template)" in checked.output and "1 problem found" in checked.output
    assert "data.csv:" not in checked.output


def test_an_id_template_of_no_field_names_is_one_problem_at_its_line(cli, tmp_path):
    job = _csv_job(tmp_path, "{question}")
    spec = yaml.safe_load(job.read_text())
    spec["tasks"][0]["id"] = "{q-1}"
    job.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    checked = cli("validate", str(job))
    assert checked.exit_code == 2
    assert f"{job}:{_line_of(job, 'id:')}: id: '{{q-1}}' must be made of plain field names" in checked.output
    assert "1 problem found" in checked.output
