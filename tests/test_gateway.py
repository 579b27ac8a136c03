"""Batchgpt behind a gateway: what LiteLLM's proxy changes in what it relays, held with the mock.

LiteLLM answers an empty quota as type `throttling_error`, code "429", keeping OpenAI's message
(the mock's `quota-relayed` fault answers so).
"""

from __future__ import annotations

import csv

from conftest import chat_job, faults


def test_an_empty_quota_as_a_gateway_relays_it_stops_the_run(cli, server, write_job, tmp_path):
    """LiteLLM answers an empty quota as type throttling_error, code "429", keeping OpenAI's message
    (the mock's `quota-relayed`): without the message read, the run took it for a rate limit and
    waited (and asked again) until its patience ran out."""
    faults(server, "quota-relayed:match=QUOTA")
    prompts = ["one", "two QUOTA", "three", "four"]
    result = cli("run", str(write_job(chat_job(prompts, limits={"concurrency": 1, "patience": 5}))))
    assert result.exit_code == 3, result.output
    assert "out of quota" in result.stderr
    assert "HTTP 429 429" not in result.stderr  # a code that only repeats the status is not shown
    with (tmp_path / "out" / "t.csv").open(encoding="utf-8") as file:
        got = list(csv.DictReader(file))
    assert [r["status"] for r in got] == ["ok", "error", "skipped", "skipped"]
    assert len(server.seen) == 2  # nothing after the quota answer, and it is not asked again
