"""End to end: the real CLI against servers that misbehave: rate limits, echoed keys, redirects,
answers no real API gives."""

from __future__ import annotations

import json

import pytest
from conftest import SECRET, chat_job, faults, store_dump
from readback import read_results


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
