"""End to end: the real CLI against the mock server: every task type, faults, the key kept secret, validation."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import SECRET, chat_job, faults, store_dump
from readback import read_report, read_results

import batchgpt
from batchgpt.pricing import Pricing
from batchgpt.tokens import Counter


def test_every_task_type_runs_and_reports_usage_and_cost(cli, server, write_job, tmp_path):
    (tmp_path / "questions.csv").write_text("id,question\nq-a,What is 2+2?\nq-b,Who wrote Faust?\n", encoding="utf-8")
    job = write_job(
        {
            "name": "all-types",
            "defaults": {"model": "gpt-4o-mini", "temperature": 0.2, "max_tokens": 50},
            "output": {"results": "out/results.csv", "report": "out/report.csv"},
            "tasks": [
                {
                    "type": "translate",
                    "source_lang": "en",
                    "target_lang": "fr",
                    "items": [{"id": "t1", "text": "Hello"}],
                },
                {"type": "chat", "system": "Be brief.", "items": [{"id": "c1", "prompt": "Say this is a test"}]},
                {"type": "completion", "items": [{"id": "k1", "prompt": "Once upon a time"}]},
                {
                    "type": "dialogue",
                    "items": [
                        {
                            "id": "d1",
                            "messages": [
                                {"role": "user", "content": "Hi"},
                                {"role": "assistant", "content": "Hello!"},
                                {"role": "user", "content": "Can you help me with my issue?"},
                            ],
                        }
                    ],
                },
                {"type": "code", "language": "python", "items": [{"id": "x1", "description": "fibonacci"}]},
                {
                    "type": "chat",
                    "name": "faq",
                    "template": "Answer in one line: {question}",
                    "items_from": "questions.csv",
                },
            ],
        }
    )
    result = cli("run", str(job))
    assert result.exit_code == 0, result.output
    rows = read_results(tmp_path / "out" / "results.csv")
    assert [r["id"] for r in rows] == ["t1", "c1", "k1", "d1", "x1", "q-a", "q-b"]
    outputs = {r["id"]: r["output"] for r in rows}
    assert outputs["t1"] == "Echo: Hello"
    assert outputs["c1"] == "Echo: Say this is a test"
    assert outputs["k1"] == "Echo: Once upon a time"
    assert outputs["d1"] == "Echo: Can you help me with my issue?"
    assert outputs["x1"] == "# fibonacci\nprint('fibonacci')"  # the fence the server wrote is gone
    assert outputs["q-a"] == "Echo: Answer in one line: What is 2+2?"
    assert {r["status"] for r in rows} == {"ok"} and {r["attempts"] for r in rows} == {"1"}
    assert [r["task"] for r in rows] == ["translate", "chat", "completion", "dialogue", "code", "faq", "faq"]

    # Tokens are the server's usage; the chat prompt count is also what OpenAI's formula gives.
    counter = Counter()
    chat = next(r for r in rows if r["id"] == "c1")
    expected = counter.messages(
        "gpt-4o-mini", [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say this is a test"}]
    ).tokens
    assert int(chat["prompt_tokens"]) == expected
    price = Pricing().price("gpt-4o-mini")
    assert float(chat["cost_usd"]) == pytest.approx(
        (int(chat["prompt_tokens"]) * price.input + int(chat["completion_tokens"]) * price.output) / 1e6
    )

    report = read_report(tmp_path / "out" / "report.csv")
    total = report[("TOTAL", "")]
    assert int(total["requests"]) == 7 and int(total["succeeded"]) == 7 and int(total["failed"]) == 0
    assert int(total["prompt_tokens"]) == sum(int(r["prompt_tokens"]) for r in rows)
    assert int(total["total_tokens"]) == int(total["prompt_tokens"]) + int(total["completion_tokens"])
    assert float(total["cost_usd"]) == pytest.approx(sum(float(r["cost_usd"]) for r in rows))
    assert int(report[("faq", "gpt-4o-mini")]["requests"]) == 2

    sent = {
        s.body["messages"][-1]["content"] if "messages" in s.body else s.body["prompt"]: s.body for s in server.seen
    }
    assert sent["Hello"]["temperature"] == 0.2 and sent["Hello"]["max_tokens"] == 50
    assert "French" in sent["Hello"]["messages"][0]["content"] or "fr" in sent["Hello"]["messages"][0]["content"]


@pytest.mark.parametrize(
    "fault",
    [
        "500:first=2",
        "503:first=2",
        "429:first=2",
        "429-no-retry-after:first=1",
        "drop:first=1",
        "hang:first=1",
        "malformed:first=2",
    ],
)
def test_faults_still_give_every_item_exactly_once(cli, server, write_job, tmp_path, fault):
    prompts = [f"question {i}" for i in range(4)]
    job = write_job(chat_job(prompts, limits={"concurrency": 3, "timeout": 1, "max_retries": 4}))
    faults(server, fault)
    result = cli("run", str(job))
    assert result.exit_code == 0, result.output
    rows = read_results(tmp_path / "out" / "t.csv")
    assert [r["id"] for r in rows] == [f"p{i}" for i in range(4)]
    assert [r["output"] for r in rows] == [f"Echo: {p}" for p in prompts]
    first = int(fault.split("first=")[1])
    assert {r["attempts"] for r in rows} == {str(first + 1)}
    assert len(server.seen) == 4 * (first + 1)


def test_a_400_is_tried_once_and_other_items_go_on(cli, server, write_job, tmp_path):
    job = write_job(chat_job(["fine", "BAD request", "also fine"]))
    faults(server, "400:match=BAD")
    result = cli("run", str(job))
    assert result.exit_code == 1
    rows = {r["id"]: r for r in read_results(tmp_path / "out" / "t.csv")}
    assert rows["p1"]["status"] == "error" and rows["p1"]["attempts"] == "1"
    assert "HTTP 400 context_length_exceeded" in rows["p1"]["error"]
    assert rows["p0"]["status"] == rows["p2"]["status"] == "ok"
    assert sum("BAD" in json.dumps(s.body) for s in server.seen) == 1


def test_insufficient_quota_stops_the_run_with_exit_3(cli, server, write_job, tmp_path):
    prompts = ["one", "two QUOTA", "three", "four", "five"]
    job = write_job(chat_job(prompts, limits={"concurrency": 1, "max_retries": 3}))
    faults(server, "quota:match=QUOTA")
    result = cli("run", str(job))
    assert result.exit_code == 3
    assert "quota" in result.stderr
    rows = read_results(tmp_path / "out" / "t.csv")
    assert [r["status"] for r in rows] == ["ok", "error", "skipped", "skipped", "skipped"]
    assert "quota" in rows[2]["error"]
    assert len(server.seen) == 2  # nothing after the quota answer, and the quota 429 is not retried


def test_a_wrong_key_stops_the_run_and_is_never_shown(cli, server, write_job, tmp_path, monkeypatch):
    job = write_job(chat_job(["a", "b", "c"], limits={"concurrency": 1}))
    wrong = "sk-wrong-KEY-abcdefghijklmnop"
    monkeypatch.setenv("OPENAI_API_KEY", wrong)
    result = cli("run", str(job))
    assert result.exit_code == 3
    assert "authentication" in result.stderr
    everything = result.output + (tmp_path / "out" / "t.csv").read_text() + store_dump(tmp_path / ".batchgpt")
    assert wrong not in everything and "abcdefghijklmnop" not in everything
    assert len(server.seen) == 1


def test_the_key_appears_in_no_output_log_or_store(cli, server, write_job, tmp_path):
    job = write_job(chat_job(["a", "BAD", "c"], output={"results": "out/r.jsonl", "report": "out/rep.csv"}))
    faults(server, "500:first=1", "400:match=BAD")
    result = cli("-v", "run", str(job))
    assert result.exit_code == 1
    rows = [json.loads(line) for line in (tmp_path / "out" / "r.jsonl").read_text().splitlines()]
    assert [(r["status"], r["attempts"]) for r in rows] == [("ok", 2), ("error", 2), ("ok", 2)]
    assert "retrying p0" in result.stderr  # the verbose log ran, and is checked below too
    assert all(s.headers["authorization"] == f"Bearer {SECRET}" for s in server.seen)  # it was sent...
    texts = [
        result.output,
        (tmp_path / "out" / "r.jsonl").read_text(),
        (tmp_path / "out" / "rep.csv").read_text(),
        store_dump(tmp_path / ".batchgpt"),
    ]
    assert not any(SECRET in text for text in texts)  # ...and is nowhere else


def test_an_invalid_job_sends_nothing_and_says_where(cli, server, write_job, tmp_path):
    job = write_job(
        {
            "defaults": {"model": "gpt-4o-mini"},
            "tasks": [
                {
                    "type": "chat",
                    "items": [
                        {"id": "a", "prompt": "ok"},
                        {"id": "a", "prompt": "dup"},
                        {"prompt": "x", "temperature": 3},
                    ],
                },
                {"type": "translate", "items": [{"text": "no target"}]},
            ],
        }
    )
    result = cli("run", str(job))
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert any(
        f" batchgpt: error: {job}:" in line and "temperature" in line and "(at /tasks/0/items/2/temperature)" in line
        for line in lines
    ), lines
    assert any("duplicate id 'a'" in line for line in lines)
    assert any("target_lang" in line and "/tasks/1/items/0" in line for line in lines)
    assert server.seen == []
    assert not (tmp_path / "out").exists()


def test_a_jsonl_job_with_batch_api_lines(cli, server, tmp_path):
    job = tmp_path / "lines.jsonl"
    lines = [
        {"type": "chat", "id": "a1", "prompt": "Bonjour 🌍"},
        {"type": "translate", "text": "Hello", "target_lang": "ar"},
        {
            "custom_id": "req-7",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "gpt-4.1", "messages": [{"role": "user", "content": "你好"}], "max_tokens": 5},
        },
    ]
    job.write_text("\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\n", encoding="utf-8")
    result = cli("run", str(job), "--model", "gpt-4o-mini", "--out", str(tmp_path / "r.jsonl"))
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["a1", "line2", "req-7"]
    assert rows[0]["output"] == "Echo: Bonjour 🌍" and rows[2]["output"] == "Echo: 你好"
    assert [r["model"] for r in rows] == ["gpt-4o-mini", "gpt-4o-mini", "gpt-4.1"]
    assert lines[2]["body"] in [s.body for s in server.seen]  # a Batch API body is sent exactly as written


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_non_latin_text_survives_every_output_format(cli, server, write_job, tmp_path, suffix):
    prompts = ["你好，世界", "مرحبا بالعالم", "emoji 🎉👩‍💻", "naïve café"]
    job = write_job(chat_job(prompts))
    out = tmp_path / f"r{suffix}"
    result = cli("run", str(job), "--out", str(out), "--report", str(tmp_path / "rep.parquet"))
    assert result.exit_code == 0, result.output
    if suffix == ".csv":
        outputs = [r["output"] for r in read_results(out)]
    elif suffix == ".jsonl":
        outputs = [json.loads(line)["output"] for line in out.read_text(encoding="utf-8").splitlines()]
    else:
        outputs = pd.read_parquet(out)["output"].tolist()
    assert outputs == [f"Echo: {p}" for p in prompts]
    assert pd.read_parquet(tmp_path / "rep.parquet").iloc[-1]["task"] == "TOTAL"


def test_streaming_answers_keep_exact_usage_and_time_to_first_token(cli, server, write_job, tmp_path):
    job = write_job(
        chat_job(["stream me a long enough answer please"], defaults={"model": "gpt-4o-mini", "stream": True})
    )
    result = cli("run", str(job))
    assert result.exit_code == 0, result.output
    row = read_results(tmp_path / "out" / "t.csv")[0]
    assert row["output"] == "Echo: stream me a long enough answer please"
    assert server.seen[0].body["stream_options"] == {"include_usage": True}
    assert int(row["prompt_tokens"]) > 0 and int(row["completion_tokens"]) > 0
    assert float(row["ttft_s"]) >= 0


def test_the_python_api_returns_a_dataframe(server, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    job = chat_job(["a", "b"])
    assert batchgpt.validate(job) == []
    frame = batchgpt.run(
        job,
        base_url=server.base_url,
        state_dir=tmp_path / "state",
        out=str(tmp_path / "r.csv"),
        report=str(tmp_path / "rep.csv"),
    )
    assert list(frame["output"]) == ["Echo: a", "Echo: b"]
    assert frame.attrs["summary"].exit_code == 0
    problems = batchgpt.validate({"tasks": [{"type": "chat", "items": [{"prompt": "x"}]}]})
    assert [p.message for p in problems] == ["no model: set `model` in defaults, the task or the item (or --model)"]


def test_validate_command_reports_every_file(cli, write_job, tmp_path):
    good = write_job(chat_job(["a"]), "good.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks:\n  - type: chat\n    items:\n      - prompt: [unclosed\n", encoding="utf-8")
    result = cli("validate", str(good), str(bad))
    assert result.exit_code == 2
    assert f"{bad}:4: YAML syntax error" in result.stderr or f"{bad}:5: YAML syntax error" in result.stderr
    assert cli("validate", str(good)).exit_code == 0


def test_missing_key_for_the_official_api_is_a_usage_error(write_job, monkeypatch):
    from click.testing import CliRunner

    from batchgpt.cli import main

    job = write_job(chat_job(["a"]))
    result = CliRunner().invoke(main, ["run", str(job)])
    assert result.exit_code == 2
    assert "OPENAI_API_KEY" in result.stderr and "Traceback" not in result.output


def test_validate_takes_a_model_for_jsonl_jobs_like_run(cli, tmp_path):
    job = tmp_path / "lines.jsonl"
    job.write_text('{"type": "chat", "prompt": "hi"}\n', encoding="utf-8")
    without = cli("validate", str(job))
    assert without.exit_code == 2 and f"{job}:1: no model" in without.stderr
    assert cli("validate", str(job), "--model", "gpt-4o-mini").exit_code == 0
