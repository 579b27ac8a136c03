"""`type: conversation`: chained turns, each sent with the whole history; resumable turn by turn."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pandas as pd
from conftest import SECRET, chat_job, faults

from batchgpt.batch import EXIT_SUBMITTED

TURNS = ["Write a line about the sea.", "Now make it rhyme.", "Shorter.", "Translate it to French."]


def conversation_job(**task: object) -> dict:
    job = chat_job([])
    job["tasks"] = [
        {"type": "conversation", "system": "You write.", "items": [{"id": "story", "turns": TURNS}], **task}
    ]
    return job


def test_each_turn_is_sent_with_the_whole_history_and_is_a_row_of_its_own(cli, server, write_job, tmp_path):
    result = cli("run", str(write_job(conversation_job())))
    assert result.exit_code == 0, result.output
    sent = [s.body["messages"] for s in server.seen]
    assert [len(m) for m in sent] == [2, 4, 6, 8]
    assert sent[3][:4] == [
        {"role": "system", "content": "You write."},
        {"role": "user", "content": TURNS[0]},
        {"role": "assistant", "content": f"Echo: {TURNS[0]}"},
        {"role": "user", "content": TURNS[1]},
    ]
    frame = pd.read_csv(tmp_path / "out" / "t.csv")
    assert frame["id"].tolist() == ["story#1", "story#2", "story#3", "story#4"]
    assert frame["turn"].tolist() == [1, 2, 3, 4] and set(frame["status"]) == {"ok"}
    assert frame["prompt_tokens"].is_monotonic_increasing


def test_a_chain_stops_at_its_first_failed_turn(cli, server, write_job, tmp_path):
    faults(server, "400:match=make it rhyme")
    result = cli("run", str(write_job(conversation_job())))
    assert result.exit_code == 1
    frame = pd.read_csv(tmp_path / "out" / "t.csv")
    assert frame["status"].tolist() == ["ok", "error", "skipped", "skipped"]
    assert frame["error"].iloc[2] == "not sent: turn 2 did not succeed" and len(server.seen) == 2


def test_a_chain_killed_after_turn_two_resumes_at_turn_three(server, write_job, tmp_path):
    path = write_job(conversation_job())
    faults(server, "hang:match=Shorter")  # turn 3 hangs: the run is killed while it waits
    env = {**os.environ, "OPENAI_API_KEY": SECRET}
    command = [sys.executable, "-m", "batchgpt.cli", "run", str(path), "--base-url", server.base_url]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while len(server.seen) < 3:
            assert time.monotonic() < deadline and process.poll() is None, "turn 3 was never sent"
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    faults(server)
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert rerun.returncode == 0, rerun.stderr
    contents = [s.body["messages"][-1]["content"] for s in server.seen]
    assert contents == [TURNS[0], TURNS[1], TURNS[2], TURNS[2], TURNS[3]]  # turns 1 and 2 were not sent again
    frame = pd.read_csv(tmp_path / "out" / "t.csv")
    assert set(frame["status"]) == {"ok"} and frame["turn"].tolist() == [1, 2, 3, 4]


def test_task_turns_are_templates_over_each_rows_fields(cli, server, write_job, tmp_path):
    (tmp_path / "p.csv").write_text("id,product\nshoe,red shoe\n")
    job = chat_job([])
    job["tasks"] = [{"type": "conversation", "turns": ["Describe the {product}.", "Name it."], "items_from": "p.csv"}]
    assert cli("run", str(write_job(job))).exit_code == 0
    assert [s.body["messages"][-1]["content"] for s in server.seen] == ["Describe the red shoe.", "Name it."]


def test_turns_naming_a_missing_field_or_no_turns_are_problems(cli, write_job, tmp_path):
    (tmp_path / "p.csv").write_text("id,name\nshoe,red shoe\n")
    job = chat_job([])
    job["tasks"] = [
        {"type": "conversation", "turns": ["Describe the {product}."], "items_from": "p.csv"},
        {"type": "conversation", "name": "bare", "items": [{"id": "x"}]},
    ]
    result = cli("validate", str(write_job(job)))
    assert result.exit_code == 2
    assert "field `product` not in p.csv: 1 row lacks it, at line 2 (at /tasks/0/turns)" in result.output
    assert "no turns: set `turns` on the item or the task" in result.output


def test_the_dry_run_counts_the_growing_history(cli, write_job):
    whole = cli("run", str(write_job(conversation_job(max_tokens=100), "a.yaml")), "--dry-run")
    assert whole.exit_code == 0
    row = next(line for line in whole.output.splitlines() if line.startswith("conversation "))
    requests, prompt = (int(c.replace(",", "")) for c in re.split(r"\s{2,}", row.strip())[2:4])
    assert requests == 4
    assert prompt >= 100 * (1 + 2 + 3)  # every earlier answer, at its worst, is in the later prompts


def test_in_batch_mode_each_round_answers_the_next_turn_of_every_chain(cli, server, write_job, tmp_path):
    job = conversation_job()
    job["tasks"][0]["items"].append({"id": "short", "turns": ["Hi.", "Bye."]})
    path = write_job({**job, "mode": "batch"})
    codes = [cli("run", str(path)).exit_code for _ in range(5)]
    assert codes == [EXIT_SUBMITTED] * 4 + [0]  # turn 1 of both, 2 of both, 3, 4; then collected
    files = [f for f in server.batch.files.values() if f.purpose == "batch"]
    assert [[json.loads(line)["custom_id"] for line in f.data.splitlines()] for f in files] == [
        ["story#1", "short#1"],
        ["story#2", "short#2"],
        ["story#3"],
        ["story#4"],
    ]
    last = json.loads(files[-1].data.splitlines()[0])["body"]["messages"]
    assert [m["role"] for m in last] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    assert last[2]["content"] == f"Echo: {TURNS[0]}"
    frame = pd.read_csv(tmp_path / "out" / "t.csv")
    assert frame["id"].tolist() == ["story#1", "story#2", "story#3", "story#4", "short#1", "short#2"]
    assert set(frame["status"]) == {"ok"} and set(frame["mode"]) == {"batch"}


def test_conversation_results_write_to_parquet_with_integer_turns(cli, server, write_job, tmp_path):
    job = conversation_job(output={"results": "out/t.parquet"})
    job["output"] = job["tasks"][0].pop("output")
    assert cli("run", str(write_job(job))).exit_code == 0
    frame = pd.read_parquet(tmp_path / "out" / "t.parquet")
    assert frame["turn"].tolist() == [1, 2, 3, 4]


def test_a_turn_id_may_not_be_another_items_id(cli, write_job):
    job = conversation_job()
    job["tasks"].append({"type": "chat", "name": "plain", "items": [{"id": "story#2", "prompt": "x"}]})
    result = cli("validate", str(write_job(job)))
    assert result.exit_code == 2 and "duplicate id 'story#2'" in result.output


def test_a_jsonl_job_takes_conversations_and_responses(cli, server, tmp_path):
    lines = [
        {"type": "conversation", "id": "c", "turns": ["one", "two"], "model": "gpt-4o-mini"},
        {"type": "response", "id": "r", "input": "three", "model": "gpt-4o-mini"},
    ]
    path = tmp_path / "lines.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    result = cli("run", str(path))
    assert result.exit_code == 0, result.output
    assert pd.read_csv(tmp_path / "out" / "lines.csv")["id"].tolist() == ["c#1", "c#2", "r"]
