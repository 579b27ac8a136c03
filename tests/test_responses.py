"""`type: response`: the Responses API, online, streamed and in batch mode, through the mock server."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from conftest import chat_job

from batchgpt.batch import EXIT_SUBMITTED
from batchgpt.pricing import Pricing
from batchgpt.tasks import TASKS, FailedAnswer


def response_job(items: list[dict], **task: object) -> dict:
    job = chat_job([])
    job["tasks"] = [{"type": "response", "items": items, **task}]
    return job


def test_a_response_task_sends_input_and_instructions_without_storing(cli, server, write_job, tmp_path):
    items = [
        {"id": "a", "input": "Hello there", "max_tokens": 50},
        {"id": "b", "input": [{"role": "user", "content": "From messages"}]},
    ]
    result = cli("run", str(write_job(response_job(items, instructions="Be brief."))))
    assert result.exit_code == 0, result.output
    sent = {s.body["input"] if isinstance(s.body["input"], str) else "list": s.body for s in server.seen}
    assert sent["Hello there"] == {
        "model": "gpt-4o-mini",
        "input": "Hello there",
        "store": False,
        "instructions": "Be brief.",
        "max_output_tokens": 50,
    }
    assert sent["list"]["input"] == [{"role": "user", "content": "From messages"}]
    frame = pd.read_csv(tmp_path / "out" / "t.csv").set_index("id")
    assert frame["output"].tolist() == ["Echo: Hello there", "Echo: From messages"]
    assert frame.loc["a", "cost_usd"] == pytest.approx(
        Pricing().cost("gpt-4o-mini", frame.loc["a", "prompt_tokens"], frame.loc["a", "completion_tokens"])
    )


def test_store_is_sent_as_the_job_says(cli, server, write_job):
    result = cli("run", str(write_job(response_job([{"input": "x"}], params={"store": True}))))
    assert result.exit_code == 0 and server.seen[0].body["store"] is True


def test_a_streamed_response_is_read_from_its_events_with_time_to_first_token(cli, server, write_job, tmp_path):
    result = cli("run", str(write_job(response_job([{"id": "s", "input": "Streamed hello"}], stream=True))))
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(tmp_path / "out" / "t.csv")
    assert frame["output"].tolist() == ["Echo: Streamed hello"] and frame["ttft_s"].notna().all()
    assert frame["prompt_tokens"].iloc[0] > 0 and frame["completion_tokens"].iloc[0] > 0


def test_an_incomplete_response_is_an_error_row_naming_its_reason_billed_and_not_retried(
    cli, server, write_job, tmp_path
):
    job = response_job([{"id": "c", "input": "This answer will be cut short by the limit", "max_tokens": 3}])
    result = cli("run", str(write_job(job)))
    assert result.exit_code == 1, result.output
    row = pd.read_csv(tmp_path / "out" / "t.csv").iloc[0]
    assert row["status"] == "error" and row["error"] == "the response is incomplete: max_output_tokens"
    assert row["completion_tokens"] == 3 and row["cost_usd"] > 0
    assert len(server.seen) == 1


def test_responses_run_in_batch_mode_too(cli, server, write_job, tmp_path):
    job = response_job([{"id": "a", "input": "one"}, {"id": "b", "input": "two"}], instructions="Short.")
    path = write_job({**job, "mode": "batch"})
    assert cli("run", str(path)).exit_code == EXIT_SUBMITTED
    [file] = [f for f in server.batch.files.values() if f.purpose == "batch"]
    lines = [json.loads(line) for line in file.data.splitlines()]
    assert {line["url"] for line in lines} == {"/v1/responses"} and lines[0]["body"]["store"] is False
    assert cli("run", str(path)).exit_code == 0
    frame = pd.read_csv(tmp_path / "out" / "t.csv")
    assert frame["output"].tolist() == ["Echo: one", "Echo: two"] and set(frame["mode"]) == {"batch"}


def test_usage_maps_cached_and_reasoning_tokens() -> None:
    answer = {
        "status": "completed",
        "output": [
            {"type": "reasoning", "summary": []},
            {
                "type": "message",
                "content": [{"type": "output_text", "text": "Hi"}, {"type": "output_text", "text": "!"}],
            },
        ],
        "usage": {
            "input_tokens": 100,
            "input_tokens_details": {"cached_tokens": 60},
            "output_tokens": 30,
            "output_tokens_details": {"reasoning_tokens": 20},
        },
    }
    reply = TASKS["response"].parse(answer)
    assert (reply.output, reply.prompt_tokens, reply.completion_tokens) == ("Hi!", 100, 30)
    assert (reply.cached_tokens, reply.reasoning_tokens) == (60, 20)
    failed = {"status": "failed", "error": {"message": "server exploded"}, "usage": {"input_tokens": 5}}
    with pytest.raises(FailedAnswer, match="the response is failed: server exploded") as caught:
        TASKS["response"].parse(failed)
    assert caught.value.reply.prompt_tokens == 5


def test_the_dry_run_counts_instructions_and_messages(cli, write_job):
    short = cli("run", str(write_job(response_job([{"input": "hi"}], max_tokens=10), "a.yaml")), "--dry-run")
    longer = cli(
        "run",
        str(write_job(response_job([{"input": "hi"}], max_tokens=10, instructions="word " * 50), "b.yaml")),
        "--dry-run",
    )
    assert short.exit_code == longer.exit_code == 0

    def prompt_tokens(output: str) -> int:
        row = next(line for line in output.splitlines() if line.startswith("response "))
        return int(re.split(r"\s{2,}", row.strip())[3].replace(",", ""))

    assert prompt_tokens(longer.output) - prompt_tokens(short.output) >= 50


def test_a_background_response_still_queued_is_an_error_row() -> None:
    with pytest.raises(FailedAnswer, match="the response is queued"):
        TASKS["response"].parse({"status": "queued", "output": [], "usage": None})
