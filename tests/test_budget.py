"""The budget's invariant, alone and in a real run."""

from __future__ import annotations

import csv
import json

from conftest import chat_job, faults
from test_vision import png

from batchgpt.budget import Budget


def test_reservations_never_pass_the_limit():
    budget = Budget(1.0)
    assert budget.reserve(0.4) and budget.reserve(0.4)
    assert not budget.reserve(0.4)  # 1.2 could be spent
    budget.settle(0.4, 0.1)  # the answer was cheaper than its worst case
    assert budget.spent == 0.1 and budget.reserved == 0.4
    assert budget.reserve(0.4)
    assert budget.spent + budget.reserved <= budget.limit


def test_the_budget_stops_a_run_with_exit_3_and_the_spend_under_it(cli, server, write_job, tmp_path):
    job = chat_job([f"question number {i}" for i in range(30)], defaults={"model": "gpt-4o-mini", "max_tokens": 200})
    job["limits"] = {"concurrency": 4}
    # A worst case of ~$0.00012 a request and a real cost of ~$0.000006: the run goes on while the
    # spend leaves room for one more worst case, then stops.
    job["budget_usd"] = 0.00025
    result = cli("run", str(write_job(job)))
    assert result.exit_code == 3
    assert "budget of $0.00025 reached" in result.stderr and "spent" in result.stderr  # not rounded to $0.0003
    rows = list(csv.DictReader((tmp_path / "out" / "t.csv").open()))
    spent = sum(float(r["cost_usd"] or 0) for r in rows)
    assert 0.0002 - 0.00013 < spent <= 0.0002
    statuses = [r["status"] for r in rows]
    assert statuses.count("ok") >= 4 and statuses.count("skipped") > 0 and "error" not in statuses
    assert all("budget" in r["error"] for r in rows if r["status"] == "skipped")
    assert len(server.seen) == statuses.count("ok")


def test_the_budget_option_overrides_the_job(cli, server, write_job, tmp_path):
    job = chat_job(["a", "b", "c"], defaults={"model": "gpt-4o-mini", "max_tokens": 10}, budget_usd=0.00000001)
    assert cli("run", str(write_job(job))).exit_code == 3
    assert cli("run", str(write_job(job)), "--budget", "1").exit_code == 0


def test_a_budget_with_an_unpriced_model_sends_nothing(cli, server, write_job):
    job = chat_job(["a", "b"], defaults={"model": "mystery-model", "max_tokens": 10}, budget_usd=1)
    result = cli("run", str(write_job(job)))
    assert result.exit_code == 3 and "cannot be bounded" in result.stderr
    assert server.seen == []


def test_a_dry_run_sends_nothing_even_with_a_key(cli, server, write_job, tmp_path):
    job = write_job(chat_job(["a", "b"], defaults={"model": "gpt-4o-mini", "max_tokens": 10}))
    result = cli("run", str(job), "--dry-run", "--report", str(tmp_path / "estimate.parquet"))
    assert result.exit_code == 0, result.output
    assert "TOTAL" in result.stdout and "nothing sent" in result.stdout
    assert server.seen == [] and not (tmp_path / ".batchgpt").exists()
    import pandas as pd

    frame = pd.read_parquet(tmp_path / "estimate.parquet")
    assert frame["task"].tolist() == ["chat", "TOTAL"] and frame["requests"].tolist() == [2, 2]


def test_a_dry_run_needs_no_key(write_job, monkeypatch):
    from click.testing import CliRunner

    from batchgpt.cli import main

    job = write_job(chat_job(["a"]))
    result = CliRunner().invoke(main, ["estimate", str(job)])
    assert result.exit_code == 0 and "TOTAL" in result.stdout


def test_requests_in_flight_never_stop_a_run_their_settling_makes_room_for(cli, server, write_job, tmp_path):
    # 64 at once, each reserving ~$0.00012 at worst, against $0.002: only 16 worst cases fit beside
    # each other, but what is really spent leaves room for all 100. Nothing may be skipped.
    server.config.latency = 0.02
    job = chat_job(
        [f"question number {i}" for i in range(100)],
        defaults={"model": "gpt-4o-mini", "max_tokens": 200},
        limits={"concurrency": 64},
        budget_usd=0.002,
    )
    result = cli("run", str(write_job(job)))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((tmp_path / "out" / "t.csv").open()))
    assert {r["status"] for r in rows} == {"ok"}


def test_every_answer_asked_for_counts_against_the_budget(cli, server, write_job, tmp_path):
    job = chat_job(
        ["a", "b", "c"], defaults={"model": "gpt-4o-mini", "max_tokens": 100, "params": {"n": 10}}, budget_usd=0.0015
    )
    result = cli("run", str(write_job(job)))  # 10 answers of 100 tokens: $0.0006 at worst, two fit at once
    assert result.exit_code == 0  # and each settles for far less, so all three run
    rows = list(csv.DictReader((tmp_path / "out" / "t.csv").open()))
    assert sum(float(r["cost_usd"] or 0) for r in rows) <= 0.0015
    dry = cli("run", str(write_job(job)), "--dry-run")
    assert "3,000" in dry.stdout and "0.001804" in dry.stdout  # 10 answers of up to 100 tokens each, 3 times


def test_a_timed_out_attempt_is_counted_as_spent_before_its_retry(cli, server, write_job, tmp_path):
    # A timeout may have been billed in full with no usage to say so: the retry must fit beside it.
    faults(server, "hang:first=1")
    job = chat_job(
        ["a"],
        defaults={"model": "gpt-4o-mini", "max_tokens": 200},
        limits={"timeout": 0.5, "max_retries": 2},
        budget_usd=0.0002,
    )
    result = cli("run", str(write_job(job)))  # a worst case of ~$0.00012: a second one does not fit
    assert result.exit_code == 3 and "budget" in result.stderr
    [row] = list(csv.DictReader((tmp_path / "out" / "t.csv").open()))
    assert row["status"] == "skipped" and row["attempts"] == "1"


def test_when_nothing_is_in_flight_a_request_that_does_not_fit_never_waits():
    import asyncio
    import random

    async def go():
        budget = Budget(1.0)
        amounts = [random.Random(seed).uniform(0.01, 0.15) for seed in range(6)]
        for amount in amounts:
            assert await budget.hold(amount)
        for amount in amounts:  # float sums of these need not come back to exactly zero
            budget.settle(amount, 0.0)
        return await asyncio.wait_for(budget.hold(2.0), 1)

    assert asyncio.run(go()) is False


def test_every_way_a_server_reads_n_is_counted():
    from batchgpt.estimate import choices

    assert [choices({"n": n}) for n in (10, 10.0, "10", True, None, "ten")] == [10, 10, 10, 1, 1, 1]
    assert choices({"best_of": 3, "n": 2}) == 3


def test_answers_without_usage_are_charged_at_their_worst_case_and_the_budget_stops(cli, server, write_job, tmp_path):
    faults(server, "no-usage")  # as some local servers and relays answer: no usage, billed all the same
    job = chat_job([f"question number {i}" for i in range(30)], defaults={"model": "gpt-4o-mini", "max_tokens": 200})
    job["limits"] = {"concurrency": 4}
    job["budget_usd"] = 0.00025  # two worst cases of ~$0.00012
    result = cli("run", str(write_job(job)))
    assert result.exit_code == 3 and "budget of $0.00025" in result.stderr
    rows = list(csv.DictReader((tmp_path / "out" / "t.csv").open()))
    answered = [r for r in rows if r["status"] == "ok"]
    assert len(answered) == 2 == len(server.seen)
    assert all(float(r["cost_usd"]) > 0.0001 and "no usage" in r["details"] for r in answered)
    assert sum(float(r["cost_usd"]) for r in answered) <= 0.00025


def jsonl_job(path, lines: list[dict]) -> str:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return str(path)


def image_lines(n: int) -> list[dict]:
    """Batch API lines asking gpt-4o about a 1024x1024 image: 765 prompt tokens each, as billed."""
    url = png(1024, 1024)
    content = [{"type": "text", "text": "What is in this picture?"}, {"type": "image_url", "image_url": {"url": url}}]
    body = {"model": "gpt-4o", "max_tokens": 10, "messages": [{"role": "user", "content": content}]}
    return [{"custom_id": f"i{k}", "method": "POST", "url": "/v1/chat/completions", "body": body} for k in range(n)]


def test_image_inputs_count_against_the_budget(cli, server, tmp_path):
    # ~$0.002 an item, nearly all of it the image; without it the worst case was $0.00017
    job = jsonl_job(tmp_path / "pictures.jsonl", image_lines(6))
    result = cli("run", job, "--budget", "0.005")
    assert result.exit_code == 3 and "budget of $0.005 reached" in result.stderr
    rows = list(csv.DictReader((tmp_path / "out" / "pictures.csv").open()))
    assert sum(float(r["cost_usd"] or 0) for r in rows) <= 0.005
    assert any(r["status"] == "ok" for r in rows)


def test_an_answer_without_usage_keeps_its_details_beside_the_note():
    from batchgpt.budget import UNMETERED, unmetered

    assert unmetered(0.5, None) == (0.5, {"cost": UNMETERED})
    assert unmetered(0.5, {"revised_prompt": "x"}) == (0.5, {"revised_prompt": "x", "cost": UNMETERED})
    assert unmetered(0.5, [1, 2]) == (0.5, {"details": [1, 2], "cost": UNMETERED})
    assert unmetered(None, None) == (None, None)  # no price: its cost stays unknown, as it was
