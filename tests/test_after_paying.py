"""Nothing crashes after money is spent: a schema that cannot be checked is refused before anything
is sent, an answer too deep to check is an error row that keeps what it cost, a full disk says so
and keeps the answers, and a store from a newer batchgpt is left alone. Each run end to end, the
answers paid once: the mock server counts every request across a run and its rerun."""

from __future__ import annotations

import csv
import errno
import hashlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from conftest import chat_job, faults

from batchgpt.errors import EXIT_FAILED_ITEMS, EXIT_INVALID, EXIT_IO, EXIT_OK

# A tree: each node has a name and a child, or null. Valid in strict mode, and recursive.
TREE: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "child": {"anyOf": [{"$ref": "#"}, {"type": "null"}]}},
    "required": ["name", "child"],
    "additionalProperties": False,
}


def tree_job(prompts: list[str], schema: Any = TREE, **task: Any) -> dict[str, Any]:
    job = chat_job(prompts)
    job["tasks"][0].update({"schema": schema, **task})
    return job


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def depth(text: str) -> int:
    """How many nodes a tree answer nests (without json.loads, which stops near 1,000 levels)."""
    return text.count('"child": {') + 1


def job_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(job_lines(path), 1) if text in line)


def last_line_of(path: Path, text: str) -> int:
    return max(n for n, line in enumerate(job_lines(path), 1) if text in line)


# ------------------------------------------------------------------ schemas that cannot be checked


def test_a_ref_loop_is_a_problem_at_its_line_and_nothing_is_sent(cli, server, write_job):
    loop = {**TREE, "properties": {**TREE["properties"], "child": {"$ref": "#/$defs/a"}}}
    loop["$defs"] = {"a": {"$ref": "#/$defs/b"}, "b": {"anyOf": [{"$ref": "#/$defs/a"}, {"type": "null"}]}}
    path = write_job(tree_job(["x"], loop))
    result = cli("run", str(path))
    assert result.exit_code == EXIT_INVALID and "Traceback" not in result.output
    line = last_line_of(path, "$ref: '#/$defs/a'")  # in b, not in child
    assert f"{path}:{line}: schema: `$ref` '#/$defs/a' loops back to a schema it came from" in result.output
    assert "(at /tasks/0/schema/$defs/b/anyOf/0/$ref)" in result.output
    assert server.seen == []


def test_a_ref_loop_in_a_schema_file_is_reported_at_the_files_line(cli, server, write_job, tmp_path):
    loop = {**TREE, "properties": {"name": {"$ref": "#/properties/name"}, "child": {"type": "null"}}}
    (tmp_path / "tree.json").write_text(json.dumps(loop, indent=2))
    result = cli("run", str(write_job(tree_job(["x"], "tree.json"))))
    assert result.exit_code == EXIT_INVALID
    line = line_of(tmp_path / "tree.json", '"$ref": "#/properties/name"')
    assert f"{tmp_path / 'tree.json'}:{line}: schema: `$ref` '#/properties/name' loops back" in result.output
    assert server.seen == []


def test_a_ref_chain_too_deep_to_check_is_a_problem_and_nothing_is_sent(cli, server, write_job):
    chain = {f"n{i}": {"anyOf": [{"$ref": f"#/$defs/n{i + 1}"}, {"type": "null"}]} for i in range(300)}
    chain["n300"] = {"type": "string"}
    schema = {**TREE, "properties": {"name": {"$ref": "#/$defs/n0"}, "child": {"type": "null"}}, "$defs": chain}
    path = write_job(tree_job(["x"], schema))
    result = cli("run", str(path))
    assert result.exit_code == EXIT_INVALID and "Traceback" not in result.output
    line = line_of(path, "$ref: '#/$defs/n0'")
    assert f"{path}:{line}: schema: " in result.output and "schemas in a row to one value" in result.output
    assert "(at /tasks/0/schema/properties/name/$ref)" in result.output
    assert server.seen == []


@pytest.mark.parametrize(
    ("ref", "says"),
    [
        ("#/$defs/missing", "points to nothing in this schema"),
        ("https://example.com/tree.json", "only `$ref`s inside this schema"),
        ("#/required", "points to no schema"),
    ],
)
def test_a_ref_that_cannot_be_followed_is_a_problem_not_a_crash_after_paying(cli, server, write_job, ref, says):
    schema = {**TREE, "properties": {**TREE["properties"], "child": {"anyOf": [{"$ref": ref}, {"type": "null"}]}}}
    result = cli("run", str(write_job(tree_job(["x"], schema))))
    assert result.exit_code == EXIT_INVALID and says in result.output and "Traceback" not in result.output
    assert server.seen == []


@pytest.mark.parametrize("levels", [200, 5000])  # json.load reads the first, and stops short of the second
def test_an_items_schema_file_nested_past_all_sense_is_a_problem_not_a_crash(cli, server, write_job, tmp_path, levels):
    (tmp_path / "deep.json").write_text('{"type": "object", "properties": {"a": ' * levels + "{}" + "}}" * levels)
    job = tree_job(["x"])
    job["tasks"][0]["items"][0]["schema"] = "deep.json"
    result = cli("run", str(write_job(job)))
    assert result.exit_code == EXIT_INVALID and "Traceback" not in result.output
    assert "nested more than 100 levels deep" in result.output
    assert server.seen == []


# ------------------------------------------------------------------ answers deep to a recursive schema


def test_an_answer_nested_hundreds_of_levels_deep_is_checked_and_paid_once(cli, server, write_job, tmp_path):
    faults(server, "schema-deep")
    job = tree_job(["nest 300", "nest 2"], columns=True)
    job["limits"]["timeout"] = 30  # a busy machine can take over 2 s to build and check 300 levels: a retry
    path = write_job(job)
    first = cli("run", str(path))
    assert first.exit_code == EXIT_OK, first.output
    found = {r["id"]: r for r in rows(tmp_path / "out" / "t.csv")}
    assert depth(found["p0"]["output"]) == 301 and depth(found["p1"]["output"]) == 3
    assert found["p0"]["status"] == "ok" and found["p0"]["reasks"] == "0"
    assert cli("run", str(path)).exit_code == EXIT_OK
    assert len(server.seen) == 2  # the first run and a plain rerun: each answer bought once


def test_an_answer_too_deep_to_check_is_an_error_row_that_keeps_its_cost(cli, server, write_job, tmp_path):
    faults(server, "schema-deep")
    path = write_job(tree_job(["nest 2000", "nest 3"]))
    first = cli("run", str(path))
    assert first.exit_code == EXIT_FAILED_ITEMS and "Traceback" not in first.output
    assert "for a reason in the request" in first.output  # not sent again by a plain rerun
    found = {r["id"]: r for r in rows(tmp_path / "out" / "t.csv")}
    deep = found["p0"]
    assert deep["status"] == "error" and deep["reasks"] == "0"
    assert deep["error"].startswith("the answer is nested 2,001 levels deep: too deep to check against its schema")
    assert int(deep["prompt_tokens"]) > 0 and int(deep["completion_tokens"]) > 0 and float(deep["cost_usd"]) > 0
    assert depth(deep["output"]) == 2001  # the answer paid for is kept
    assert found["p1"]["status"] == "ok"
    assert len(server.seen) == 2  # not asked again: that would pay for another answer as deep
    again = cli("run", str(path))
    assert again.exit_code == EXIT_FAILED_ITEMS and len(server.seen) == 2  # a plain rerun keeps it
    assert rows(tmp_path / "out" / "t.csv")[0]["error"] == deep["error"]
    retried = cli("run", str(path), "--retry-failed")
    assert retried.exit_code == EXIT_FAILED_ITEMS and len(server.seen) == 3  # asked for: bought again


def test_an_answer_too_deep_to_check_in_batch_mode_is_kept_as_an_error(cli, server, write_job, tmp_path):
    faults(server, "schema-deep")
    path = write_job({**tree_job(["nest 2000"]), "mode": "batch"})
    done = cli("run", str(path), "--wait", "--poll", "0")
    assert done.exit_code == EXIT_FAILED_ITEMS, done.output
    [row] = rows(tmp_path / "out" / "t.csv")
    assert row["status"] == "error" and "too deep to check" in row["error"] and float(row["cost_usd"]) > 0
    assert cli("run", str(path), "--wait", "--poll", "0").exit_code == EXIT_FAILED_ITEMS
    assert len([f for f in server.batch.files.values() if f.purpose == "batch"]) == 1  # paid once


def test_the_check_itself_never_recurses_past_the_answers_depth():
    from batchgpt.structured import Unchecked, check

    nested = '{"name": "n", "child": ' * 450 + "null" + "}" * 450
    parsed, problem = check(TREE, nested)
    assert problem is None and depth(json.dumps(parsed)) == 450
    wrong = nested.replace("null", '{"name": 1, "child": null}')
    shown = "the answer does not match the schema (the part that fails nests too deep to show)"
    assert check(TREE, wrong) == (None, shown)  # a miss deep down is found too
    shallow = '{"name": 1, ' + nested[len('{"name": "n", ') :]
    assert check(TREE, shallow) == (None, 'at /name: 1 is not of type "string"')
    with pytest.raises(Unchecked, match="nested 100,001 levels deep"):
        check(TREE, "[" * 100_001 + "]" * 100_001)
    quoted = json.dumps({"name": "[" * 5000 + '"' + "{" * 5000, "child": None})  # brackets in a string nest nothing
    assert check(TREE, quoted)[1] is None


def test_a_deep_answer_to_a_schema_only_python_reads_is_unchecked_not_a_crash():
    from batchgpt.structured import Unchecked, check

    python_only = {**TREE, "properties": {**TREE["properties"], "name": {"type": "string", "pattern": "n\\Z"}}}
    assert check(python_only, '{"name": "n", "child": null}')[1] is None
    with pytest.raises(Unchecked, match="jsonschema-rs cannot read its schema"):
        check(python_only, '{"name": "n", "child": ' * 450 + "null" + "}" * 450)


def test_the_mock_answers_a_recursive_schema_and_nests_it_as_deep_as_asked():
    from batchgpt.mock.schema import structured_text

    assert json.loads(structured_text(TREE, "Echo: a tree", None)) == {"name": "Echo: a tree", "child": None}
    assert depth(structured_text(TREE, "Echo: nest 3", "schema-deep")) == 4
    assert depth(structured_text(TREE, "Echo: nest 5000", "schema-deep")) == 5001  # built as text, not recursed


# ------------------------------------------------------------------ a full disk


def test_results_on_a_full_disk_exit_with_the_io_code_and_the_answers_are_paid_once(
    cli, server, write_job, tmp_path, monkeypatch
):
    from batchgpt import files

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    path = write_job(chat_job(["a", "b", "c"]))
    with monkeypatch.context() as disk:
        disk.setattr(files.os, "fsync", no_space)  # every file written meets the full disk; the store does not
        full = cli("run", str(path))
    results = tmp_path / "out" / "t.csv"
    assert full.exit_code == EXIT_IO and "Traceback" not in full.output
    assert f"cannot write {results}: No space left on device" in full.stderr
    assert "The answers are safe in the store" in full.stderr and "nothing was sent" not in full.stderr
    assert len(server.seen) == 3 and not results.exists()
    again = cli("run", str(path))  # space again: the rerun writes what the store kept
    assert again.exit_code == EXIT_OK and len(server.seen) == 3
    assert [r["output"] for r in rows(results)] == ["Echo: a", "Echo: b", "Echo: c"]


def test_a_store_that_fills_up_at_the_end_of_a_run_says_the_disk_is_full_and_keeps_the_answers(
    cli, server, write_job, tmp_path, monkeypatch
):
    from batchgpt.store import Store

    def full(*args: Any, **kwargs: Any) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    path = write_job(chat_job(["a", "b", "c"]))
    with monkeypatch.context() as disk:
        disk.setattr(Store, "count_sent", full)  # the answers are committed; the run's bookkeeping is not
        result = cli("run", str(path))
    assert result.exit_code == EXIT_IO and "Traceback" not in result.output
    state = tmp_path / ".batchgpt"
    assert f"the disk is full: cannot write the run state in {state}" in result.stderr
    assert "nothing was sent" not in result.stderr
    again = cli("run", str(path))
    assert again.exit_code == EXIT_OK and len(server.seen) == 3  # paid once across both runs


def test_a_store_that_fills_up_mid_run_keeps_what_it_committed(cli, server, write_job, tmp_path, monkeypatch):
    from batchgpt.store import schema

    connect = schema.connect

    def small_disk(path: Path) -> sqlite3.Connection:
        db = connect(path)
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {max(pages, 20) + 6}")  # SQLite itself finds the disk full
        return db

    prompts = [f"{'word ' * 300}{i}" for i in range(60)]
    path = write_job(chat_job(prompts, limits={"concurrency": 2, "timeout": 2, "max_retries": 4}))
    with monkeypatch.context() as disk:
        disk.setattr(schema, "connect", small_disk)
        full = cli("run", str(path))
    assert full.exit_code == EXIT_IO and "Traceback" not in full.output
    assert f"the disk is full: cannot write the run state in {tmp_path / '.batchgpt'}" in full.stderr
    kept = sqlite3.connect(tmp_path / ".batchgpt" / "state.db").execute(
        "SELECT COUNT(*) FROM items WHERE status = 'ok'"
    )
    answered = kept.fetchone()[0]
    sent = len(server.seen)
    assert 0 < answered < 60 and sent < 60  # it stopped sending once the store could keep no more
    again = cli("run", str(path))
    assert again.exit_code == EXIT_OK
    assert len(server.seen) - sent == 60 - answered  # nothing the store kept is bought again


def test_a_new_store_on_a_full_disk_is_said_to_be_so_not_called_unusable(cli, server, write_job, tmp_path, monkeypatch):
    from batchgpt.store import schema

    connect = schema.connect

    def full_disk(path: Path) -> sqlite3.Connection:
        db = connect(path)
        db.execute("PRAGMA max_page_count = 1")  # not even room for the first table
        return db

    monkeypatch.setattr(schema, "connect", full_disk)
    result = cli("run", str(write_job(chat_job(["a"]))))
    assert result.exit_code == EXIT_IO and "Traceback" not in result.output
    assert f"the disk is full: cannot write the run state in {tmp_path / '.batchgpt'}" in result.stderr
    assert "unusable" not in result.stderr and "move it aside" not in result.stderr  # no store is broken
    assert server.seen == [] and not (tmp_path / ".batchgpt" / "state.db").exists()


# ------------------------------------------------------------------ a store from a newer batchgpt


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_a_store_from_a_newer_batchgpt_is_refused_and_left_alone(cli, server, write_job, tmp_path):
    from batchgpt.store import MIGRATIONS

    path = write_job(chat_job(["a"]))
    assert cli("run", str(path)).exit_code == EXIT_OK
    state = tmp_path / ".batchgpt"
    db = sqlite3.connect(state / "state.db")
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 3}")
    db.close()
    before = _digest(state)
    for args in (["run", str(path), "--fresh"], ["runs", str(path)], ["export", str(path)]):
        result = cli(*args)
        assert result.exit_code != 0 and "Traceback" not in result.output, args
        assert f"the state store {state / 'state.db'} was written by a newer batchgpt" in result.stderr
        assert f"version {len(MIGRATIONS) + 3}" in result.stderr and f"up to {len(MIGRATIONS)}" in result.stderr
    assert len(server.seen) == 1
    after = _digest(state)
    assert {k: v for k, v in after.items() if not k.endswith(".lock")} == {
        k: v for k, v in before.items() if not k.endswith(".lock")
    }
