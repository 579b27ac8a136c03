"""A model no price is known for (`gpt-4o-mnii`): a warning, once per model, where the job names
it, with the nearest known name; in validate, the dry run and the run alike (issue 28, item 9)."""

from __future__ import annotations

from pathlib import Path

import yaml
from conftest import chat_job
from readback import json_lines

TYPO = "no price known for model 'gpt-4o-mnii' (did you mean 'gpt-4o-mini'?)"


def _job(tmp_path: Path, job: dict[str, object], name: str = "job.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(job, sort_keys=False), encoding="utf-8")
    return path


def _line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_a_misspelt_default_model_is_one_warning_at_its_line_in_validate_dry_run_and_run(cli, server, tmp_path):
    path = _job(tmp_path, chat_job([f"q{n}" for n in range(30)], defaults={"model": "gpt-4o-mnii"}))
    where = f"{path}:{_line_of(path, 'gpt-4o-mnii')}"
    checked = cli("validate", str(path))
    assert checked.exit_code == 0 and "1 job file valid" in checked.output
    assert f"{where}: warning: {TYPO}" in checked.output and "(at /defaults/model)" in checked.output
    assert checked.output.count("no price known") == 1
    dry = cli("run", str(path), "--dry-run")
    assert dry.exit_code == 0 and f"{where}: {TYPO}" in dry.output
    assert dry.output.count("no price known for model") == 1  # not again when the table prices it
    assert "no price known for this model" in dry.output  # the table's note says the same
    run = cli("run", str(path))
    assert run.exit_code == 0 and len(server.seen) == 30  # a warning: relays serve names of their own
    assert f"{where}: {TYPO}" in run.output and run.output.count("no price known for model") == 1
    assert run.output.index(TYPO) < run.output.index("run 1 of t")  # said before anything is sent


def test_a_model_set_by_a_task_an_item_or_a_data_row_is_named_where_it_is_set(cli, tmp_path):
    (tmp_path / "rows.csv").write_text("prompt,model\na,gpt-4o-mini\nb,gtp-4o\nc,gtp-4o\n", encoding="utf-8")
    job = chat_job(["x"])
    job["tasks"] += [
        {"type": "chat", "name": "own", "model": "gpt-4.1-mnii", "items": [{"prompt": "y"}, {"prompt": "z"}]},
        {"type": "chat", "name": "rows", "items_from": "rows.csv"},
        {"type": "chat", "name": "item", "items": [{"prompt": "w", "model": "gpt-5-nanoo"}]},
    ]
    path = _job(tmp_path, job)
    result = cli("validate", str(path))
    assert result.exit_code == 0
    assert (
        f"{path}:{_line_of(path, 'gpt-4.1-mnii')}: warning: no price known for model 'gpt-4.1-mnii' "
        "(did you mean 'gpt-4.1-mini'?)"
    ) in result.output
    assert "(at /tasks/1/model)" in result.output
    assert f"{tmp_path / 'rows.csv'}:3: warning: no price known for model 'gtp-4o' (did you mean 'gpt-4o'?)" in (
        result.output
    )
    assert f"{path}:{_line_of(path, 'gpt-5-nanoo')}: warning: no price known for model 'gpt-5-nanoo'" in result.output
    assert "(at /tasks/3/items/0/model)" in result.output and result.output.count("warning:") == 3


def test_a_model_given_by_the_command_line_is_said_to_be(cli, tmp_path):
    lines = tmp_path / "lines.jsonl"
    lines.write_text('{"type": "chat", "prompt": "a"}\n{"type": "chat", "prompt": "b"}\n', encoding="utf-8")
    result = cli("validate", str(lines), "--model", "gpt-4o-mnii")
    assert result.exit_code == 0
    assert f"{lines}: warning: no price known for model 'gpt-4o-mnii' (given by --model) (did you mean" in (
        result.output
    )


def test_models_with_a_price_are_not_warned_of_nor_those_the_job_prices_itself(cli, tmp_path):
    job = chat_job(["x"], pricing={"house-llama": {"input": 0.1, "output": 0.2}})
    job["tasks"] += [
        {"type": "chat", "name": "house", "model": "house-llama", "items": [{"prompt": "y"}]},
        {"type": "image", "model": "dall-e-3", "items": [{"prompt": "a cat"}]},
        {"type": "moderation", "items": [{"text": "hello"}]},
        {"type": "speech", "model": "tts-1", "items": [{"text": "hello"}]},
    ]
    result = cli("validate", str(_job(tmp_path, job)))
    assert result.exit_code == 0 and "warning" not in result.output, result.output


def test_the_warning_is_a_json_line_with_its_place_under_json_logs(cli, tmp_path):
    path = _job(tmp_path, chat_job(["a"], defaults={"model": "gpt-4o-mnii"}))
    result = cli("run", str(path), "--dry-run", "--log-format", "json")
    [record] = [r for r in json_lines(result.stderr) if r["event"] == "unpriced model"]
    assert record["level"] == "warning" and record["job"] == "t" and TYPO in record["message"]
    assert (record["file"], record["line"], record["pointer"]) == (str(path), _line_of(path, "mnii"), "/defaults/model")


def test_a_dry_run_split_in_two_processes_warns_of_a_model_only_its_second_half_names(tmp_path, monkeypatch, caplog):
    import logging

    from test_estimate import _halved_and_whole

    from batchgpt.jobs import Overrides

    lines = [f'{{"type": "chat", "prompt": "q{n}", "model": "gpt-4o-mini"}}' for n in range(40)]
    lines += ['{"type": "chat", "prompt": "last", "model": "gpt-4o-mnii"}']
    path = tmp_path / "lines.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="batchgpt"):
        halved, whole, how = _halved_and_whole(monkeypatch, path, Overrides())
    assert how == "merged" and halved == whole
    said = [r.getMessage() for r in caplog.records if "no price known" in r.getMessage()]
    assert len(said) == 2 and said[0] == said[1] and said[0].startswith(f"{path}:41: {TYPO}"), said
