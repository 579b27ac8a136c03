"""Pay once: each endpoint's answers are kept apart and come back, and items keep their answers
when a data file's rows move, end to end through the CLI and the test server."""

from __future__ import annotations

import csv
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SECRET, chat_job, faults

from batchgpt.mock import Config, MockServer


@pytest.fixture
def other() -> Iterator[MockServer]:
    """A second endpoint: the real API, say, beside a rehearsal on `server`."""
    mock = MockServer(Config(api_key=SECRET)).start()
    yield mock
    mock.stop()


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def sent(server: MockServer) -> Counter[str]:
    return Counter(seen.body["messages"][-1]["content"] for seen in server.seen)


def write_csv(path: Path, records: list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)


def csv_job(**task: object) -> dict[str, object]:
    return {
        "name": "t",
        "defaults": {"model": "gpt-4o-mini"},
        "limits": {"concurrency": 8, "timeout": 5, "max_retries": 2},
        "tasks": [{"type": "chat", "template": "Say {word}", "items_from": "data.csv", **task}],
    }


def test_a_run_elsewhere_keeps_each_endpoints_answers_and_going_back_sends_nothing(
    cli, server, other, write_job, tmp_path
):
    path = write_job(chat_job(["one", "two", "three"]))
    a = cli("run", str(path), "--base-url", other.base_url, base_url=False)  # the real endpoint, paid for
    assert a.exit_code == 0, a.output
    assert len(other.seen) == 3
    faults(server, "400:1,match=two")  # the rehearsal answers differently: one item fails there
    b = cli("run", str(path))
    assert b.exit_code != 0 and len(server.seen) == 3
    assert [r["status"] for r in rows(tmp_path / "out" / "t.csv")] == ["ok", "error", "ok"]  # B's answers
    back = cli("run", str(path), "--base-url", other.base_url, base_url=False)
    assert back.exit_code == 0, back.output
    assert len(other.seen) == 3  # nothing A answered is bought again
    assert [r["status"] for r in rows(tmp_path / "out" / "t.csv")] == ["ok", "ok", "ok"]  # A's answers, whole
    assert "3 answered by earlier runs" in back.output

    # export names either endpoint; runs says which endpoint each run used
    exported = cli("export", str(path), "--base-url", server.base_url, "--out", str(tmp_path / "b.csv"))
    assert exported.exit_code == 0, exported.output
    assert [r["status"] for r in rows(tmp_path / "b.csv")] == ["ok", "error", "ok"]
    default = cli("export", str(path), "--out", str(tmp_path / "a.csv"))
    assert [r["status"] for r in rows(tmp_path / "a.csv")] == ["ok", "ok", "ok"]
    nowhere = cli("export", str(path), "--base-url", "http://127.0.0.1:9/v1")
    assert nowhere.exit_code != 0 and "no run of 't' sent to http://127.0.0.1:9/v1" in nowhere.output
    assert default.exit_code == 0
    listing = cli("runs", str(path))
    assert listing.stdout.count(other.base_url) == 2 and listing.stdout.count(server.base_url) == 1


def test_a_rehearsal_never_stands_in_for_the_real_endpoint(cli, server, other, write_job, tmp_path):
    path = write_job(chat_job(["one", "two"]))
    assert cli("run", str(path)).exit_code == 0  # the rehearsal first
    real = cli("run", str(path), "--base-url", other.base_url, base_url=False)
    assert real.exit_code == 0 and len(other.seen) == 2


def test_inserting_a_row_in_a_data_file_without_ids_sends_that_row_alone(cli, server, write_job, tmp_path):
    words = [{"word": f"w{n}"} for n in range(100)]
    write_csv(tmp_path / "data.csv", words)
    path = write_job(csv_job())
    assert cli("run", str(path)).exit_code == 0
    assert len(server.seen) == 100
    write_csv(tmp_path / "data.csv", [words[0], {"word": "new"}, *words[1:]])
    again = cli("run", str(path))
    assert again.exit_code == 0, again.output
    assert sent(server)["Say new"] == 1 and len(server.seen) == 101
    out = rows(tmp_path / "out" / "t.csv")
    assert [r["output"] for r in out] == [f"Echo: Say {w['word']}" for w in [words[0], {"word": "new"}, *words[1:]]]
    assert all(r["status"] == "ok" for r in out)


def test_deleting_and_reordering_rows_sends_nothing(cli, server, write_job, tmp_path):
    words = [{"word": f"w{n}"} for n in range(30)]
    write_csv(tmp_path / "data.csv", words)
    path = write_job(csv_job())
    assert cli("run", str(path)).exit_code == 0
    shuffled = words[::-1][:-3]  # reversed, and the first three (now last) gone
    write_csv(tmp_path / "data.csv", shuffled)
    again = cli("run", str(path))
    assert again.exit_code == 0, again.output
    assert len(server.seen) == 30
    assert [r["output"] for r in rows(tmp_path / "out" / "t.csv")] == [f"Echo: Say {w['word']}" for w in shuffled]


def test_identical_rows_keep_one_answer_each(cli, server, write_job, tmp_path):
    write_csv(tmp_path / "data.csv", [{"word": "same"}, {"word": "other"}, {"word": "same"}])
    path = write_job(csv_job())
    assert cli("run", str(path)).exit_code == 0
    assert sent(server)["Say same"] == 2
    write_csv(tmp_path / "data.csv", [{"word": "new"}, {"word": "same"}, {"word": "same"}, {"word": "other"}])
    assert cli("run", str(path)).exit_code == 0
    assert sent(server) == Counter({"Say same": 2, "Say other": 1, "Say new": 1})
    out = rows(tmp_path / "out" / "t.csv")
    assert [r["status"] for r in out] == ["ok"] * 4
    db = sqlite3.connect(tmp_path / ".batchgpt" / "state.db")
    try:  # two answers for the two identical rows, none kept aside or lost
        assert db.execute("SELECT COUNT(*) FROM items WHERE output = 'Echo: Say same'").fetchone()[0] == 2
        assert db.execute("SELECT COUNT(*) FROM answers").fetchone()[0] == 0
    finally:
        db.close()


@pytest.mark.parametrize("setting", [{"id_column": "sku"}, {"id": "{sku}-{lang}"}])
def test_a_key_column_names_items_and_only_changed_rows_are_sent(cli, server, write_job, tmp_path, setting):
    stock = [{"sku": f"s{n}", "lang": "fr", "word": f"w{n}"} for n in range(5)]
    write_csv(tmp_path / "data.csv", stock)
    path = write_job(csv_job(**setting))
    assert cli("run", str(path)).exit_code == 0
    changed = [stock[4], {**stock[2], "word": "changed"}, stock[0], stock[1], stock[3]]
    write_csv(tmp_path / "data.csv", changed)
    assert cli("run", str(path)).exit_code == 0
    assert len(server.seen) == 6 and sent(server)["Say changed"] == 1
    suffix = "-fr" if "id" in setting else ""
    assert [r["id"] for r in rows(tmp_path / "out" / "t.csv")] == [f"{r['sku']}{suffix}" for r in changed]


def test_an_edited_item_that_is_changed_back_reuses_its_first_answer(cli, server, write_job, tmp_path):
    path = write_job(chat_job(["first", "two"]))
    assert cli("run", str(path)).exit_code == 0
    path = write_job(chat_job(["edited", "two"]))
    assert cli("run", str(path)).exit_code == 0
    path = write_job(chat_job(["first", "two"]))
    assert cli("run", str(path)).exit_code == 0
    assert sent(server) == Counter({"first": 1, "two": 1, "edited": 1})


def test_a_key_column_missing_from_a_row_is_an_error_at_its_line(cli, server, write_job, tmp_path):
    (tmp_path / "data.csv").write_text("sku,word\na,x\n,y\n", encoding="utf-8")
    path = write_job(csv_job(id_column="skew"))
    result = cli("run", str(path))
    assert result.exit_code == 2 and server.seen == []
    assert "field `skew` not in data.csv (did you mean `sku`?): 2 rows lack it" in result.output
    assert "(at /tasks/0/id_column)" in result.output
    path = write_job(csv_job(id_column="sku"))
    empty = cli("run", str(path))  # an empty cell is no value
    assert empty.exit_code == 2 and server.seen == []
    assert "field `sku` empty in 1 of 2 rows of data.csv, at line 3 (at /tasks/0/id_column)" in empty.output
    (tmp_path / "data.csv").write_text("sku,word\na,x\n ,y\n", encoding="utf-8")
    blank = cli("run", str(path))
    assert blank.exit_code == 2 and server.seen == []
    assert "data.csv:3: id: '{sku}' gives this item an empty id" in blank.output
    both = write_job(csv_job(id_column="sku", id="{sku}"))
    assert "set `id` (a template) or `id_column`, not both" in cli("run", str(both)).output


def test_a_rehearsals_media_never_overwrite_the_paid_ones(cli, server, other, write_job, tmp_path):
    job = {
        "name": "pics",
        "tasks": [{"type": "image", "model": "gpt-image-1", "items": [{"id": "cat", "prompt": "a cat"}]}],
    }
    path = write_job(job)
    assert cli("run", str(path), "--base-url", other.base_url, base_url=False).exit_code == 0
    paid = Path(rows(tmp_path / "out" / "pics.csv")[0]["output"])
    assert cli("run", str(path)).exit_code == 0  # the rehearsal: same item, same request, another endpoint
    rehearsed = Path(rows(tmp_path / "out" / "pics.csv")[0]["output"])
    job["tasks"][0]["items"][0]["prompt"] = "a dog"  # another request for the same item: its own file too
    write_job(job)
    assert cli("run", str(path)).exit_code == 0
    dog = Path(rows(tmp_path / "out" / "pics.csv")[0]["output"])
    assert len({paid, rehearsed, dog}) == 3 and all(p.is_file() for p in (paid, rehearsed, dog))
    back = cli("run", str(path), "--base-url", other.base_url, base_url=False)  # the cat at the real endpoint
    assert back.exit_code == 0 and len(other.seen) == 2  # the dog is new there


def _structured(prompts: list[str]) -> dict[str, object]:
    from test_structured import structured_job

    return structured_job(prompts)


def test_a_paid_refusal_is_not_bought_again_back_at_its_endpoint_or_after_an_undone_edit(
    cli, server, other, write_job, tmp_path
):
    faults(other, "refusal:match=REFUSE")  # a refusal is billed, and a plain rerun keeps it
    path = write_job(_structured(["REFUSE this", "fine"]))
    assert cli("run", str(path), "--base-url", other.base_url, base_url=False).exit_code == 1
    cli("run", str(path))
    assert cli("run", str(path), "--base-url", other.base_url, base_url=False).exit_code == 1
    assert len(other.seen) == 2
    write_job(_structured(["REFUSE that", "fine"]))
    cli("run", str(path), "--base-url", other.base_url, base_url=False)
    write_job(_structured(["REFUSE this", "fine"]))
    cli("run", str(path), "--base-url", other.base_url, base_url=False)
    assert sent(other) == Counter({"REFUSE this": 1, "fine": 1, "REFUSE that": 1})
    again = cli("run", str(path), "--base-url", other.base_url, base_url=False)
    assert again.exit_code == 1 and len(other.seen) == 3
    retried = cli("run", str(path), "--base-url", other.base_url, "--retry-failed", base_url=False)
    assert retried.exit_code == 1 and sent(other)["REFUSE this"] == 2  # asked for: sent again


def conversations(chains: list[list[str]]) -> dict[str, object]:
    job = chat_job([])
    job["tasks"] = [{"type": "conversation", "system": "S", "items": [{"turns": turns} for turns in chains]}]
    return job


def test_a_conversation_inserted_above_others_sends_only_its_own_turns(cli, server, write_job, tmp_path):
    path = write_job(conversations([["a", "b", "c"], ["x", "y"]]))
    assert cli("run", str(path)).exit_code == 0
    first = rows(tmp_path / "out" / "t.csv")
    faults(server, "split-emoji")  # the same request is answered differently now, as the real API does
    write_job(conversations([["a", "z"], ["a", "b", "c"], ["x", "y"]]))
    assert cli("run", str(path)).exit_code == 0
    assert [s.body["messages"][-1]["content"] for s in server.seen[5:]] == ["a", "z"]
    out = rows(tmp_path / "out" / "t.csv")
    assert [r["output"] for r in out[2:]] == [r["output"] for r in first]  # each chain kept its own answers
    assert len({r["id"].partition("#")[0] for r in out}) == 3


def test_an_old_run_exported_or_reported_after_a_run_elsewhere_is_its_own(cli, server, other, write_job, tmp_path):
    path = write_job(chat_job(["one", "two", "three"]))
    assert cli("run", str(path), "--base-url", other.base_url, base_url=False).exit_code == 0
    faults(server, "400:1,match=two")
    cli("run", str(path))
    state = str(tmp_path / ".batchgpt")
    assert cli("export", "1", "--state", state, "--out", str(tmp_path / "r1.csv")).exit_code == 0
    assert [r["status"] for r in rows(tmp_path / "r1.csv")] == ["ok", "ok", "ok"]
    page = tmp_path / "r1.html"
    assert cli("report", "1", "--state", state, "--html", str(page)).exit_code == 0
    text = page.read_text(encoding="utf-8")
    assert "HTTP 400" not in text and "taken its items over" not in text
    exported = cli("export", str(path), "--base-url", other.base_url)  # default files: beside, not over, the job's
    assert exported.exit_code == 0, exported.output
    host = other.base_url.partition("://")[2].partition("/")[0].replace(":", "_")
    beside = tmp_path / "out" / f"t@{host}.csv"
    assert [r["status"] for r in rows(beside)] == ["ok", "ok", "ok"]
    assert "HTTP 400" not in (tmp_path / "out" / f"t-report@{host}.html").read_text(encoding="utf-8")
    assert [r["status"] for r in rows(tmp_path / "out" / "t.csv")] == ["ok", "error", "ok"]  # the latest run's, kept


def test_the_lookup_by_request_is_one_index_seek_whatever_the_number_of_identical_rows(tmp_path):
    """Identical rows share a body: a lookup that filtered them one by one made a rerun quadratic."""
    from batchgpt.store import Store

    store = Store(tmp_path)
    for table, where in (
        ("items", "job = ? AND hash = ? AND endpoint = ? AND status = 'ok' AND run_id < ? AND (turn IS NULL) = ?"),
        ("answers", "job = ? AND hash = ? AND endpoint = ? AND status = 'ok'"),
    ):
        plan = " ".join(
            str(row[-1])
            for row in store._db.execute(
                f"EXPLAIN QUERY PLAN SELECT rowid FROM {table} WHERE {where} LIMIT 1",
                ("j", "h", "e", 5, 1)[: where.count("?")],
            )
        )
        assert "INDEX" in plan and "hash=? AND endpoint=?" in plan, plan
        assert table == "answers" or "run_id<?" in plan, plan
    store.close()
