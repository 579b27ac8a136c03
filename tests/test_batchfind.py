"""A batch whose creation no run saw answered is found in the provider's list, however the list
pages, or left to the user (exit 7, `batchgpt batches JOB --adopt/--lost`): never created twice.

A run killed while creating leaves its intent with no batch id; the tests leave it so by hand
after a run that created the batch, then give the list a relay's shape (mock/batchfaults.py).
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from conftest import chat_job
from test_batches import results, uploads
from test_mock_batch import line, submit

from batchgpt.batch import EXIT_SUBMITTED, EXIT_UNRESOLVED
from batchgpt.mock import MockServer


def ours(server: MockServer) -> list[Any]:
    """The batches batchgpt created on the server (others are made by the test itself)."""
    return [b for b in server.batch.batches.values() if b.metadata.get("batchgpt_job")]


def killed_while_creating(tmp_path: Path) -> None:
    """The store as a run killed after sending the creation, before recording its answer, leaves it."""
    db = sqlite3.connect(tmp_path / ".batchgpt" / "state.db")
    with db:
        db.execute("UPDATE batches SET batch_id = NULL, status = 'creating', counts = NULL WHERE collected = 0")
    db.close()


def submitted(path: Path, cli: Any, server: MockServer, tmp_path: Path) -> Any:
    """A job submitted (its batch created) and then its creation forgotten, as by a kill."""
    assert cli("run", str(path)).exit_code == EXIT_SUBMITTED
    killed_while_creating(tmp_path)
    [batch] = ours(server)
    return batch


def test_an_empty_list_creates_nothing_and_names_the_file_and_the_commands(cli, server, write_job, tmp_path):
    path = write_job(chat_job(["one", "two"], mode="batch"))
    batch = submitted(path, cli, server, tmp_path)
    server.batch.faults.listing = "empty"  # a gateway that lists no batches
    unsure = cli("run", str(path))
    assert len(ours(server)) == 1 and len(uploads(server)) == 1  # not created twice
    assert unsure.exit_code == EXIT_UNRESOLVED, unsure.output
    assert "its list of batches is empty" in unsure.output and batch.input_file_id in unsure.output
    adopt = re.search(r"`(batchgpt batches \S+ --adopt [0-9a-f]{32})=BATCH_ID`", unsure.output)
    assert adopt and f"batchgpt batches {path} --lost" in unsure.output
    assert cli("run", str(path)).exit_code == EXIT_UNRESOLVED and len(ours(server)) == 1  # until told
    adopted = cli(*adopt[1].split()[1:-1], f"{adopt[1].split()[-1]}={batch.id}")
    assert adopted.exit_code == 0 and f"adopted batch {batch.id}" in adopted.output
    done = cli("run", str(path))
    assert done.exit_code == 0, done.output
    assert len(ours(server)) == 1 and results(tmp_path)["output"].tolist() == ["Echo: one", "Echo: two"]


@pytest.mark.parametrize("listing", ["no-has-more", "oldest-first"])
def test_a_list_that_pages_its_own_way_is_read_to_the_batch(cli, server, write_job, tmp_path, listing):
    submit(server, [line("x", "made before")])
    path = write_job(chat_job(["one"], mode="batch"))
    submitted(path, cli, server, tmp_path)
    for n in range(3):
        submit(server, [line("x", f"made after {n}")])
    server.batch.faults.listing, server.batch.faults.page_size = listing, 1  # one batch a page
    done = cli("run", str(path))
    assert len(ours(server)) == 1  # not created twice
    assert done.exit_code == 0, done.output
    assert "found batch" in done.output


def test_a_list_that_repeats_its_first_page_cannot_tell(cli, server, write_job, tmp_path):
    path = write_job(chat_job(["one"], mode="batch"))
    submitted(path, cli, server, tmp_path)
    for n in range(2):
        submit(server, [line("x", f"made after {n}")])
    server.batch.faults.listing, server.batch.faults.page_size = "ignores-after", 1
    unsure = cli("run", str(path))
    assert unsure.exit_code == EXIT_UNRESOLVED, unsure.output  # not "try again later" forever
    assert "gives the same page again" in unsure.output and len(ours(server)) == 1


def test_a_list_without_metadata_finds_the_batch_by_its_input_file(cli, server, write_job, tmp_path):
    path = write_job(chat_job(["one"], mode="batch"))
    submitted(path, cli, server, tmp_path)
    server.batch.faults.listing = "no-metadata"
    done = cli("run", str(path))
    assert len(ours(server)) == 1 and len(uploads(server)) == 1  # not created twice
    assert done.exit_code == 0, done.output


def test_a_list_without_metadata_or_input_files_cannot_tell(cli, server, write_job, tmp_path):
    job = chat_job(["one"], mode="batch")
    job["tasks"].append({"type": "chat", "name": "big", "model": "gpt-4o", "items": [{"id": "b", "prompt": "x"}]})
    path = write_job(job)
    assert cli("run", str(path)).exit_code == EXIT_SUBMITTED
    db = sqlite3.connect(tmp_path / ".batchgpt" / "state.db")
    with db:  # only p0's creation is forgotten: b's batch is one the store knows
        db.execute("UPDATE batches SET batch_id = NULL, status = 'creating' WHERE model = 'gpt-4o-mini'")
    db.close()
    server.batch.faults.listing = "bare"
    unsure = cli("run", str(path))
    assert len(ours(server)) == 2  # p0's batch is not created twice
    assert unsure.exit_code == EXIT_UNRESOLVED, unsure.output
    assert "shows none of the batches made there before" in unsure.output


def test_a_creation_refused_with_429_is_made_by_the_next_run_whatever_the_list(cli, server, write_job, tmp_path):
    path = write_job(chat_job(["one"], mode="batch"))
    server.batch.faults.busy_creates = 1  # refused: surely not created
    server.batch.faults.listing = "empty"
    assert cli("run", str(path)).exit_code == EXIT_SUBMITTED and not ours(server)
    assert cli("run", str(path)).exit_code == EXIT_SUBMITTED and len(ours(server)) == 1
    assert cli("run", str(path)).exit_code == 0 and len(ours(server)) == 1


def test_lost_submits_the_items_again_and_a_wrong_adoption_is_given_up(cli, server, write_job, tmp_path):
    path = write_job(chat_job(["one"], mode="batch"))
    submitted(path, cli, server, tmp_path)
    [other] = [submit(server, [line("p0", "one")])["id"]]  # a batch that is not this intent's
    server.batch.faults.listing = "empty"
    unsure = cli("run", str(path))
    intent = re.search(r"--lost ([0-9a-f]{32})`", unsure.output)
    assert unsure.exit_code == EXIT_UNRESOLVED and intent
    assert cli("batches", str(path), "--adopt", f"{intent[1][:8]}={other}").exit_code == 0
    wrong = cli("run", str(path))
    assert wrong.exit_code == EXIT_SUBMITTED and "is now another batch" in wrong.output
    assert len(ours(server)) == 2  # its items went into a new file
    killed_while_creating(tmp_path)  # that one's creation is lost track of too, and the list is empty
    intent = re.search(r"--lost ([0-9a-f]{32})`", cli("run", str(path)).output)
    assert intent
    lost = cli("batches", str(path), "--lost", intent[1])
    assert lost.exit_code == 0 and "submits its 1 item again" in lost.output
    assert cli("run", str(path)).exit_code == EXIT_SUBMITTED and len(ours(server)) == 3
    assert cli("run", str(path)).exit_code == 0


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (["--lost", "nope"], "no open batch of job 't' has an intent beginning 'nope'"),
        (["--adopt", "nope"], "write INTENT=BATCH_ID"),
        (["--adopt", "=batch_1"], "has an intent beginning ''"),
    ],
)
def test_adopt_and_lost_refuse_what_they_cannot_do(cli, server, write_job, tmp_path, options, said):
    path = write_job(chat_job(["one"], mode="batch"))
    assert cli("run", str(path)).exit_code == EXIT_SUBMITTED
    refused = cli("batches", str(path), *options)
    assert refused.exit_code == 2 and said in refused.output and "Traceback" not in refused.output
    no_job = cli("batches", "--lost", "abc")
    assert no_job.exit_code == 2 and "take the job file" in no_job.output
