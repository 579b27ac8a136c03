"""The run state store: enrolment, resume decisions, answers kept aside, runs and exports (the
store's file and its migrations: test_store_schema.py)."""

from __future__ import annotations

from batchgpt.records import Provider, Request, Result
from batchgpt.store import Store


def request(seq: int, ident: str, digest: str | None = None, model: str = "m") -> Request:
    """A request whose body is its id's own, unless `digest` names another."""
    return Request(
        seq=seq,
        id=ident,
        task="t",
        type="chat",
        model=model,
        endpoint="/chat/completions",
        body={},
        payload=b"{}",
        hash=digest or f"h-{ident}",
        provider=Provider(),
    )


def answer(req: Request, status: str = "ok", **fields) -> Result:
    return Result(seq=req.seq, id=req.id, task=req.task, type=req.type, model=req.model, status=status, **fields)


def test_answered_items_are_not_sent_again_unless_their_request_changed(tmp_path):
    store = Store(tmp_path)
    run = store.begin_run("job", None)
    a, b, c = request(0, "a"), request(1, "b"), request(2, "c")
    assert all(store.claim(run, "job", r) for r in (a, b, c))
    store.record("job", answer(a, output="A", prompt_tokens=3, completion_tokens=1, cost_usd=0.5))
    store.record("job", answer(b, "error", error="HTTP 400"))
    # c never answered: the process died with it in flight
    second = store.begin_run("job", None)
    assert store.claim(second, "job", request(0, "a")) is False
    assert store.claim(second, "job", request(1, "b")) is False  # an error stays unless asked
    assert store.claim(second, "job", request(2, "c")) is True
    assert store.claim(second, "job", request(3, "a", digest="changed")) is True
    third = store.begin_run("job", None)
    assert store.claim(third, "job", request(1, "b"), retry_failed=True) is True


def test_a_transient_error_is_sent_again_by_a_plain_rerun_and_a_permanent_one_is_not(tmp_path):
    store = Store(tmp_path)
    run = store.begin_run("job", None)
    bad, flaky = request(0, "bad"), request(1, "flaky")
    assert store.claim(run, "job", bad) and store.claim(run, "job", flaky)
    store.record("job", answer(bad, "error", error="HTTP 400: no"))
    store.record("job", answer(flaky, "error", error="HTTP 503: busy", transient=True))
    totals = store.totals("job", run)
    assert (totals.failed, totals.failed_transient) == (2, 1)
    rerun = store.begin_run("job", None)
    assert store.claim(rerun, "job", bad) is False
    assert store.claim(rerun, "job", flaky) is True


def test_results_come_back_in_input_order_with_structured_outputs(tmp_path):
    store = Store(tmp_path)
    run = store.begin_run("job", None)
    reqs = [request(2, "z"), request(0, "x"), request(1, "y")]
    for r in reqs:
        store.claim(run, "job", r)
    store.record("job", answer(reqs[0], output=[0.5, -0.25], details={"scores": {"hate": 0.01}}))
    store.record("job", answer(reqs[1], output="日本"))
    rows = list(store.results("job", run))
    assert [r["id"] for r in rows] == ["x", "y", "z"]
    assert rows[0]["output"] == "日本" and rows[1]["status"] == "pending" and rows[2]["output"] == [0.5, -0.25]
    assert rows[2]["details"] == {"scores": {"hate": 0.01}} and rows[0]["details"] is None


def test_vectors_are_stored_as_float32_and_other_structures_as_json(tmp_path):
    import array

    store = Store(tmp_path)
    run = store.begin_run("job", None)
    vector = array.array("f", [0.1, -2.5, 3e-7]).tolist()  # what the API's base64 float32 decodes to
    for n, output in enumerate([vector, ["a", "b"], [1, 2]]):
        r = request(n, f"i{n}")
        store.claim(run, "job", r)
        store.record("job", answer(r, output=output))
    assert [row["output"] for row in store.results("job", run)] == [vector, ["a", "b"], [1, 2]]
    store.commit()
    import sqlite3

    with sqlite3.connect(tmp_path / "state.db") as db:  # the file, as another reader sees it
        raw = db.execute("SELECT typeof(output), output_json FROM items ORDER BY seq").fetchall()
    assert raw == [("blob", 2), ("text", 1), ("text", 1)]


def test_skip_keeps_an_earlier_answer(tmp_path):
    store = Store(tmp_path)
    run = store.begin_run("job", None)
    done = request(0, "a")
    store.claim(run, "job", done)
    store.record("job", answer(done, output="kept"))
    second = store.begin_run("job", None)
    store.skip(second, "job", request(0, "a"), "budget")
    store.skip(second, "job", request(1, "b"), "budget")
    rows = list(store.results("job", second))
    assert [(r["status"], r["output"], r["error"]) for r in rows] == [("ok", "kept", None), ("skipped", None, "budget")]


def test_report_groups_and_never_prices_unknown_models_at_zero(tmp_path):
    store = Store(tmp_path)
    run = store.begin_run("job", None)
    rows = [request(0, "a", model="known"), request(1, "b", model="known"), request(2, "c", model="mystery")]
    for r in rows:
        store.claim(run, "job", r)
    store.record("job", answer(rows[0], prompt_tokens=10, completion_tokens=5, cost_usd=0.25))
    store.record("job", answer(rows[1], "error", error="x"))
    store.record("job", answer(rows[2], prompt_tokens=4, completion_tokens=1, cost_usd=None))
    report = {g["model"]: g for g in store.groups("job", run)}
    no_usage = request(3, "d", model="streamed")
    store.claim(run, "job", no_usage)
    store.record("job", answer(no_usage, prompt_tokens=None, cost_usd=None))  # a server that sent no usage
    assert {g["model"]: g for g in store.groups("job", run)}["streamed"]["cost_usd"] is None
    assert report["known"] == {
        "task": "t",
        "model": "known",
        "mode": "online",
        "requests": 2,
        "succeeded": 1,
        "failed": 1,
        "skipped": 0,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost_usd": 0.25,
        "cost_usd_this_run": 0.25,
    }
    assert report["mystery"]["cost_usd"] is None


def test_runs_are_listed_with_their_totals(tmp_path):
    store = Store(tmp_path)
    run = store.begin_run("job", "jobs/job.yaml")
    r = request(0, "a")
    store.claim(run, "job", r)
    store.record("job", answer(r, prompt_tokens=2, completion_tokens=3, cost_usd=0.1))
    store.finish_run(run, 0, None, "out.csv", "rep.csv", store.totals("job", run))
    [info] = store.runs()
    assert (info.job, info.exit_code, info.ok, info.failed, info.prompt_tokens, info.cost_usd) == (
        "job",
        0,
        1,
        0,
        2,
        0.1,
    )


def test_forget_starts_a_job_over(tmp_path):
    store = Store(tmp_path)
    run = store.begin_run("job", None)
    r = request(0, "a")
    store.claim(run, "job", r)
    store.record("job", answer(r))
    assert store.forget("job") == 1
    assert store.claim(store.begin_run("job", None), "job", r) is True


def test_report_groups_count_skipped_items_so_the_counts_add_up(tmp_path):
    store = Store(tmp_path)
    run = store.begin_run("job", None)
    store.claim(run, "job", request(0, "a"))
    store.record("job", Result(0, "a", "t", "chat", "m", "ok", output="x", prompt_tokens=1, completion_tokens=1))
    store.claim(run, "job", request(1, "b"))
    store.abandon("job", run, "not answered: interrupted")
    [group] = store.groups("job", run)
    assert (group["requests"], group["succeeded"], group["failed"], group["skipped"]) == (2, 1, 0, 1)
    store.close()


def test_an_answer_displaced_by_another_endpoint_is_kept_aside_and_comes_back(tmp_path):
    from dataclasses import replace

    store = Store(tmp_path)
    a, b = Provider(base_url="https://a.example/v1"), Provider(base_url="http://127.0.0.1:8000/v1")
    first = store.begin_run("job", None)
    there = replace(request(0, "x"), provider=a)
    assert store.claim(first, "job", there)
    store.record("job", answer(there, output="from A", cost_usd=0.25, prompt_tokens=5, completion_tokens=1))
    second = store.begin_run("job", None)
    here = replace(there, provider=b)
    assert store.claim(second, "job", here)  # B has no answer: sent there
    store.record("job", answer(here, output="from B", cost_usd=0.0, prompt_tokens=5, completion_tokens=1))
    assert [r["output"] for r in store.results("job", second)] == ["from B"]
    assert [r["output"] for r in store.results("job", first)] == ["from A"]  # kept aside, still the first run's
    third = store.begin_run("job", None)
    assert store.claim(third, "job", there) is False  # back at A: its answer, not bought again
    assert [(r["output"], r["cost_usd"]) for r in store.results("job", third)] == [("from A", 0.25)]
    assert store.totals("job", third).cost_usd == 0.25
    assert [r["output"] for r in store.results("job", second)] == ["from B"]  # and B's is kept aside in turn


def test_a_request_finds_its_answer_under_another_items_id_that_no_run_has_claimed(tmp_path):
    store = Store(tmp_path)
    first = store.begin_run("job", None)
    old = [request(n, f"row{n}", digest=f"body{n}") for n in range(3)]
    for r in old:
        assert store.claim(first, "job", r)
        store.record("job", answer(r, output=f"answer {r.hash}"))
    second = store.begin_run("job", None)
    # a row inserted at the top: every body moves one place down
    moved = [request(0, "row0", digest="new"), *(request(n + 1, f"row{n + 1}", digest=f"body{n}") for n in range(3))]
    assert [store.claim(second, "job", r) for r in moved] == [True, False, False, False]
    store.record("job", answer(moved[0], output="answer new"))
    outputs = [r["output"] for r in store.results("job", second)]
    assert outputs == ["answer new", "answer body0", "answer body1", "answer body2"]


def test_answer_columns_come_before_kept_fields_whichever_item_answered_first(tmp_path):
    """`columns: true` with `keep:` wrote sku, name, zone, price: each name where it first
    appeared, kept fields and an answer's interleaved (issue 28, item 7)."""
    from dataclasses import replace

    store = Store(tmp_path)
    run = store.begin_run("job", None)
    first, second = (
        replace(request(n, ident), kept=(("sku", f"S{n}"), ("zone", "eu"))) for n, ident in enumerate("ab")
    )
    assert store.claim(run, "job", first) and store.claim(run, "job", second)
    store.record("job", answer(first, "error", error="HTTP 503", transient=True))  # no fields: none yet
    store.record("job", answer(second, output="{}", fields={"name": "x", "price": 1.5}))
    expected = [("name", "text"), ("price", "real"), ("sku", "text"), ("zone", "text")]
    assert store.kept_columns("job", run) == expected
    rerun = store.begin_run("job", None)
    assert store.claim(rerun, "job", first) and not store.claim(rerun, "job", second)
    store.record("job", answer(first, output="{}", fields={"name": "y", "price": 2}))
    assert store.kept_columns("job", rerun) == expected
