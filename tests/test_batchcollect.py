"""Collecting an ended batch pays for nothing twice: lines are matched to the batch's items by
custom_id as the store holds them, never counted, and the budget holds what was submitted.

Each test runs the CLI against the mock server with one of its Batch API faults (what relays in
front of the API do) and counts what the server was sent.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest
from conftest import chat_job
from test_batches import items_in_store, results, uploads

from batchgpt import jobs
from batchgpt.batch import EXIT_SUBMITTED
from batchgpt.batch.files import LineOutcome
from batchgpt.batch.plan import batch_worst
from batchgpt.batch.read import Tally
from batchgpt.estimate import Estimator
from batchgpt.jobs import load
from batchgpt.mock import MockServer
from batchgpt.pricing import Pricing
from batchgpt.records import Failure
from batchgpt.store import WaitingItem


def sent(server: MockServer) -> Counter[str]:
    """How many times each item was submitted, over every batch file the server received."""
    return Counter(line["custom_id"] for lines in uploads(server) for line in lines)


def test_an_output_one_line_short_writes_the_others_and_sends_that_one_again(cli, server, write_job, tmp_path):
    path = write_job(chat_job(["one", "two", "three"], mode="batch"))
    server.batch.faults.missing = 1  # p2's line is left out; the batch says 3 completed
    assert cli("run", str(path)).exit_code == EXIT_SUBMITTED
    [first] = server.batch.batches.values()
    second = cli("run", str(path))
    assert second.exit_code == EXIT_SUBMITTED, second.output
    assert "its files hold no line for 1 item of its 3 requests: 1 item submitted again" in second.output
    assert items_in_store(tmp_path) == {"p0": "ok", "p1": "ok", "p2": "submitted"}
    assert [line["custom_id"] for line in uploads(server)[-1]] == ["p2"]
    server.batch.faults.missing = 0
    del server.batch.files[first.output_file_id]  # the provider lets it go: it was collected already
    done = cli("run", str(path))
    assert done.exit_code == 0, done.output
    assert results(tmp_path)["output"].tolist() == ["Echo: one", "Echo: two", "Echo: three"]
    assert sent(server) == {"p0": 1, "p1": 1, "p2": 2}


def test_an_item_no_file_mentions_twice_is_an_error_not_sent_a_third_time(cli, server, write_job, tmp_path):
    path = write_job(chat_job(["one", "two"], mode="batch"))
    server.batch.faults.missing = 1
    assert cli("run", str(path)).exit_code == EXIT_SUBMITTED
    assert cli("run", str(path)).exit_code == EXIT_SUBMITTED  # p1 sent again, and left out again
    done = cli("run", str(path))
    assert done.exit_code == 1, done.output
    frame = results(tmp_path)
    assert frame["status"].to_dict() == {"p0": "ok", "p1": "error"}
    assert "the files of the 2 batches it was in held no line for it" in frame.loc["p1", "error"]
    assert "--retry-failed" in done.output and sent(server) == {"p0": 1, "p1": 2}


def test_a_garbled_line_before_the_items_whole_one_is_not_paid_for_again(cli, server, write_job, tmp_path):
    path = write_job(chat_job(["one", "two"], mode="batch"))
    server.batch.faults.garbled = 1  # p0's line twice: first in no documented shape, then whole
    assert cli("run", str(path)).exit_code == EXIT_SUBMITTED
    done = cli("run", str(path))
    assert sent(server) == {"p0": 1, "p1": 1}  # p0's whole answer kept: not submitted again
    assert done.exit_code == 0, done.output
    assert results(tmp_path)["output"].tolist() == ["Echo: one", "Echo: two"]


def test_duplicate_and_foreign_lines_are_ignored_and_counts_come_from_the_files(cli, server, write_job, tmp_path):
    job = chat_job(["one", "two"], mode="batch")
    job["tasks"].append({"type": "chat", "name": "big", "model": "gpt-4o", "items": [{"id": "b", "prompt": "x"}]})
    path = write_job(job)
    faults = server.batch.faults
    faults.duplicate, faults.foreign, faults.no_counts = 1, ("b", "zz"), True  # b is the other batch's item
    assert cli("run", str(path)).exit_code == EXIT_SUBMITTED
    done = cli("run", str(path))
    assert done.exit_code == 0, done.output
    assert results(tmp_path)["output"].to_dict() == {"p0": "Echo: one", "p1": "Echo: two", "b": "Echo: x"}
    assert "ignored 1 line for an item that had its line; 2 lines for no item of the batch" in done.output
    assert "completed: 2 completed, 0 failed of 2; collected" in done.output  # not the 0 of no request_counts
    assert sent(server) == {"p0": 1, "p1": 1, "b": 1}
    listed = cli("batches", str(path), "--all").output  # requests, completed, failed: the files' counts
    assert re.findall(r"completed \(collected\)\s+(\d+)\s+(\d+)\s+(\d+)", listed) == [("2", "2", "0"), ("1", "1", "0")]


def _worst(path) -> float:
    """The worst case of the job's one request at the batch price: what a budget holds for it."""
    [request] = jobs.requests(load(path))
    worst = batch_worst(Estimator(Pricing()), request)
    assert worst is not None
    return worst


def test_a_batch_answered_for_a_request_edited_since_spends_its_cost(cli, server, write_job, tmp_path):
    job = chat_job(["one"], mode="batch")
    job["defaults"]["max_tokens"] = 100
    path = write_job(job)
    job["budget_usd"] = _worst(path)  # one file's worst case, exactly
    write_job(job)
    assert cli("run", str(path)).exit_code == EXIT_SUBMITTED
    job["tasks"][0]["items"][0]["prompt"] = "two"  # the same worst case, another request
    write_job(job)
    edited = cli("run", str(path))
    # the answer to "one" was paid: the budget has less than the new file's worst case left
    assert sent(server) == {"p0": 1}
    assert edited.exit_code == 3 and "budget" in edited.output, edited.output


def test_open_batches_submitted_without_a_budget_hold_a_budget_set_later(cli, server, write_job, tmp_path):
    job = chat_job(["one"], mode="batch")
    server.config.batch_delay = 10**5
    path = write_job(job)
    assert cli("run", str(path)).exit_code == EXIT_SUBMITTED
    job["budget_usd"] = 1.0
    job["tasks"][0]["items"].append({"id": "p1", "prompt": "two"})
    write_job(job)
    held = cli("run", str(path))
    assert held.exit_code == EXIT_SUBMITTED, held.output
    assert "the budget cannot be kept while batch" in held.output and len(uploads(server)) == 1
    server.config.batch_delay = 0
    assert cli("run", str(path)).exit_code == EXIT_SUBMITTED and sent(server) == {"p0": 1, "p1": 1}
    assert cli("run", str(path)).exit_code == 0


def test_a_cancel_never_shows_an_answer_to_an_items_old_request(cli, server, write_job, tmp_path):
    job = chat_job(["one"], mode="batch")
    path = write_job(job)
    assert cli("run", str(path)).exit_code == EXIT_SUBMITTED
    job["tasks"][0]["items"][0]["prompt"] = "ONE"
    write_job(job)
    cancelled = cli("cancel", str(path), "--poll", "0")
    assert cancelled.exit_code == 3, cancelled.output
    assert results(tmp_path)["status"].tolist() == ["skipped"]


def _item(ident: str) -> WaitingItem:
    return WaitingItem(ident, 1, "h", 1, 0, "chat", "chat", "m")


def test_the_rule_an_items_first_answer_stands_and_only_the_batchs_items_are_answered() -> None:
    tally = Tally({"a": _item("a"), "b": _item("b"), "c": _item("c")})
    error = Failure("http", "busy", 500)
    assert tally.match(LineOutcome("a", failure=error)) == _item("a")
    tally.recorded(_item("a"), answered=False)
    assert tally.match(LineOutcome("a", failure=error)) is None  # the same error again
    assert tally.match(LineOutcome("a", body={})) == _item("a")  # an answer beats an error
    tally.recorded(_item("a"), answered=True)
    assert tally.match(LineOutcome("a", body={})) is None  # the first answer stands
    assert tally.match(LineOutcome("a", failure=error)) is None  # and no error undoes it
    assert tally.match(LineOutcome("zz", body={})) is None
    assert tally.match(LineOutcome("b", body={})) == _item("b")
    tally.recorded(_item("b"), answered=True)
    assert (tally.duplicate, tally.foreign, tally.extra_answers) == (3, 1, 2)
    assert [item.id for item in tally.missing()] == ["c"]
    assert tally.counts(3) == {"total": 3, "completed": 2, "failed": 0}


def test_an_edit_undone_between_batches_reuses_the_first_answer(cli, server, write_job, tmp_path):
    job = chat_job(["one"], mode="batch")
    path = write_job(job)
    assert cli("run", str(path)).exit_code == EXIT_SUBMITTED
    assert cli("run", str(path)).exit_code == 0  # "one" collected
    job["tasks"][0]["items"][0]["prompt"] = "two"
    write_job(job)
    assert cli("run", str(path)).exit_code == EXIT_SUBMITTED  # "two" submitted; "one" kept aside
    job["tasks"][0]["items"][0]["prompt"] = "one"  # undone while "two" is still in its batch
    write_job(job)
    back = cli("run", str(path))  # collects "two", then finds "one" where it was kept
    assert back.exit_code == 0, back.output
    bodies = Counter(line["body"]["messages"][-1]["content"] for lines in uploads(server) for line in lines)
    assert bodies == {"one": 1, "two": 1}
    assert results(tmp_path)["output"].tolist() == ["Echo: one"]


def test_a_batch_collected_after_the_job_moved_to_another_endpoint_counts_in_the_runs_spend(
    cli, server, write_job, tmp_path
):
    from conftest import SECRET

    from batchgpt.mock import Config, MockServer

    other = MockServer(Config(api_key=SECRET)).start()
    try:
        path = write_job(chat_job(["one", "two"], mode="batch"))
        assert cli("run", str(path), "--base-url", other.base_url, base_url=False).exit_code == EXIT_SUBMITTED
        moved = cli("run", str(path))  # the job now goes to `server`: the batch is collected where it was sent
        assert moved.exit_code == EXIT_SUBMITTED, moved.output
    finally:
        other.stop()
    import sqlite3

    db = sqlite3.connect(tmp_path / ".batchgpt" / "state.db")
    spent = db.execute("SELECT spent_usd FROM runs ORDER BY id").fetchall()
    billed = db.execute("SELECT SUM(cost_usd) FROM answers").fetchone()[0]
    assert billed > 0 and spent[1][0] == pytest.approx(billed)  # the answers it collected, though set aside


# ----------------------------------------------------------------------------- lines and files past their caps


def _errors(tmp_path) -> dict[str, str]:
    import sqlite3

    db = sqlite3.connect(tmp_path / ".batchgpt" / "state.db")
    try:
        return dict(db.execute("SELECT id, error FROM items WHERE status = 'error'"))
    finally:
        db.close()


def test_a_line_past_the_answer_cap_is_an_error_row_that_stays_spent(cli, server, write_job, tmp_path):
    job = chat_job(["x" * 20_000], mode="batch", defaults={"model": "gpt-4o-mini", "max_tokens": 4000})
    job["limits"]["max_answer_mb"] = 0.01  # 10 KiB: the echo of a 20,000-character prompt is past it
    path = write_job(job)
    job["budget_usd"] = _worst(path)  # its file's worst case, exactly
    write_job(job)
    assert cli("run", str(path)).exit_code == EXIT_SUBMITTED
    job["tasks"][0]["items"].append({"id": "p1", "prompt": "two", "max_tokens": 1})
    write_job(job)
    collected = cli("run", str(path))
    # the line was likely billed: its worst case stays spent, so nothing is left for "two"
    assert collected.exit_code == 3 and "budget" in collected.output, collected.output
    assert items_in_store(tmp_path)["p0"] == "error" and sent(server) == {"p0": 1}
    error = _errors(tmp_path)["p0"]
    assert "its line in the batch's file is larger than limits.max_answer_mb (0.01 MiB): not read" in error
    assert "Traceback" not in collected.output


def test_a_file_past_its_cap_keeps_the_lines_before_it_and_sends_nothing_again(cli, server, write_job, tmp_path):
    job = chat_job(["one", "two", "three"], mode="batch")
    job["limits"]["max_batch_file_mb"] = 0.001  # 1,048 bytes: the first line of the output file, not the second
    path = write_job(job)
    assert cli("run", str(path)).exit_code == EXIT_SUBMITTED
    collected = cli("run", str(path))
    assert collected.exit_code == 1, collected.output
    assert items_in_store(tmp_path) == {"p0": "ok", "p1": "error", "p2": "error"}
    assert "its output file is larger than limits.max_batch_file_mb (0.001 MiB)" in collected.output
    assert "2 items no line read spoke of are errors (likely billed)" in collected.output
    assert all("billed (counted at its worst case)" in e for e in _errors(tmp_path).values())
    assert cli("run", str(path)).exit_code == 1 and sent(server) == {"p0": 1, "p1": 1, "p2": 1}  # not bought twice


def test_a_line_too_large_that_names_no_item_is_told_apart_from_a_foreign_one() -> None:
    from batchgpt.batch.files import read_line

    tally = Tally({"a": _item("a"), "b": _item("b")})
    nameless = read_line(b'{"custom_id": null, "batchgpt_too_large": "larger than limits.max_answer_mb (1 MiB)"}')
    named = read_line(b'{"custom_id": "a", "batchgpt_too_large": "larger than limits.max_answer_mb (1 MiB)"}')
    assert isinstance(nameless, LineOutcome) and nameless.too_large and nameless.custom_id == ""
    assert isinstance(named, LineOutcome) and named.failure is not None and named.failure.cause == "oversized"
    assert tally.match(nameless) is None and tally.match(named) == _item("a")
    assert (tally.unnamed, tally.too_large, tally.foreign, tally.extra_answers) == (1, 1, 0, 0)
