"""Structured outputs: strict-mode checks at validation, the schema sent, answers validated, re-asks."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import chat_job, faults

from batchgpt.batch import EXIT_SUBMITTED
from batchgpt.structured import strict_problems

PRODUCT = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "price": {"type": "number"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "note": {"type": ["string", "null"]},
    },
    "required": ["name", "price", "tags", "note"],
    "additionalProperties": False,
}


def structured_job(prompts: list[str], **task: object) -> dict:
    job = chat_job(prompts)
    job["tasks"][0].update({"schema": PRODUCT, **task})
    return job


def test_the_schema_is_sent_strict_and_every_answer_validated(cli, server, write_job, tmp_path):
    result = cli("run", str(write_job(structured_job(["Red shoe"], schema_name="product"))))
    assert result.exit_code == 0, result.output
    assert server.seen[0].body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "product", "strict": True, "schema": PRODUCT},
    }
    row = pd.read_csv(tmp_path / "out" / "t.csv").iloc[0]
    assert json.loads(row["output"]) == {"name": "Echo: Red shoe", "price": 1.5, "tags": [], "note": "Echo: Red shoe"}
    assert row["reasks"] == 0


def test_an_answer_needing_two_reasks_adds_every_attempts_tokens(cli, server, write_job, tmp_path):
    faults(server, "schema-miss:first=2")
    result = cli("run", str(write_job(structured_job(["Red shoe"]))))
    assert result.exit_code == 0, result.output
    assert len(server.seen) == 3
    last = server.seen[-1].body["messages"]
    assert [m["role"] for m in last] == ["user", "assistant", "user", "assistant", "user"]
    assert last[1]["content"] == "{}" and "does not match the JSON Schema" in last[2]["content"]
    assert "'name' is a required property" in last[2]["content"]
    row = pd.read_csv(tmp_path / "out" / "t.csv").iloc[0]
    assert row["status"] == "ok" and row["reasks"] == 2 and row["attempts"] == 3
    alone = {**structured_job(["Red shoe"]), "name": "single"}
    single = cli("run", str(write_job(alone, "single.yaml")), "--out", str(tmp_path / "s.csv"))
    assert single.exit_code == 0
    once = pd.read_csv(tmp_path / "s.csv").iloc[0]
    assert row["prompt_tokens"] > 3 * once["prompt_tokens"]  # each re-ask sends the history too
    assert row["cost_usd"] > 3 * once["cost_usd"]


def test_an_answer_that_never_matches_is_an_error_after_the_reasks(cli, server, write_job, tmp_path):
    faults(server, "schema-miss")
    result = cli("run", str(write_job(structured_job(["x"], reask=1))))
    assert result.exit_code == 1
    row = pd.read_csv(tmp_path / "out" / "t.csv").iloc[0]
    assert row["status"] == "error" and row["reasks"] == 1 and len(server.seen) == 2
    assert row["error"].startswith("the answer does not match the schema (after 1 re-ask): at /: 'name' is a required")


def test_a_refusal_and_a_cut_answer_are_error_rows_saying_so(cli, server, write_job, tmp_path):
    faults(server, "refusal:match=REFUSE")
    job = structured_job(["REFUSE this", "a long request that is cut"])
    job["tasks"][0]["items"][1]["max_tokens"] = 2
    result = cli("run", str(write_job(job)))
    assert result.exit_code == 1
    frame = pd.read_csv(tmp_path / "out" / "t.csv").set_index("id")
    assert frame.loc["p0", "error"].startswith("the model refused: I'm sorry")
    assert frame.loc["p1", "error"].startswith("the answer was cut at max_tokens")
    assert len(server.seen) == 2  # neither is asked again


def test_columns_write_each_top_level_field_typed_in_parquet(cli, server, write_job, tmp_path):
    job = structured_job(["Red shoe"], columns=True, output={"results": "out/t.parquet"})
    job["output"] = job["tasks"][0].pop("output")
    result = cli("run", str(write_job(job)))
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(tmp_path / "out" / "t.parquet")
    assert frame[["name", "price"]].values.tolist() == [["Echo: Red shoe", 1.5]]
    assert frame["price"].dtype == "float64"


def test_responses_send_the_schema_as_text_format(cli, server, write_job, tmp_path):
    job = chat_job([])
    job["tasks"] = [{"type": "response", "schema": PRODUCT, "items": [{"input": "Blue hat"}]}]
    result = cli("run", str(write_job(job)))
    assert result.exit_code == 0, result.output
    assert server.seen[0].body["text"]["format"]["strict"] is True
    assert json.loads(pd.read_csv(tmp_path / "out" / "t.csv")["output"][0])["name"] == "Echo: Blue hat"


def test_a_schema_file_breaking_strict_mode_is_reported_at_its_lines(cli, write_job, tmp_path):
    (tmp_path / "schema.json").write_text(
        json.dumps(
            {
                "type": "object",
                "properties": {"a": {"type": "string"}, "b": {"allOf": [{"type": "string"}]}},
                "required": ["a"],
            },
            indent=2,
        )
    )
    result = cli("validate", str(write_job(structured_job(["x"], schema="schema.json"))))
    assert result.exit_code == 2
    assert (
        "schema.json:1: schema: strict mode needs `additionalProperties: false` on every object (at /)" in result.output
    )
    assert "missing: b" in result.output
    assert "schema.json:8: schema: strict mode does not support `allOf` (at /properties/b/allOf)" in result.output


def test_an_inline_schema_breaking_strict_mode_is_reported_in_the_job_file(cli, write_job):
    job = structured_job(["x"], schema={"type": "array", "items": {"type": "string"}})
    result = cli("validate", str(write_job(job)))
    assert result.exit_code == 2 and "strict mode needs an object at the root" in result.output
    assert "(at /tasks/0/schema)" in result.output


def test_strict_limits() -> None:
    deep: dict = {"type": "string"}
    for n in range(11):
        deep = {"type": "object", "properties": {f"l{n}": deep}, "required": [f"l{n}"], "additionalProperties": False}
    assert any("10" in message for _, message in strict_problems(deep))
    many = {"type": "string", "enum": [str(n) for n in range(1001)]}
    wide = {"type": "object", "properties": {"e": many}, "required": ["e"], "additionalProperties": False}
    assert any("1,001 enum values" in message for _, message in strict_problems(wide))
    assert list(strict_problems(PRODUCT)) == []


def test_in_batch_mode_a_missed_schema_is_an_error_a_rerun_sends_again(cli, server, write_job, tmp_path):
    faults(server, "schema-miss:first=1")
    path = write_job({**structured_job(["Red shoe"]), "mode": "batch"})
    assert cli("run", str(path)).exit_code == EXIT_SUBMITTED
    collected = cli("run", str(path))  # collected as a passing error: paid once a run, not sent again by it
    assert collected.exit_code == 1 and "a plain rerun sends them again" in collected.output
    assert cli("run", str(path)).exit_code == EXIT_SUBMITTED
    assert cli("run", str(path)).exit_code == 0
    assert pd.read_csv(tmp_path / "out" / "t.csv")["status"].tolist() == ["ok"]


@pytest.mark.parametrize("name", ["status", "output"])
def test_columns_may_not_take_a_result_columns_name(cli, write_job, name):
    schema = {
        "type": "object",
        "properties": {name: {"type": "string"}},
        "required": [name],
        "additionalProperties": False,
    }
    result = cli("validate", str(write_job(structured_job(["x"], schema=schema, columns=True))))
    assert result.exit_code == 2 and f"columns: true would write {name!r}" in result.output


def test_a_reask_that_fails_keeps_what_the_first_answer_cost(cli, server, write_job, tmp_path):
    faults(server, "schema-miss:first=1", "400:first=2")
    result = cli("run", str(write_job(structured_job(["x"]))))
    assert result.exit_code == 1
    row = pd.read_csv(tmp_path / "out" / "t.csv").iloc[0]
    assert row["status"] == "error" and row["prompt_tokens"] > 0 and row["cost_usd"] > 0


def test_columns_survive_a_plain_rerun(cli, server, write_job, tmp_path):
    path = write_job(structured_job(["Red shoe"], columns=True))
    assert cli("run", str(path)).exit_code == 0
    assert cli("run", str(path)).exit_code == 0
    frame = pd.read_csv(tmp_path / "out" / "t.csv")
    assert frame["name"].tolist() == ["Echo: Red shoe"]


def test_nan_and_deep_nesting_are_not_json() -> None:
    from batchgpt.structured import check

    assert check(PRODUCT, '{"name": NaN}')[1].startswith("the answer is not JSON")
    assert check(PRODUCT, "[" * 100_000)[1].startswith("the answer is not JSON")


def test_a_streamed_structured_answer_cut_short_is_an_error_not_reasked(cli, server, write_job, tmp_path):
    job = structured_job(["a request long enough to be cut"], stream=True)
    job["tasks"][0]["items"][0]["max_tokens"] = 3
    result = cli("run", str(write_job(job)))
    assert result.exit_code == 1 and len(server.seen) == 1
    assert pd.read_csv(tmp_path / "out" / "t.csv")["error"][0].startswith("the answer was cut at max_tokens")


def test_keep_all_and_columns_clash_only_on_a_shared_name(cli, write_job, tmp_path):
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "required": ["a"],
        "additionalProperties": False,
    }
    fine = chat_job(["x"])
    fine["tasks"][0].update({"schema": schema, "columns": True, "keep": "all"})
    assert cli("validate", str(write_job(fine, "fine.yaml"))).exit_code == 0
    clash = chat_job(["x"])
    clash["tasks"][0].update({"schema": schema, "columns": True, "keep": "all"})
    clash["tasks"][0]["items"][0]["a"] = "mine"
    result = cli("validate", str(write_job(clash, "clash.yaml")))
    assert result.exit_code == 2 and "keep: all would copy 'a'" in result.output


def test_a_schema_file_that_is_no_object_is_a_problem_not_a_crash(cli, write_job, tmp_path):
    (tmp_path / "s.json").write_text("[1, 2]")
    result = cli("validate", str(write_job(structured_job(["x"], schema="s.json", columns=True))))
    assert result.exit_code == 2 and "a schema is a JSON object" in result.output


def test_in_batch_mode_a_schema_miss_is_paid_once_a_run(cli, server, write_job, tmp_path):
    faults(server, "schema-miss")
    path = write_job({**structured_job(["x"]), "mode": "batch"})
    done = cli("run", str(path), "--wait", "--poll", "0")
    assert done.exit_code == 1, done.output
    assert len([f for f in server.batch.files.values() if f.purpose == "batch"]) == 1


def test_an_item_may_set_its_own_schema_inline_or_from_a_file(cli, server, write_job, tmp_path):
    colour = {
        "type": "object",
        "properties": {"colour": {"type": "string"}},
        "required": ["colour"],
        "additionalProperties": False,
    }
    (tmp_path / "colour.json").write_text(json.dumps(colour))
    job = structured_job(["task schema", "inline", "file"])
    job["tasks"][0]["items"][1]["schema"] = colour
    job["tasks"][0]["items"][2]["schema"] = "colour.json"
    job["tasks"][0]["items"][2]["schema_name"] = "colour"
    result = cli("run", str(write_job(job)))
    assert result.exit_code == 0, result.output
    sent = [s.body["response_format"]["json_schema"] for s in server.seen]
    assert [x["schema"] for x in sent] == [PRODUCT, colour, colour] and sent[2]["name"] == "colour"
    outputs = pd.read_csv(tmp_path / "out" / "t.csv")["output"].map(json.loads).tolist()
    assert outputs[1] == {"colour": "Echo: inline"} and "price" in outputs[0]


def test_an_items_schema_breaking_strict_mode_is_reported_at_the_item(cli, write_job):
    job = structured_job(["x"])
    job["tasks"][0]["items"][0]["schema"] = {"type": "object", "properties": {"a": {"type": "string"}}}
    result = cli("validate", str(write_job(job)))
    assert result.exit_code == 2 and "(at /tasks/0/items/0)" in result.output
    assert "schema: strict mode needs `additionalProperties: false` on every object (at /)" in result.output


def test_only_a_schema_is_asked_again_not_an_image_or_speech_response_format():
    """Images, speech and transcriptions have a response_format of their own (b64_json, mp3,
    json): they were taken for structured outputs, and their worst case counted 2 re-asks."""
    from batchgpt.jobs import load, requests

    job = load(
        {
            "defaults": {"model": "gpt-4o-mini"},
            "tasks": [
                {"type": "image", "model": "dall-e-3", "response_format": "b64_json", "items": [{"prompt": "a cat"}]},
                {"type": "speech", "model": "tts-1", "voice": "alloy", "items": [{"text": "hello"}]},
                {"type": "chat", "schema": {"type": "object", "properties": {"a": {"type": "string"}},
                  "required": ["a"], "additionalProperties": False}, "items": [{"prompt": "give a"}]},
            ],
        }
    )  # fmt: skip
    assert [(r.type, r.reask) for r in requests(job)] == [("image", 0), ("speech", 0), ("chat", 2)]
