"""The store's file (batchgpt/store/schema.py): made whole, refused when broken with a hint that
works, migrated in place from older formats, and shared by several processes at once."""

from __future__ import annotations

import pytest
from test_store import answer, request

from batchgpt.errors import StateError
from batchgpt.store import Store


def test_a_corrupt_store_is_a_clear_error(tmp_path):
    (tmp_path / "state.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StateError, match="unusable"):
        Store(tmp_path)


def test_an_unusable_state_directory_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StateError, match="cannot use the state directory"):
        Store(blocker / "state")


def test_a_store_from_an_older_version_is_migrated_in_place(tmp_path):
    import sqlite3

    from batchgpt.store import MIGRATIONS

    db = sqlite3.connect(tmp_path / "state.db")
    db.executescript(f"BEGIN; {MIGRATIONS[0]}; PRAGMA user_version=1; COMMIT;")
    db.execute(
        "INSERT INTO items (job, id, seq, run_id, task, type, model, hash, status, output) "
        "VALUES ('job', 'a', 0, 1, 't', 'chat', 'm', 'h', 'ok', 'kept')"
    )
    db.commit()
    db.close()
    store = Store(tmp_path)
    with sqlite3.connect(tmp_path / "state.db") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    run = store.begin_run("job", None)
    assert store.claim(run, "job", request(0, "a", digest="h")) is False  # the old answer is kept
    assert [(r["output"], r["details"]) for r in store.results("job", run)] == [("kept", None)]


def test_errors_stored_before_transient_was_recorded_are_judged_by_their_message(tmp_path):
    import sqlite3

    from batchgpt.store import MIGRATIONS

    db = sqlite3.connect(tmp_path / "state.db")
    db.executescript(f"BEGIN; {MIGRATIONS[0]}; {MIGRATIONS[1]}; PRAGMA user_version=2; COMMIT;")
    for ident, error in (
        ("a", "HTTP 429 rate_limit_exceeded: slow down"),
        ("b", "connection: refused"),
        ("c", "HTTP 400 invalid_request_error: bad"),
        ("d", "timeout: no answer"),
    ):
        db.execute(
            "INSERT INTO items (job, id, seq, run_id, task, type, model, hash, status, error) "
            "VALUES ('job', ?, 0, 1, 't', 'chat', 'm', 'h-' || ?, 'error', ?)",
            (ident, ident, error),
        )
    db.commit()
    db.close()
    store = Store(tmp_path)
    run = store.begin_run("job", None)
    assert [store.claim(run, "job", request(n, i)) for n, i in enumerate("abcd")] == [True, True, False, True]


def _busy_writer(directory, job: str, start, errors) -> None:
    """One process's run: open the store, claim and answer items, commit often, as the engine does."""
    try:
        start.wait()
        store = Store(directory)
        run = store.begin_run(job, None)
        for n in range(150):
            req = request(n, f"{job}-{n}")
            store.claim(run, job, req)
            store.record(job, answer(req, output="x"))
            if n % 5 == 0:
                store.commit()
        store.finish_run(run, 0, None, "r", "p", store.totals(job, run))
        store.close()
    except Exception as exc:  # reported to the parent, which fails the test with it
        errors.put(f"{job}: {type(exc).__name__}: {exc}")


def test_runs_of_different_jobs_share_one_store_at_once_without_locking_errors(tmp_path):
    import multiprocessing

    context = multiprocessing.get_context("fork")
    for attempt in range(3):  # a fresh store each time: creating it at once is the narrowest race
        directory = tmp_path / f"state{attempt}"
        start, errors = context.Event(), context.Queue()
        workers = [context.Process(target=_busy_writer, args=(directory, f"job{i}", start, errors)) for i in range(4)]
        for worker in workers:
            worker.start()
        start.set()
        for worker in workers:
            worker.join(60)
        assert errors.empty(), errors.get()
        assert [w.exitcode for w in workers] == [0] * 4
        store = Store(directory)
        assert [(run.job, run.ok) for run in sorted(store.runs(), key=lambda r: r.job)] == [
            (f"job{i}", 150) for i in range(4)
        ]
        store.close()


def _answered_store(directory) -> None:
    store = Store(directory)
    run = store.begin_run("job", None)
    r = request(0, "a")
    store.claim(run, "job", r)
    store.record("job", answer(r, output="paid for"))
    store.close()


def test_a_store_truncated_to_zero_bytes_is_an_error_not_a_new_store(tmp_path):
    _answered_store(tmp_path)
    (tmp_path / "state.db").write_bytes(b"")
    with pytest.raises(StateError, match="unusable") as caught:
        Store(tmp_path)
    assert str(tmp_path / "state.db") in str(caught.value) and "empty" in str(caught.value)
    assert (tmp_path / "state.db").stat().st_size == 0  # left as found


def test_the_hint_for_an_unusable_store_works_when_pasted(tmp_path):
    import re
    import subprocess

    directory = tmp_path / "state dir"  # a space, to be quoted
    _answered_store(directory)
    (directory / "state.db").write_bytes(b"")
    with pytest.raises(StateError) as caught:
        Store(directory)
    command = re.search(r"`([^`]+)`", str(caught.value)).group(1)
    subprocess.run(["sh", "-c", command], check=True, cwd=tmp_path / "..")
    store = Store(directory)  # a new, empty store; the broken one is kept aside
    assert list(store.results("job", 1)) == []
    store.close()
    [aside] = directory.glob("broken-*")
    assert (aside / "state.db").stat().st_size == 0


def test_a_sqlite_file_that_is_not_a_store_is_an_error(tmp_path):
    import sqlite3

    db = sqlite3.connect(tmp_path / "state.db")
    db.execute("CREATE TABLE contacts (name TEXT)")
    db.commit()
    db.close()
    with pytest.raises(StateError, match="unusable"):
        Store(tmp_path)
    db = sqlite3.connect(tmp_path / "state.db")
    assert [r[0] for r in db.execute("SELECT name FROM sqlite_master")] == ["contacts"]  # untouched
    db.close()


def test_a_new_store_is_made_whole_and_leaves_nothing_else_behind(tmp_path):
    store = Store(tmp_path / "state")
    store.close()
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == ["state.db"]
    assert (tmp_path / "state" / "state.db").read_bytes()[:16] == b"SQLite format 3\x00"


def test_answers_kept_aside_have_every_column_an_item_row_has(tmp_path):
    """A migration that adds a column to items must add it to answers too, or setting aside fails."""
    from batchgpt.store.schema import ITEM_COLUMNS

    store = Store(tmp_path)
    columns = {
        table: [r[1] for r in store._db.execute(f"PRAGMA table_info({table})")] for table in ("items", "answers")
    }
    assert columns["items"] == columns["answers"] == ITEM_COLUMNS


@pytest.fixture
def read_only():
    """read_only(path) makes `path` read-only for a child process and gives the prefix of its
    command: chmod where this process is not root; for root, whom chmod does not stop, a read-only
    bind mount in a user and mount namespace of the child's own (the real folder is untouched)."""
    import os
    import shutil
    import subprocess

    undo = []

    def make(path):
        if os.geteuid() != 0:
            undo.append((path, path.stat().st_mode))
            path.chmod(0o555 if path.is_dir() else 0o444)
            return []
        if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"]).returncode != 0:
            pytest.skip("running as root, with no user namespace to mount a folder read-only in")
        return ["unshare", "-rm", "sh", "-c", 'mount --bind -o ro "$0" "$0" && exec "$@"', str(path)]

    yield make
    for path, mode in undo:
        path.chmod(mode)


def _batchgpt(prefix, *args, server=None):
    import os
    import subprocess
    import sys

    from conftest import SECRET

    extra = ["--base-url", server.base_url] if server is not None else []
    env = dict(os.environ, OPENAI_API_KEY=SECRET)
    command = [*prefix, sys.executable, "-m", "batchgpt.cli", *args, *extra]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def test_a_read_only_state_folder_is_named_as_such_and_nothing_is_sent(server, write_job, tmp_path, read_only):
    """Issue 24, item 16: a read-only state folder was "unusable", with a hint to move a sound store
    aside (which a read-only folder refuses too)."""
    from conftest import chat_job

    assert _batchgpt([], "run", str(write_job(chat_job(["a"]))), server=server).returncode == 0
    state = tmp_path / ".batchgpt"
    prefix = read_only(state)
    for args in (
        ["run", str(write_job(chat_job(["a", "b"]))), "--base-url", server.base_url],
        ["runs", "--state", str(state)],
    ):
        done = _batchgpt(prefix, *args)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert f"the state folder {state} is read-only (" in done.stderr
        assert (
            "--state DIR (a copy of this one keeps its answers)" in done.stderr
            and f"or make {state} writable" in done.stderr
        )
        assert "unusable" not in done.stderr and "move it aside" not in done.stderr
    assert len(server.seen) == 1  # b was not sent


def test_a_read_only_store_file_is_named_as_such_when_a_run_would_write_it(server, write_job, tmp_path, read_only):
    """A run said "cannot write the run state ... run again to send only the rest", which could not
    help; `runs` and `export` only read it, and still work."""
    from conftest import chat_job

    assert _batchgpt([], "run", str(write_job(chat_job(["a"]))), server=server).returncode == 0
    store = tmp_path / ".batchgpt" / "state.db"
    prefix = read_only(store)
    done = _batchgpt(prefix, "run", str(write_job(chat_job(["a", "b"]))), server=server)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert f"the state store {store} is read-only (" in done.stderr and f"or make {store} writable" in done.stderr
    assert "run again" not in done.stderr and len(server.seen) == 1
    listed = _batchgpt(prefix, "runs", "--state", str(store.parent))
    assert listed.returncode == 0 and "Traceback" not in listed.stderr, listed.stderr


def test_a_state_folder_that_cannot_be_made_names_its_read_only_parent(server, write_job, tmp_path, read_only):
    from conftest import chat_job

    parent = tmp_path / "shared"
    parent.mkdir()
    state = parent / "state"
    done = _batchgpt(read_only(parent), "run", str(write_job(chat_job(["a"]))), "--state", str(state), server=server)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert f"cannot make the state folder {state}: {parent} is read-only (" in done.stderr
    assert "a copy of this one" not in done.stderr and server.seen == []
