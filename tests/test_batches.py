"""Batch API mode end to end: the CLI against the mock server's /files and /batches.

Each test drives whole runs as cron would (submit, exit 5, run again to collect) and checks what
the server received, what the store and the results file say, and what a user reads.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import SECRET, chat_job, faults, store_dump

from batchgpt.batch import EXIT_SUBMITTED, EXIT_UNRESOLVED
from batchgpt.batch import files as batchfiles
from batchgpt.batch.settle import groups_of
from batchgpt.mock import Config, MockServer
from batchgpt.pricing import Pricing
from batchgpt.store import BatchRow


def uploads(server: MockServer) -> list[list[dict[str, Any]]]:
    """The lines of each batch input file the server received, in upload order."""
    found = [f for f in server.batch.files.values() if f.purpose == "batch"]
    return [[json.loads(line) for line in f.data.splitlines()] for f in found]


def created(server: MockServer) -> list[dict[str, Any]]:
    return [s.body for s in server.seen if s.path.endswith("/batches")]


def results(path: Path) -> pd.DataFrame:
    return pd.read_csv(path / "out" / "t.csv").set_index("id")


def items_in_store(tmp_path: Path) -> dict[str, str]:
    db = sqlite3.connect(tmp_path / ".batchgpt" / "state.db")
    try:
        return dict(db.execute("SELECT id, status FROM items"))
    finally:
        db.close()


def test_the_first_run_submits_and_exits_5_a_later_run_collects_at_the_batch_price(cli, server, write_job, tmp_path):
    path = write_job(chat_job(["one", "two", "three"], mode="batch"))
    server.config.batch_delay = 30
    first = cli("run", str(path))
    assert first.exit_code == EXIT_SUBMITTED, first.output
    assert "3 items waiting in 1 open batch:" in first.output
    again = f"`batchgpt run {path} --batch --base-url {server.base_url}` again"  # the endpoint it was sent to
    assert again in first.output and f"`batchgpt batches {path}`" in first.output
    assert not (tmp_path / "out" / "t.csv").exists()  # no results while items are not final
    [lines] = uploads(server)
    assert [line["custom_id"] for line in lines] == ["p0", "p1", "p2"]
    assert {line["url"] for line in lines} == {"/v1/chat/completions"} and {line["method"] for line in lines} == {
        "POST"
    }
    [batch] = created(server)
    assert batch["completion_window"] == "24h" and batch["endpoint"] == "/v1/chat/completions"
    assert batch["metadata"]["batchgpt_job"] == "t" and batch["metadata"]["batchgpt_part"] == "1"
    assert len(batch["metadata"]["batchgpt_intent"]) == 32

    listed = cli("batches", str(path))
    assert "validating" in listed.output and "gpt-4o-mini" in listed.output

    waiting = cli("run", str(path))  # polled, not ended: nothing new is submitted
    assert waiting.exit_code == EXIT_SUBMITTED and len(uploads(server)) == 1

    next(iter(server.batch.batches.values())).created -= 30  # the batch's time has come
    done = cli("run", str(path))
    assert done.exit_code == 0, done.output
    frame = results(tmp_path)
    assert frame["status"].tolist() == ["ok"] * 3 and set(frame["mode"]) == {"batch"}
    assert frame.loc["p0", "output"] == "Echo: one"
    pricing = Pricing()
    for item, row in frame.iterrows():
        online = pricing.cost("gpt-4o-mini", row["prompt_tokens"], row["completion_tokens"])
        assert row["cost_usd"] == pytest.approx(online / 2), item  # gpt-4o-mini's batch price is half
    report = pd.read_csv(tmp_path / "out" / "t-report.csv")
    assert report["mode"].tolist()[0] == "batch"
    assert len(uploads(server)) == 1  # collecting submitted nothing new
    assert cli("run", str(path)).exit_code == 0 and len(uploads(server)) == 1  # and a rerun has nothing to do


def test_answered_items_are_not_submitted_again_but_a_changed_one_is(cli, server, write_job, tmp_path):
    path = write_job(chat_job(["one", "two", "three"]))
    assert cli("run", str(path)).exit_code == 0  # answered online
    changed = chat_job(["one", "TWO", "three", "four"])
    path = write_job(changed)
    first = cli("run", str(path), "--batch")
    assert first.exit_code == EXIT_SUBMITTED, first.output
    [lines] = uploads(server)
    assert [(line["custom_id"], line["body"]["messages"][-1]["content"]) for line in lines] == [
        ("p1", "TWO"),
        ("p3", "four"),
    ]
    done = cli("run", str(path), "--batch")
    assert done.exit_code == 0, done.output
    frame = results(tmp_path)
    assert frame["mode"].to_dict() == {"p0": "online", "p1": "batch", "p2": "online", "p3": "batch"}
    assert frame.loc["p1", "output"] == "Echo: TWO"


def test_a_run_killed_between_create_and_commit_finds_its_batch_instead_of_paying_twice(server, write_job, tmp_path):
    path = write_job(chat_job(["one", "two"], mode="batch"))
    server.config.batch_create_delay = 60  # the batch exists; the run never hears of it
    env = {**os.environ, "OPENAI_API_KEY": SECRET}
    command = [sys.executable, "-m", "batchgpt.cli", "run", str(path), "--base-url", server.base_url]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not server.batch.batches:
            assert time.monotonic() < deadline and process.poll() is None, "the run never created its batch"
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    server.config.batch_create_delay = 0
    assert items_in_store(tmp_path) == {"p0": "submitted", "p1": "submitted"}

    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert rerun.returncode == 0, rerun.stderr
    assert len(server.batch.batches) == 1 and len(created(server)) == 1  # found again, not created twice
    assert "found batch" in rerun.stderr
    assert results(tmp_path)["status"].tolist() == ["ok", "ok"]


def test_an_expired_batch_bills_what_it_finished_and_the_next_file_holds_the_rest(cli, server, write_job, tmp_path):
    path = write_job(chat_job([f"prompt {i}" for i in range(4)], mode="batch"))
    server.config.batch_expire = 0.5
    assert cli("run", str(path)).exit_code == EXIT_SUBMITTED
    second = cli("run", str(path))  # collects the half that finished, submits the rest
    assert second.exit_code == EXIT_SUBMITTED, second.output
    assert [[line["custom_id"] for line in lines] for lines in uploads(server)] == [
        ["p0", "p1", "p2", "p3"],
        ["p2", "p3"],
    ]
    assert items_in_store(tmp_path) == {"p0": "ok", "p1": "ok", "p2": "submitted", "p3": "submitted"}
    server.config.batch_expire = None
    third = cli("run", str(path))
    assert third.exit_code == 0, third.output
    frame = results(tmp_path)
    assert frame["status"].tolist() == ["ok"] * 4 and frame["cost_usd"].gt(0).all()
    assert frame["attempts"].to_dict() == {"p0": 1, "p1": 1, "p2": 2, "p3": 2}  # two submissions each


def test_cancel_collects_what_finished_and_skips_the_rest(cli, server, write_job, tmp_path):
    path = write_job(chat_job([f"prompt {i}" for i in range(10)], mode="batch"))
    server.config.batch_delay = 3600
    assert cli("run", str(path)).exit_code == EXIT_SUBMITTED
    next(iter(server.batch.batches.values())).created -= 1800  # half way through
    cancelled = cli("cancel", str(path), "--poll", "0.05")
    assert cancelled.exit_code == 3, cancelled.output  # items not answered: never "every item ok"
    assert "not answered (skipped): 5 items; a later run submits them again" in cancelled.output
    assert "cancelling batch" in cancelled.output
    frame = results(tmp_path)
    assert frame["status"].value_counts().to_dict() == {"ok": 5, "skipped": 5}
    assert frame[frame["status"] == "skipped"]["error"].str.contains("cancelled").all()
    assert len(uploads(server)) == 1  # the unfinished half is not submitted again by the cancel
    assert "no open batches" in cli("batches", str(path)).output
    assert "cancelled (collected)" in cli("batches", str(path), "--all").output

    server.config.batch_delay = 0
    again = cli("run", str(path))  # a later run submits the skipped half
    assert again.exit_code == EXIT_SUBMITTED
    assert [line["custom_id"] for line in uploads(server)[-1]] == [f"p{i}" for i in range(5, 10)]


def test_error_lines_fail_permanently_or_go_into_the_next_file(cli, server, write_job, tmp_path):
    path = write_job(chat_job(["fine", "BAD request", "FLAKY one"], mode="batch"))
    faults(server, "400:match=BAD", "500:first=1,match=FLAKY")
    assert cli("run", str(path)).exit_code == EXIT_SUBMITTED
    second = cli("run", str(path))
    assert second.exit_code == EXIT_SUBMITTED, second.output
    assert [line["custom_id"] for line in uploads(server)[-1]] == ["p2"]  # the 500 is sent again, the 400 is not
    third = cli("run", str(path))
    assert third.exit_code == 1, third.output  # one item failed for good
    frame = results(tmp_path)
    assert frame["status"].to_dict() == {"p0": "ok", "p1": "error", "p2": "ok"}
    assert frame.loc["p1", "error"].startswith("HTTP 400 context_length_exceeded: This model's maximum context")
    assert "--retry-failed" in third.output


def test_a_batch_that_fails_validation_names_the_item_behind_each_line(cli, server, write_job, tmp_path):
    path = write_job(chat_job(["fine", "POISON here", "also fine"], mode="batch"))
    server.config.batch_invalid = "POISON"
    assert cli("run", str(path)).exit_code == EXIT_SUBMITTED
    second = cli("run", str(path))
    assert "item 'p1'" in second.output and "invalid_request" in second.output and "line 2" in second.output
    assert second.exit_code == EXIT_SUBMITTED  # the others went into a new file without it
    assert [line["custom_id"] for line in uploads(server)[-1]] == ["p0", "p2"]
    third = cli("run", str(path))
    assert third.exit_code == 1
    frame = results(tmp_path)
    assert frame["status"].to_dict() == {"p0": "ok", "p1": "error", "p2": "ok"}
    assert "failed validation: invalid_request" in frame.loc["p1", "error"]


def test_speech_runs_online_in_the_same_run_and_the_summary_says_so(cli, server, write_job, tmp_path):
    job = chat_job(["words"], mode="batch")
    job["tasks"].append({"type": "speech", "name": "say", "model": "tts-1", "items": [{"id": "s", "text": "hi"}]})
    path = write_job(job)
    first = cli("run", str(path))
    assert first.exit_code == EXIT_SUBMITTED, first.output
    assert "1 item the Batch API does not take (speech, transcription) ran online" in first.output
    assert [s.path for s in server.seen if "audio" in s.path] == ["/v1/audio/speech"]
    assert [[line["custom_id"] for line in lines] for lines in uploads(server)] == [["p0"]]
    done = cli("run", str(path))
    assert done.exit_code == 0, done.output
    frame = results(tmp_path)
    assert frame["mode"].to_dict() == {"p0": "batch", "s": "online"} and set(frame["status"]) == {"ok"}
    assert len([s for s in server.seen if "audio" in s.path]) == 1  # not sent twice


def test_polling_errors_mark_nothing_failed(cli, write_job, tmp_path, monkeypatch):
    server = MockServer(Config(api_key=SECRET, batch_delay=30)).start()
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    path = write_job(chat_job(["one", "two"], mode="batch", provider={"base_url": server.base_url}))
    try:
        assert cli("run", str(path), base_url=False).exit_code == EXIT_SUBMITTED
    finally:
        server.stop()
    monkeypatch.setattr("batchgpt.batch.runner.asyncio.sleep", _no_sleep)
    down = cli("run", str(path), base_url=False)
    assert down.exit_code == EXIT_SUBMITTED, down.output
    assert "could not be polled" in down.output and "the next poll tries again" in down.output
    assert items_in_store(tmp_path) == {"p0": "submitted", "p1": "submitted"}


async def _no_sleep(seconds: float) -> None:
    return None


def test_an_online_run_of_a_job_with_open_batches_is_refused(cli, server, write_job, tmp_path):
    path = write_job(chat_job(["one"]))
    server.config.batch_delay = 30
    assert cli("run", str(path), "--batch").exit_code == EXIT_SUBMITTED
    online = cli("run", str(path))
    assert online.exit_code == 2 and "open Batch API batch" in online.output and "twice" in online.output
    fresh = cli("run", str(path), "--batch", "--fresh")
    assert fresh.exit_code == 2 and "cancel" in fresh.output
    assert [s.path for s in server.seen if s.path.endswith("/chat/completions")] == []


def test_the_budget_holds_each_file_before_it_is_uploaded(cli, server, write_job, tmp_path):
    job = chat_job(["one", "two"], mode="batch", budget_usd=0.0001)
    job["defaults"]["max_tokens"] = 100
    job["tasks"].append(
        {"type": "chat", "name": "big", "model": "gpt-4o", "max_tokens": 4000, "items": [{"id": "b", "prompt": "x"}]}
    )
    path = write_job(job)
    first = cli("run", str(path))
    assert first.exit_code == EXIT_SUBMITTED, first.output
    assert "budget of $0.0001 reached" in first.output
    assert [[line["custom_id"] for line in lines] for lines in uploads(server)] == [["p0", "p1"]]  # gpt-4o's file not
    done = cli("run", str(path))
    assert done.exit_code == 3, done.output  # as online: stopped by the budget
    frame = results(tmp_path)
    assert frame["status"].to_dict() == {"p0": "ok", "p1": "ok", "b": "skipped"}


def test_wait_polls_until_done_and_writes_the_results(cli, server, write_job, tmp_path):
    path = write_job(chat_job(["one", "two"], mode="batch"))
    server.config.batch_delay = 0.3
    done = cli("run", str(path), "--wait", "--poll", "0.1")
    assert done.exit_code == 0, done.output
    assert results(tmp_path)["status"].tolist() == ["ok", "ok"]


def test_azure_global_batch_uses_the_deployment_the_api_key_header_and_azure_routes(cli, server, write_job, tmp_path):
    root = server.base_url[: -len("/v1")]
    path = write_job(
        chat_job(
            ["hello azure"],
            mode="batch",
            defaults={"model": "my-global-batch"},
            provider={"kind": "azure", "base_url": root, "api_version": "2024-10-21"},
        )
    )
    assert cli("run", str(path), base_url=False).exit_code == EXIT_SUBMITTED
    [lines] = uploads(server)
    assert lines[0]["url"] == "/chat/completions" and lines[0]["body"]["model"] == "my-global-batch"
    paths = [s.path for s in server.seen]
    assert paths == ["/openai/files", "/openai/batches"]
    assert all(s.headers["api-key"] == SECRET and "authorization" not in s.headers for s in server.seen)
    done = cli("run", str(path), base_url=False)
    assert done.exit_code == 0, done.output


def test_the_key_is_nowhere_in_the_store_the_files_or_the_batch(cli, server, write_job, tmp_path):
    path = write_job(chat_job(["one"], mode="batch"))
    first = cli("run", str(path))
    assert cli("run", str(path)).exit_code == 0
    assert SECRET not in store_dump(tmp_path / ".batchgpt") + first.output
    db = sqlite3.connect(tmp_path / ".batchgpt" / "state.db")
    assert SECRET not in repr(db.execute("SELECT * FROM batches").fetchall())
    assert SECRET not in json.dumps(created(server)) + repr(uploads(server))
    assert not list((tmp_path / ".batchgpt" / "batches").glob("*.jsonl"))  # uploaded and downloaded files are gone


def test_dry_run_batch_splits_items_past_a_files_line_limit_into_two_files(cli, write_job, tmp_path, monkeypatch):
    monkeypatch.setattr(batchfiles, "MAX_LINES", 1_000)  # the API's 50,000 (test_batchfiles.py), made small
    rows = "\n".join(json.dumps({"id": f"i{n}", "text": f"word {n}"}) for n in range(2_000))
    (tmp_path / "items.jsonl").write_text(rows + "\n")
    path = write_job(
        {
            "name": "big",
            "tasks": [{"type": "embedding", "model": "text-embedding-3-small", "items_from": "items.jsonl"}],
        }
    )
    result = cli("run", str(path), "--dry-run", "--batch")
    assert result.exit_code == 0, result.output
    assert "2 files for the Batch API" in result.output
    assert result.output.count("1,000") >= 2


def test_items_past_a_files_line_limit_are_submitted_as_full_files(cli, server, write_job, tmp_path, monkeypatch):
    monkeypatch.setattr(batchfiles, "MAX_LINES", 1_000)  # the API's 50,000 (test_batchfiles.py), made small
    rows = "\n".join(json.dumps({"id": f"i{n}", "prompt": f"say {n}"}) for n in range(2_000))
    (tmp_path / "items.jsonl").write_text(rows + "\n")
    path = write_job(
        {"name": "big", "defaults": {"model": "gpt-4o-mini"}, "tasks": [{"type": "chat", "items_from": "items.jsonl"}]}
    )
    server.config.batch_delay = 3600
    result = cli("run", str(path), "--batch")
    assert result.exit_code == EXIT_SUBMITTED, result.output
    files = uploads(server)
    assert [len(lines) for lines in files] == [1_000, 1_000]
    assert files[0][0]["custom_id"] == "i0" and files[1][-1]["custom_id"] == "i1999"
    assert len(created(server)) == 2 and "2,000 items waiting in 2 open batches" in result.output
    for batch in server.batch.batches.values():
        batch.created -= 3600
    collected = cli("run", str(path), "--batch")
    assert collected.exit_code == 0, collected.output
    frame = pd.read_csv(tmp_path / "out" / "big.csv", usecols=["id", "status", "output"])
    assert len(frame) == 2_000 and set(frame["status"]) == {"ok"}
    assert frame["output"].iloc[1_777] == "Echo: say 1777"


def test_ended_batches_are_collected_in_groups_that_bound_memory() -> None:
    def row(lines: int) -> BatchRow:
        return BatchRow("i", "j", 1, 1, "u", "p", "/chat/completions", "m", lines, 0, None)

    ended = [(None, row(n), None) for n in (60, 50, 30, 200, 10)]
    groups = list(groups_of(ended, 100))
    assert [[entry[1].lines for entry in group] for group in groups] == [[60], [50, 30], [200], [10]]


# Regressions found by attacking batch mode: each test fails without its fix.


def test_a_creation_that_times_out_is_never_sent_again_but_found_by_its_intent(cli, server, write_job, tmp_path):
    path = write_job(chat_job(["one", "two"], mode="batch", limits={"timeout": 0.5}))
    server.config.batch_create_delay = 1.5  # created, but the answer comes after the run gave up on it
    first = cli("run", str(path))
    assert first.exit_code == EXIT_SUBMITTED, first.output
    assert len(server.batch.batches) == 1 and "could not be created" in first.output
    server.config.batch_create_delay = 0
    second = cli("run", str(path))
    assert second.exit_code == 0, second.output
    assert len(server.batch.batches) == 1 and results(tmp_path)["status"].tolist() == ["ok", "ok"]


def test_a_lookup_that_fails_creates_nothing(cli, server, write_job, tmp_path, monkeypatch):
    monkeypatch.setattr("batchgpt.batch.runner.asyncio.sleep", _no_sleep)
    job = chat_job(["one"], mode="batch")
    job["tasks"].append({"type": "chat", "name": "big", "model": "gpt-4o", "items": [{"id": "b", "prompt": "x"}]})
    path = write_job(job)
    server.config.batch_create_errors = 1  # p0's creation fails: maybe created; b's batch is made
    assert cli("run", str(path)).exit_code == EXIT_SUBMITTED
    assert len(server.batch.batches) == 1
    server.config.batch_list_errors = 3  # and the lookup of the intent fails on the next run, retries too
    unknown = cli("run", str(path))
    assert unknown.exit_code == EXIT_SUBMITTED and "could not look up" in unknown.output
    assert len(server.batch.batches) == 1  # unknown is not "absent": nothing was created
    # the list shows b's batch, which the store knows, and no batch for p0: p0's is created now
    assert cli("run", str(path)).exit_code == EXIT_SUBMITTED and len(server.batch.batches) == 2
    assert cli("run", str(path)).exit_code == 0 and len(server.batch.batches) == 2


def test_two_providers_on_one_url_each_use_their_own_key(cli, server, write_job, tmp_path, monkeypatch):
    server.config.api_key = None
    monkeypatch.setenv("OTHER_KEY", "sk-other-key-0000000000")
    job = chat_job(["one"], mode="batch", provider={"base_url": server.base_url, "project": "proj_A"})
    job["tasks"].append(
        {
            "type": "chat",
            "name": "other",
            "provider": {"api_key_env": "OTHER_KEY", "project": "proj_B"},
            "items": [{"id": "x", "prompt": "two"}],
        }
    )
    path = write_job(job)
    assert cli("run", str(path), base_url=False).exit_code == EXIT_SUBMITTED
    assert cli("run", str(path), base_url=False).exit_code == 0
    sent = {(s.path, s.headers["authorization"][-4:], s.headers["openai-project"]) for s in server.seen}
    assert sent == {
        ("/v1/files", SECRET[-4:], "proj_A"),
        ("/v1/batches", SECRET[-4:], "proj_A"),
        ("/v1/files", "0000", "proj_B"),
        ("/v1/batches", "0000", "proj_B"),
    }


def test_a_batch_is_never_polled_with_another_providers_key(cli, server, write_job, tmp_path, monkeypatch):
    other = MockServer(Config(batch_delay=30)).start()
    try:
        monkeypatch.setenv("OTHER_KEY", "sk-other-key-0000000000")
        job = chat_job(["one"], mode="batch")
        job["tasks"][0]["provider"] = {"base_url": other.base_url, "api_key_env": "OTHER_KEY"}
        path = write_job(job)
        assert cli("run", str(path)).exit_code == EXIT_SUBMITTED
        before = len(other.seen)
        del job["tasks"][0]["provider"]  # the job no longer says which key that batch was sent with
        write_job(job)
        stuck = cli("run", str(path), "--wait", "--poll", "0")
        assert stuck.exit_code == EXIT_SUBMITTED, stuck.output
        assert "no longer has the key and provider settings" in stuck.output
        assert len(other.seen) == before  # nothing was sent there, with the job's key or any
    finally:
        other.stop()


def test_a_batch_the_server_no_longer_knows_is_submitted_again(cli, server, write_job, tmp_path):
    path = write_job(chat_job(["one", "two"], mode="batch"))
    server.config.batch_delay = 30
    assert cli("run", str(path)).exit_code == EXIT_SUBMITTED
    server.batch.batches.clear()  # as a restarted server (or a deleted batch): 404 from now on
    lost = cli("run", str(path))
    assert lost.exit_code == EXIT_SUBMITTED, lost.output
    assert len(server.batch.batches) == 1 and len(uploads(server)) == 2
    server.config.batch_delay = 0
    assert cli("run", str(path)).exit_code == 0


def test_a_polled_batch_that_is_not_ours_is_not_collected(cli, server, write_job, tmp_path):
    path = write_job(chat_job(["one"], mode="batch"))
    server.config.batch_delay = 30
    assert cli("run", str(path)).exit_code == EXIT_SUBMITTED
    [batch] = server.batch.batches.values()
    batch.metadata["batchgpt_intent"] = "someone-else"  # a server that reissued the id
    run = cli("run", str(path))
    assert run.exit_code == EXIT_SUBMITTED and "is now another batch" in run.output
    assert len(server.batch.batches) == 2


def test_cancel_never_creates_a_batch(cli, server, write_job, tmp_path):
    path = write_job(chat_job(["one"], mode="batch"))
    server.config.batch_create_errors = 1
    assert cli("run", str(path)).exit_code == EXIT_SUBMITTED  # uploaded, creation failed (maybe made)
    unsure = cli("cancel", str(path), "--poll", "0")  # an empty list cannot tell: nothing is made or dropped
    assert unsure.exit_code == EXIT_UNRESOLVED and "cannot tell whether it was created" in unsure.output
    lost = re.search(r"`batchgpt batches \S+ --lost ([0-9a-f]{32})`", unsure.output)
    assert lost and cli("batches", str(path), "--lost", lost[1]).exit_code == 0  # the warning's command
    cancelled = cli("cancel", str(path), "--poll", "0")
    assert cancelled.exit_code == 3, cancelled.output
    assert not server.batch.batches and results(tmp_path)["status"].tolist() == ["skipped"]


def test_a_file_the_server_lost_before_its_batch_was_made_is_submitted_again(cli, server, write_job, tmp_path):
    path = write_job(chat_job(["one"], mode="batch"))
    server.batch.faults.busy_creates = 1  # a 429: surely not created
    assert cli("run", str(path)).exit_code == EXIT_SUBMITTED  # uploaded, not created
    server.batch.files.clear()  # as a restarted server: the creation is refused, 404 no such file
    again = cli("run", str(path))
    assert again.exit_code == EXIT_SUBMITTED, again.output
    assert "could not create its batch (HTTP 404" in again.output and len(server.batch.batches) == 1
    assert cli("run", str(path)).exit_code == 0  # never an item's error: answered in the end


def test_a_file_the_batch_api_refuses_fails_its_items_and_the_others_go_on(cli, server, write_job, tmp_path):
    job = chat_job(["one"], mode="batch")
    job["tasks"].append({"type": "chat", "name": "odd", "model": "gpt-4.1", "items": [{"id": "o", "prompt": "x"}]})
    server.config.batch_refused_models = ("gpt-4.1",)
    path = write_job(job)
    first = cli("run", str(path))
    assert first.exit_code == EXIT_SUBMITTED and "the Batch API refused its file: HTTP 400" in first.output
    done = cli("run", str(path))
    assert done.exit_code == 1, done.output
    frame = results(tmp_path)
    assert frame["status"].to_dict() == {"p0": "ok", "o": "error"}
    assert "not supported by the Batch API" in frame.loc["o", "error"]


def test_an_answer_for_an_item_removed_meanwhile_is_kept(cli, server, write_job, tmp_path):
    job = chat_job(["one", "two", "three"], mode="batch")
    path = write_job(job)
    assert cli("run", str(path)).exit_code == EXIT_SUBMITTED
    del job["tasks"][0]["items"][2]
    write_job(job)
    assert cli("run", str(path)).exit_code == 0
    job = chat_job(["one", "two", "three"], mode="batch")
    write_job(job)
    again = cli("run", str(path))
    assert again.exit_code == 0, again.output  # p2's paid answer was kept: nothing to send
    assert len(uploads(server)) == 1 and results(tmp_path)["status"].tolist() == ["ok"] * 3


def test_max_retries_caps_resubmissions_in_one_run(cli, server, write_job, tmp_path):
    path = write_job(chat_job(["FLAKY"], mode="batch", limits={"max_retries": 2}))
    faults(server, "500:match=FLAKY")
    done = cli("run", str(path), "--wait", "--poll", "0")
    assert done.exit_code == 1, done.output
    assert results(tmp_path).loc["p0", "attempts"] == 3  # the first submission and two more
    assert len(uploads(server)) == 3


def test_open_batches_hold_the_budget_across_runs(cli, server, write_job, tmp_path):
    job = chat_job(["one", "two"], mode="batch", budget_usd=0.0008)  # worst cases: $0.000601 and $0.00051
    job["defaults"]["max_tokens"] = 1000
    job["tasks"].append(
        {"type": "chat", "name": "big", "model": "gpt-4o", "max_tokens": 100, "items": [{"id": "b", "prompt": "x"}]}
    )
    path = write_job(job)
    server.config.batch_delay = 30
    assert cli("run", str(path)).exit_code == EXIT_SUBMITTED
    assert cli("run", str(path)).exit_code == EXIT_SUBMITTED  # the first file is still open: its hold stands
    assert len(uploads(server)) == 1


def test_items_sent_online_spend_what_the_batch_files_left_of_the_budget(cli, server, write_job, tmp_path):
    job = chat_job(["one", "two"], mode="batch", budget_usd=0.0008)  # the chat file holds $0.000601
    job["defaults"]["max_tokens"] = 1000
    job["tasks"].append({"type": "speech", "name": "say", "model": "tts-1", "items": [{"id": "s", "text": "x" * 20}]})
    path = write_job(job)  # the speech item costs $0.0003 online: more than is left
    first = cli("run", str(path))
    assert first.exit_code == EXIT_SUBMITTED, first.output
    assert [s.path for s in server.seen if "audio" in s.path] == []
    assert "budget" in first.output


# Regressions from a second attack on batch mode.


def _ended(server: MockServer) -> Any:
    """The one batch, ended now (its files written) but not yet collected."""
    [batch] = server.batch.batches.values()
    batch.created -= 10**6
    server.batch.describe(batch)
    return batch


def test_an_output_file_the_provider_no_longer_has_is_given_up_and_resubmitted(cli, server, write_job, tmp_path):
    path = write_job(chat_job(["one"], mode="batch"))
    server.config.batch_delay = 10**5
    assert cli("run", str(path)).exit_code == EXIT_SUBMITTED
    del server.batch.files[_ended(server).output_file_id]
    lost = cli("run", str(path))
    assert lost.exit_code == EXIT_SUBMITTED and "no longer has" in lost.output
    assert len(server.batch.batches) == 2
    server.config.batch_delay = 0
    assert cli("run", str(path)).exit_code == 0


def test_an_output_file_of_which_no_line_can_be_read_is_not_collected(cli, server, write_job, tmp_path):
    path = write_job(chat_job(["one", "two"], mode="batch"))
    server.config.batch_delay = 10**5
    assert cli("run", str(path)).exit_code == EXIT_SUBMITTED
    stored = server.batch.files[_ended(server).output_file_id]
    good, stored.data = stored.data, b"<html>502 Bad Gateway</html>"
    broken = cli("run", str(path))
    assert broken.exit_code == EXIT_SUBMITTED and "not one line of its output file can be read" in broken.output
    assert len(uploads(server)) == 1 and items_in_store(tmp_path) == {"p0": "submitted", "p1": "submitted"}
    stored.data = good
    assert cli("run", str(path)).exit_code == 0 and len(uploads(server)) == 1  # paid once


def test_an_error_line_never_undoes_an_answer_for_the_same_item(cli, server, write_job, tmp_path):
    path = write_job(chat_job(["one"], mode="batch"))
    server.config.batch_delay = 10**5
    assert cli("run", str(path)).exit_code == EXIT_SUBMITTED
    batch = _ended(server)
    error = {"status_code": 400, "body": {"error": {"message": "late refusal", "code": "x"}}}
    line = json.dumps({"id": "r", "custom_id": "p0", "response": error, "error": None}).encode() + b"\n"
    server.batch.files["file-extra"] = replace(server.batch.files[batch.output_file_id], id="file-extra", data=line)
    batch.error_file_id = "file-extra"
    assert cli("run", str(path)).exit_code == 0
    assert results(tmp_path).loc["p0", "status"] == "ok"


def test_a_creation_answered_without_an_id_is_found_by_its_intent_not_made_again(cli, server, write_job, monkeypatch):
    path = write_job(chat_job(["one"], mode="batch"))
    describe = server.batch.describe

    def without_id(batch: Any, advance: bool = True) -> dict[str, Any]:
        answer = describe(batch, advance)
        return answer if advance else {k: v for k, v in answer.items() if k != "id"}

    monkeypatch.setattr(server.batch, "describe", without_id)
    first = cli("run", str(path))
    assert first.exit_code == EXIT_SUBMITTED and "without an id" in first.output
    assert cli("run", str(path)).exit_code == 0 and len(server.batch.batches) == 1


def test_odd_batch_objects_never_crash_a_run(cli, server, write_job, monkeypatch):
    path = write_job(chat_job(["one"], mode="batch"))
    server.config.batch_delay = 10**5
    assert cli("run", str(path)).exit_code == EXIT_SUBMITTED
    describe = server.batch.describe
    odd = {"metadata": "oops", "request_counts": [1, 2], "errors": [], "expires_at": "tomorrow"}
    monkeypatch.setattr(server.batch, "describe", lambda batch, advance=True: {**describe(batch, advance), **odd})
    result = cli("run", str(path))
    assert result.exit_code == EXIT_SUBMITTED, result.output
    assert cli("batches", str(path)).exit_code == 0


def test_wait_stops_when_the_key_is_refused(cli, server, write_job, monkeypatch):
    path = write_job(chat_job(["one"], mode="batch"))
    server.config.batch_delay = 10**5
    assert cli("run", str(path)).exit_code == EXIT_SUBMITTED
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key-000000000000")
    refused = cli("run", str(path), "--wait", "--poll", "0")
    assert refused.exit_code == EXIT_SUBMITTED and "refused the key" in refused.output


def test_retry_failed_in_batch_mode_ends(cli, server, write_job, tmp_path):
    path = write_job(chat_job(["BAD one"], mode="batch"))
    faults(server, "400:match=BAD")
    assert cli("run", str(path)).exit_code == EXIT_SUBMITTED
    assert cli("run", str(path)).exit_code == 1
    assert cli("run", str(path), "--retry-failed").exit_code == EXIT_SUBMITTED  # sent again, as asked
    assert cli("run", str(path), "--retry-failed").exit_code == 1  # collected: not sent again by the same run


def test_the_budget_holds_a_file_at_its_listed_batch_price(cli, server, write_job, tmp_path):
    job = chat_job(["one"], mode="batch", budget_usd=0.000015)
    job["defaults"]["max_tokens"] = 10
    job["pricing"] = {"gpt-4o-mini": {"input": 1, "output": 1, "batch_input": 1, "batch_output": 1}}
    first = cli("run", str(write_job(job)))  # worst case ~$0.000019 at full price; half of it would fit
    assert first.exit_code == 3 and "budget" in first.output and not uploads(server)
