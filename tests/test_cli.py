"""End to end: the real CLI against the mock server, faults included."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import SECRET, chat_job, faults, store_dump

import batchgpt
from batchgpt.pricing import Pricing
from batchgpt.tokens import Counter


def read_results(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def read_report(path: Path) -> dict[str, dict[str, str]]:
    return {(row["task"], row["model"]): row for row in read_results(path)}


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


def test_a_rate_limited_server_slows_the_run_and_every_item_completes(cli, write_job, tmp_path, monkeypatch):
    from batchgpt.mock import Config, MockServer

    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    limited = MockServer(Config(api_key=SECRET, rpm=60)).start()  # 60 at once, then one a second
    try:
        job = write_job(chat_job([f"q{i}" for i in range(64)], limits={"concurrency": 8, "max_retries": 10}))
        result = cli("run", str(job), "--base-url", limited.base_url, base_url=False)
        assert result.exit_code == 0, result.output
        rows = read_results(tmp_path / "out" / "t.csv")
        assert [r["output"] for r in rows] == [f"Echo: q{i}" for i in range(64)]
        # The x-ratelimit headers and the shared pause keep the 429s few: not one per worker per retry.
        assert len(limited.seen) - 64 <= 16
    finally:
        limited.stop()


GATEWAY = "Bearer gw-SECRET-0123456789"


def test_a_server_echoing_the_keys_shows_them_to_no_sink(cli, server, write_job, tmp_path):
    # Some proxies answer errors with the request's headers: the key and the gateway's secret.
    job = write_job(
        chat_job(
            ["a", "b"],
            provider={"headers": {"cf-aig-authorization": GATEWAY}},
            output={"results": "out/r.jsonl", "report": "out/rep.csv"},
        )
    )
    faults(server, "echo-headers")
    result = cli("-v", "run", str(job), "--log-format", "json")
    assert result.exit_code == 1
    rows = [json.loads(line) for line in (tmp_path / "out" / "r.jsonl").read_text().splitlines()]
    assert all("Headers received" in r["error"] and "****" in r["error"] for r in rows)  # the echo arrived...
    texts = [result.output, (tmp_path / "out" / "r.jsonl").read_text(), store_dump(tmp_path / ".batchgpt")]
    for secret in (SECRET, GATEWAY, GATEWAY.split()[1]):
        assert not any(secret in text for text in texts)  # ...without what it echoed


@pytest.mark.parametrize("redirect", ["307", "301"])
def test_redirects_are_not_followed_with_the_key_or_without_the_prompt(cli, server, write_job, tmp_path, redirect):
    from batchgpt.mock import Config, MockServer

    elsewhere = MockServer(Config()).start()
    try:
        server.config.redirect_to = elsewhere.base_url
        faults(server, redirect)
        job = write_job(chat_job(["a"], provider={"headers": {"cf-aig-authorization": GATEWAY}}))
        result = cli("run", str(job))
        assert result.exit_code == 1 and elsewhere.seen == []  # nothing went to the other address
        [row] = read_results(tmp_path / "out" / "t.csv")
        assert row["status"] == "error" and f"redirected to {elsewhere.base_url}/chat/completions" in row["error"]
        assert cli("run", str(job)).exit_code == 1 and len(server.seen) == 1  # a setting to fix: not sent again
    finally:
        elsewhere.stop()


def test_a_base_url_with_credentials_is_never_shown_and_never_sent_beside_a_key(cli, server, write_job, tmp_path):
    url = server.base_url.replace("http://", "http://admin:pa55word-SECRET@")
    job = write_job(chat_job(["a"]))
    result = cli("run", str(job), "--base-url", url, base_url=False)
    assert result.exit_code == 2 and "carries credentials" in result.stderr
    assert "pa55word" not in result.output and "Traceback" not in result.output and server.seen == []
    balance = cli("balance", "--base-url", url)
    assert balance.exit_code == 2 and "pa55word" not in balance.output


@pytest.mark.parametrize("fault", ["usage-strings", "usage-negative", "no-done"])
@pytest.mark.parametrize("stream", [False, True])
def test_answers_no_real_api_gives_are_retried_then_failed_never_a_crash(
    cli, server, write_job, tmp_path, fault, stream
):
    faults(server, fault)
    job = write_job(
        chat_job(
            ["a", "b"], defaults={"model": "gpt-4o-mini", "stream": stream}, limits={"max_retries": 1}, budget_usd=1
        )
    )
    result = cli("run", str(job))
    if fault == "no-done" and not stream:
        assert result.exit_code == 0  # a plain answer has no [DONE] to miss
        return
    assert result.exit_code == 1 and "Traceback" not in result.output
    rows = read_results(tmp_path / "out" / "t.csv")
    assert {(r["status"], r["attempts"]) for r in rows} == {("error", "2")}
    assert all(r["error"].startswith("malformed answer") and r["cost_usd"] == "" for r in rows)


def test_a_character_split_between_two_stream_events_is_put_back_together(cli, server, write_job, tmp_path):
    faults(server, "split-emoji")
    job = write_job(chat_job(["a"], defaults={"model": "gpt-4o-mini", "stream": True}))
    assert cli("run", str(job)).exit_code == 0
    [row] = read_results(tmp_path / "out" / "t.csv")
    assert row["output"].endswith("\U0001f600")


def test_a_server_that_ignores_stream_true_is_read_as_a_plain_answer(cli, server, write_job, tmp_path):
    faults(server, "ignore-stream")
    job = write_job(chat_job(["a"], defaults={"model": "gpt-4o-mini", "stream": True}))
    assert cli("run", str(job)).exit_code == 0
    [row] = read_results(tmp_path / "out" / "t.csv")
    assert row["output"] == "Echo: a" and float(row["cost_usd"]) > 0


def json_lines(stderr: str) -> list[dict[str, Any]]:
    """Every line on stderr as JSON, each with its time (a line that is not JSON fails here)."""
    records = [json.loads(line) for line in stderr.splitlines()]
    assert records and all(isinstance(r["time"], float) and r["event"] for r in records), records
    return records


def test_with_json_logs_every_line_on_stderr_is_json_with_a_time(cli, server, write_job, monkeypatch):
    import logging
    import warnings

    from batchgpt import tables

    # A model without a price warns, a 400 warns as its item fails, a 500 is retried (logged with
    # -v, given after the command); another library's warning and a Python warning come too.
    written = tables.write_table  # the report, written by every run

    def noisy(*args: Any, **kwargs: Any) -> None:
        logging.getLogger("asyncio").warning("Unclosed client session")
        warnings.warn("a library's deprecation", DeprecationWarning, stacklevel=1)
        written(*args, **kwargs)

    monkeypatch.setattr(tables, "write_table", noisy)
    faults(server, "400:match=BAD", "500:first=1,match=FLAKY")
    job = write_job(chat_job(["fine", "BAD", "FLAKY"], defaults={"model": "my-local-model"}))
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        result = cli("run", str(job), "--log-format", "json", "-v")
    assert result.exit_code == 1
    records = json_lines(result.stderr)
    events = {(r["level"], r["event"]) for r in records}
    assert {("warning", "log"), ("debug", "log"), ("info", "failed"), ("info", "written")} <= events
    messages = " ".join(r["message"] for r in records)
    assert "retrying p2" in messages and "p1 failed after 1 attempt" in messages
    assert "Unclosed client session" in messages and "a library's deprecation" in messages
    assert all(r["job"] == "t" for r in records)  # every line names its job, library warnings too
    assert records[-1]["event"] == "summary" and records[-1]["exit_code"] == 1 and records[-1]["failed"] == 1


def test_with_json_logs_stops_hints_problems_and_usage_errors_are_json(cli, server, write_job, tmp_path):
    faults(server, "quota:match=QUOTA")
    stopped = cli("run", str(write_job(chat_job(["QUOTA", "b"], limits={"concurrency": 1}))), "--log-format", "json")
    assert stopped.exit_code == 3
    records = json_lines(stopped.stderr)
    assert any(r["event"] == "stopped" and r["level"] == "warning" and "quota" in r["message"] for r in records)
    assert records[-1]["event"] == "summary" and records[-1]["stopped"]

    submitted = cli("run", str(write_job(chat_job(["a"], mode="batch"), "b.yaml")), "--log-format", "json")
    assert submitted.exit_code == 5
    [waiting] = [r for r in json_lines(submitted.stderr) if r["event"] == "waiting"]
    assert waiting["command"].startswith(f"batchgpt run {tmp_path / 'b.yaml'} --batch")

    invalid = write_job({"tasks": [{"type": "chat", "items": [{"prompt": "x", "temperature": 3}]}]}, "bad.yaml")
    problems = json_lines(cli("run", str(invalid), "--log-format", "json").stderr)
    assert {r["event"] for r in problems} == {"problem", "invalid"}
    assert any(r.get("file") == str(invalid) and r.get("line") == 5 and r.get("pointer") for r in problems)

    usage = cli("run", str(invalid), "--log-format", "json", "--budget", "-1")
    assert usage.exit_code == 2
    [record] = json_lines(usage.stderr)
    assert record["event"] == "usage" and "--budget" in record["message"]


def test_a_crash_under_json_logs_is_a_json_line_with_its_traceback() -> None:
    import io
    import sys

    from batchgpt import logs

    stream = io.StringIO()
    logs.setup(log_format="json", stream=stream)
    try:
        try:
            raise RuntimeError("a bug")
        except RuntimeError as exc:
            sys.excepthook(type(exc), exc, exc.__traceback__)
    finally:
        logs.setup()
    [record] = json_lines(stream.getvalue())
    assert record["event"] == "crash" and record["level"] == "critical" and "RuntimeError: a bug" in record["traceback"]
    assert sys.excepthook is sys.__excepthook__  # text logs leave tracebacks as Python prints them


def test_text_logs_carry_a_time_and_the_job(cli, server, write_job):
    import re

    faults(server, "400:match=BAD")
    result = cli("run", str(write_job(chat_job(["fine", "BAD"]))))
    lines = result.stderr.splitlines()
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d "
    assert lines and all(re.match(stamp, line) for line in lines), lines  # the summary and its hints too
    warning = next(line for line in lines if "failed after" in line)
    assert re.match(f"{stamp}t: warning: p1 failed after 1 attempt", warning), warning
    assert re.match(f"{stamp}t: 2 items: 1 ok, 1 failed", lines[-1]), lines[-1]


def test_a_run_starts_with_a_line_naming_the_job_run_endpoint_and_items(cli, server, write_job, tmp_path):
    path = write_job(chat_job(["one", "two"]))
    text = cli("run", str(path))
    assert f"run 1 of t (online): 2 items to {server.base_url}" in text.output
    logged = cli("run", str(path), "--log-format", "json")
    start = next(json.loads(line) for line in logged.output.splitlines() if '"start"' in line)
    assert start["run"] == 2 and start["items"] == 2 and start["endpoints"] == [server.base_url]
    assert isinstance(start["time"], float) and start["job"] == "t"


def test_counts_say_one_in_the_singular_and_separate_thousands(cli, server, write_job):
    one = write_job(chat_job(["BAD"]))
    faults(server, "400:match=BAD")
    estimate = cli("estimate", str(one))
    assert "estimate for 1 item (nothing sent)" in estimate.output
    ran = cli("run", str(one))
    assert "t: 1 item: 0 ok, 1 failed" in ran.stderr and "1 request sent" in ran.stderr
    assert "p0 failed after 1 attempt:" in ran.stderr
    many = write_job(chat_job([f"q{i}" for i in range(1200)]), "many.yaml")
    assert "estimate for 1,200 items (nothing sent)" in cli("estimate", str(many)).output


COMMANDS = ["run", "estimate", "export", "report", "runs", "batches", "cancel", "validate", "balance", "mock-server"]


def narrow(*args: str) -> Any:
    """The CLI in an 80-column terminal."""
    from click.testing import CliRunner

    from batchgpt.cli import main

    return CliRunner().invoke(main, list(args), env={"COLUMNS": "80"}, catch_exceptions=False)


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_fits_80_columns_and_shows_an_example(command):
    result = narrow(*filter(None, [command]), "--help")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert max(map(len, lines)) <= 80, max(lines, key=len)
    examples = lines[lines.index("  Examples:") + 1 :]
    assert examples and all(line.startswith(f"    batchgpt {command}".rstrip()) for line in examples), examples
    checkout = Path(__file__).resolve().parents[1]
    named = {p for line in examples for p in re.findall(r"jobs/[\w./-]+\.(?:yaml|jsonl)", line)}
    assert all((checkout / p).is_file() for p in named), named  # an example to paste runs in the checkout


def test_the_command_list_is_not_cut():
    lines = narrow("--help").output.splitlines()
    listed = lines[lines.index("Commands:") + 1 : lines.index("Commands:") + 1 + len(COMMANDS)]
    assert sorted(line.split()[0] for line in listed) == sorted(COMMANDS)
    assert not any(line.endswith("...") for line in listed), listed


def test_estimate_offers_only_what_an_estimate_reads(write_job):
    shown = narrow("estimate", "--help").output
    for ignored in ("--out", "--max-retries", "--timeout"):
        assert ignored not in shown
    assert "--budget" in shown and "--report" in shown and "--batch" in shown
    result = narrow("estimate", str(write_job(chat_job(["a"]))), "--timeout", "5")
    assert result.exit_code == 2 and "No such option '--timeout'" in result.stderr


def test_an_estimate_says_whether_it_fits_the_budget(write_job):
    # 50 requests at gpt-4o: about $0.14 expected, $0.26 if every answer runs to max_tokens
    job = write_job(chat_job(["a long enough question " * 20] * 50, defaults={"model": "gpt-4o", "max_tokens": 500}))
    tight = narrow("estimate", str(job), "--budget", "0.2")
    assert tight.exit_code == 0 and "warning: the worst case ($0.2" in tight.stderr
    assert "is over the budget of $0.2: the expected $0.1" in tight.stderr
    over = narrow("run", str(job), "--dry-run", "--budget", "0.01")
    assert "warning: over the budget of $0.01: the expected cost is $0.1" in over.stderr
    assert "within the budget of $1: the worst case is $0.2" in narrow("estimate", str(job), "--budget", "1").stderr
    assert "budget" not in narrow("estimate", str(job)).stderr


def test_balance_does_not_offer_a_dry_run_it_lacks(monkeypatch, write_job):
    result = narrow("balance")
    assert result.exit_code == 2 and "no API key: set OPENAI_API_KEY" in result.stderr
    assert "--dry-run" not in result.stderr
    run = narrow("run", str(write_job(chat_job(["a"]))))
    assert run.exit_code == 2 and "(or use --dry-run, which needs none)" in run.stderr


def test_verbose_works_after_the_command_too(cli, server, write_job):
    faults(server, "500:first=1")
    result = cli("run", str(write_job(chat_job(["a"]))), "-v")
    assert result.exit_code == 0 and "retrying p0" in result.stderr


def test_the_mock_server_takes_its_fault_syntax_as_help_writes_it(monkeypatch):
    from batchgpt.mock import Fault, MockServer

    served = []
    monkeypatch.setattr(MockServer, "serve_forever", lambda self, port, host: served.append(self.config.faults))
    result = narrow("mock-server", "--fault", "400,match=x", "--fault", "503:0.5,match=y")
    assert result.exit_code == 0, result.output
    assert served == [[Fault("400", match="x"), Fault("503", rate=0.5, match="y")]]


def pasted(cli, hint: str, where: Path, monkeypatch) -> Any:
    """Run a command the CLI printed, as someone pasting it in another folder would."""
    import shlex

    words = shlex.split(hint)
    assert words[0] == "batchgpt", hint
    monkeypatch.chdir(where)
    return cli(*words[1:], base_url=False)


def test_the_state_is_beside_the_job_file_for_every_command(cli, server, write_job, tmp_path, monkeypatch):
    (tmp_path / "jobs").mkdir()
    write_job(chat_job(["a", "b"]), "jobs/faq.yaml")
    monkeypatch.chdir(tmp_path)  # the checkout: the job is jobs/faq.yaml, its state jobs/.batchgpt
    assert cli("run", "jobs/faq.yaml").exit_code == 0
    assert (tmp_path / "jobs" / ".batchgpt" / "state.db").is_file() and not (tmp_path / ".batchgpt").exists()
    (tmp_path / "jobs" / "out" / "t.csv").unlink()
    by_file = cli("export", "jobs/faq.yaml")
    assert by_file.exit_code == 0, by_file.output
    assert (tmp_path / "jobs" / "out" / "t.csv").is_file()
    assert cli("export", "t", "--state", "jobs/.batchgpt").exit_code == 0
    assert cli("runs", "jobs/faq.yaml").exit_code == 0 and cli("batches", "jobs/faq.yaml").exit_code == 0
    by_name = cli("export", "t")  # a job name says nothing of where its state is
    assert by_name.exit_code == 2
    assert f"no run state in {tmp_path / '.batchgpt'}" in by_name.stderr
    assert "name the job file, or that folder with --state" in by_name.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert cli("export", str(tmp_path / "jobs" / "faq.yaml")).exit_code == 0
    assert "t" in cli("runs", "--state", str(tmp_path / "jobs" / ".batchgpt")).output
    by_number = cli("runs", "1", "--state", str(tmp_path / "jobs" / ".batchgpt"))  # a run number is no job
    assert "no runs of job '1' recorded" in by_number.stderr and "batchgpt report 1" in by_number.stderr


def test_a_batch_runs_hints_work_pasted_in_another_folder(cli, server, write_job, tmp_path, monkeypatch):
    import re

    (tmp_path / "jobs").mkdir()
    write_job(chat_job(["a", "b"], mode="batch"), "jobs/nightly.yaml")
    monkeypatch.chdir(tmp_path)
    submitted = cli("run", "jobs/nightly.yaml", "--state", "state")
    assert submitted.exit_code == 5, submitted.output
    again, listing = re.findall(r"`(batchgpt [^`]+)`", submitted.stderr)
    assert again.startswith(f"batchgpt run {tmp_path / 'jobs' / 'nightly.yaml'} --batch --state {tmp_path / 'state'}")
    assert f"--base-url {server.base_url}" in again  # later runs must reach the same endpoint
    (tmp_path / "elsewhere").mkdir()
    listed = pasted(cli, listing, tmp_path / "elsewhere", monkeypatch)
    assert listed.exit_code == 0 and f"batches in {tmp_path / 'state'}" in listed.output
    collected = pasted(cli, again, tmp_path / "elsewhere", monkeypatch)
    assert collected.exit_code == 0, collected.output


def test_a_bar_is_refused_under_json_logs(cli, write_job):
    result = cli("run", str(write_job(chat_job(["a"]))), "--log-format", "json", "--progress")
    assert result.exit_code == 2
    [record] = json_lines(result.stderr)
    assert record["event"] == "usage" and "--progress" in record["message"]


def test_the_summary_names_the_files_it_wrote_by_their_absolute_paths(cli, write_job, tmp_path, monkeypatch):
    write_job(chat_job(["a"]))
    monkeypatch.chdir(tmp_path)
    result = cli("run", "job.yaml")
    assert f"results: {tmp_path / 'out' / 't.csv'}" in result.stderr
    assert f"report:  {tmp_path / 'out' / 't-report.csv'}" in result.stderr


def test_verbose_pace_lines_read_as_words_not_a_dataclass(cli, server, write_job):
    result = cli("run", str(write_job(chat_job(["a", "b"]))), "-v")
    assert result.exit_code == 0 and "pace of " in result.stderr
    assert "Pace(" not in result.stderr


def test_the_console_script_keeps_exit_codes_and_all_its_output(tmp_path):
    """`entry` leaves the process without the interpreter's teardown: the exit code, and every line
    on stdout (to a pipe) and stderr, still come out."""
    import subprocess
    import sys

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "chat", "prompt": 5}\n')
    listed = subprocess.run(
        [sys.executable, "-m", "batchgpt.cli", "validate", str(bad), "--model", "m"], capture_output=True, text=True
    )
    assert listed.returncode == 2 and f"{bad}:1" in listed.stderr and "Traceback" not in listed.stderr
    good = tmp_path / "good.jsonl"
    good.write_text("".join(f'{{"type": "chat", "prompt": "p{n}", "model": "gpt-4o-mini"}}\n' for n in range(3000)))
    table = subprocess.run(
        [sys.executable, "-m", "batchgpt.cli", "estimate", str(good)], capture_output=True, text=True
    )
    assert table.returncode == 0 and table.stdout.endswith("\n")  # its last line too
    assert any(line.startswith("TOTAL") and "3,000" in line for line in table.stdout.splitlines())
    version = subprocess.run([sys.executable, "-m", "batchgpt.cli", "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("batchgpt")


@pytest.mark.parametrize("closed", [1, 2])
def test_the_console_script_keeps_its_exit_code_with_stdout_or_stderr_closed(tmp_path, closed):
    """Cron and daemons may start it with a descriptor closed (`>&-`): Python then has no
    sys.stdout (or sys.stderr), and `entry` must not trip on it."""
    import subprocess
    import sys

    good = tmp_path / "good.jsonl"
    good.write_text('{"type": "chat", "prompt": "p", "model": "gpt-4o-mini"}\n')
    shell = f"exec {sys.executable} -m batchgpt.cli validate {good} {closed}>&-"
    result = subprocess.run(["sh", "-c", shell], capture_output=True, text=True)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
