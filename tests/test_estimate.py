"""Dry-run estimates: exact where they can be, bounded where they cannot, never a made-up $0."""

from __future__ import annotations

import json
import re

import pytest
import tiktoken
from genai_prices import Usage, calc_price

from batchgpt.estimate import DEFAULT_EXPECTED_OUTPUT, estimate
from batchgpt.jobs import load
from batchgpt.tokens import Counter


def rows_of(write_job, job: dict) -> dict[tuple[str, str], dict]:
    return {(r["task"], r["model"]): r for r in estimate(load(write_job(job)))}


@pytest.mark.usefixtures("exact_encodings")
def test_completion_prompts_are_counted_exactly(write_job):
    prompts = ["Translate the following English text to French: 'Hello'", "日本語のテキスト 🌸", "x" * 500]
    rows = rows_of(
        write_job,
        {
            "defaults": {"model": "gpt-4o-mini", "max_tokens": 10},
            "tasks": [{"type": "completion", "items": [{"prompt": p} for p in prompts]}],
        },
    )
    encoding = tiktoken.get_encoding("o200k_base")
    assert rows[("completion", "gpt-4o-mini")]["prompt_tokens"] == sum(len(encoding.encode(p)) for p in prompts)


@pytest.mark.usefixtures("exact_encodings")
def test_chat_prompts_include_the_documented_message_overhead(write_job):
    rows = rows_of(
        write_job,
        {
            "defaults": {"model": "gpt-4", "max_tokens": 5},
            "tasks": [{"type": "chat", "system": "Be brief.", "items": [{"prompt": "Hello there"}]}],
        },
    )
    encoding = tiktoken.get_encoding("cl100k_base")
    content = (
        len(encoding.encode("system"))
        + len(encoding.encode("Be brief."))
        + len(encoding.encode("user"))
        + len(encoding.encode("Hello there"))
    )
    assert rows[("chat", "gpt-4")]["prompt_tokens"] == content + 2 * 3 + 3  # 3 a message, 3 to prime the reply


def test_worst_case_cost_is_the_price_table_arithmetic(write_job):
    rows = rows_of(
        write_job,
        {
            "defaults": {"model": "gpt-4.1", "max_tokens": 120},
            "tasks": [{"type": "chat", "items": [{"prompt": f"question {i}"} for i in range(7)]}],
        },
    )
    row = rows[("chat", "gpt-4.1")]
    assert row["max_completion_tokens"] == 7 * 120
    expected = calc_price(
        Usage(input_tokens=row["prompt_tokens"], output_tokens=7 * 120), model_ref="gpt-4.1", provider_id="openai"
    ).total_price
    assert row["cost_usd_max"] == pytest.approx(float(expected))
    expected_output = min(DEFAULT_EXPECTED_OUTPUT, 120) * 7
    batch = calc_price(
        Usage(input_tokens=row["prompt_tokens"], output_tokens=expected_output),
        model_ref="gpt-4.1",
        provider_id="openai",
        price_context={"processing": "batch"},
    ).total_price
    assert row["cost_usd_batch"] == pytest.approx(float(batch))
    assert row["cost_usd_expected"] <= row["cost_usd_max"]


def test_without_max_tokens_the_model_output_limit_is_the_worst_case_and_said(write_job):
    rows = rows_of(
        write_job,
        {
            "defaults": {"model": "gpt-4o-mini"},
            "tasks": [{"type": "chat", "items": [{"prompt": "a"}]}, {"type": "completion", "items": [{"prompt": "b"}]}],
        },
    )
    chat, completion = rows[("chat", "gpt-4o-mini")], rows[("completion", "gpt-4o-mini")]
    assert chat["max_completion_tokens"] == 16_384 and "output limit (16,384)" in chat["notes"]
    assert completion["max_completion_tokens"] == 16 and "default of 16" in completion["notes"]


def test_translations_expect_about_the_source_length(write_job):
    text = "The quick brown fox jumps over the lazy dog. " * 4
    rows = rows_of(
        write_job,
        {
            "defaults": {"model": "gpt-4o-mini", "max_tokens": 1000},
            "tasks": [
                {"type": "translate", "target_lang": "de", "items": [{"text": text}]},
                {"type": "chat", "expected_output_tokens": 42, "items": [{"prompt": "p"}]},
            ],
        },
    )
    price_out = 0.6 / 1e6
    translate = rows[("translate", "gpt-4o-mini")]
    source = Counter().text("gpt-4o-mini", text).tokens
    assert translate["cost_usd_expected"] == pytest.approx(translate["prompt_tokens"] * 0.15 / 1e6 + source * price_out)
    chat = rows[("chat", "gpt-4o-mini")]
    assert chat["cost_usd_expected"] == pytest.approx(chat["prompt_tokens"] * 0.15 / 1e6 + 42 * price_out)


def test_unknown_models_are_named_and_never_priced_at_zero(write_job):
    table = estimate(
        load(
            write_job(
                {
                    "defaults": {"model": "my-local-llama", "max_tokens": 5},
                    "tasks": [
                        {"type": "chat", "items": [{"prompt": "a"}]},
                        {"type": "chat", "model": "gpt-4o-mini", "items": [{"prompt": "b"}]},
                    ],
                }
            )
        )
    )
    local, known, total = table
    assert local["cost_usd_max"] is None and local["cost_usd_expected"] is None and local["cost_usd_batch"] is None
    assert "no price known" in local["notes"] and "approximate token count" in local["notes"]
    assert known["cost_usd_max"] > 0
    # the TOTAL adds up the priced rows and names what it leaves out
    assert total["cost_usd_max"] == known["cost_usd_max"] and "+ 1 row unpriced: my-local-llama" in total["notes"]


def test_job_pricing_prices_a_proxy_model(write_job):
    rows = rows_of(
        write_job,
        {
            "defaults": {"model": "my-proxy-model", "max_tokens": 100},
            "pricing": {"my-proxy-model": {"input": 0.5, "output": 1.5}},
            "tasks": [{"type": "chat", "items": [{"prompt": "a"}]}],
        },
    )
    row = rows[("chat", "my-proxy-model")]
    assert row["cost_usd_max"] == pytest.approx((row["prompt_tokens"] * 0.5 + 100 * 1.5) / 1e6)


def test_minutes_follow_the_binding_limit(write_job):
    job = {
        "defaults": {"model": "gpt-4o-mini", "max_tokens": 100},
        "limits": {"rpm": 60, "concurrency": 50},
        "tasks": [{"type": "chat", "items": [{"prompt": f"p{i}"} for i in range(120)]}],
    }
    assert rows_of(write_job, job)[("chat", "gpt-4o-mini")]["minutes"] == 2.0
    job["limits"] = {"tpm": 1000, "concurrency": 50}
    row = rows_of(write_job, job)[("chat", "gpt-4o-mini")]
    assert row["minutes"] == pytest.approx((row["prompt_tokens"] + 120 * 100) / 1000, abs=0.01)


def test_two_models_run_side_by_side_each_at_its_own_rate(write_job):
    job = {
        "defaults": {"max_tokens": 100},
        "limits": {"rpm": 60, "concurrency": 50},
        "tasks": [
            {"type": "chat", "name": model, "model": model, "items": [{"prompt": f"p{i}"} for i in range(120)]}
            for model in ("gpt-4o-mini", "gpt-4.1")
        ],
    }
    rows = rows_of(write_job, job)
    assert rows[("gpt-4o-mini", "gpt-4o-mini")]["minutes"] == rows[("gpt-4.1", "gpt-4.1")]["minutes"] == 2.0
    assert rows[("TOTAL", "")]["minutes"] == 2.0  # not 4: each model has its own 60 a minute


def test_a_dry_run_checks_and_estimates_in_one_walk_and_keeps_no_estimate_of_a_bad_job(tmp_path):
    from batchgpt.errors import JobError
    from batchgpt.estimate import dry_run
    from batchgpt.jobs import Overrides, load

    lines = [{"id": f"i{i}", "prompt": f"question {i}", "max_tokens": 10} for i in range(5)]
    lines.append({"id": "talk", "type": "conversation", "turns": ["hi", "and then?"]})
    job = tmp_path / "j.jsonl"
    job.write_text("".join(json.dumps({"type": "chat", **line}) + "\n" for line in lines))
    loaded, rows = dry_run(job, Overrides(model="gpt-4o-mini"))
    assert loaded.count == load(job, Overrides(model="gpt-4o-mini")).count == 7  # five items, two turns
    assert rows[-1]["requests"] == 7
    job.write_text(job.read_text() + json.dumps({"type": "chat", "id": "i1", "prompt": "again"}) + "\n")
    with pytest.raises(JobError) as caught:
        dry_run(job, Overrides(model="gpt-4o-mini"))
    assert [p.line for p in caught.value.problems] == [7] and "duplicate id 'i1'" in str(caught.value.problems[0])


def _halved_and_whole(monkeypatch, job, overrides):
    """dry_run's answer (rows, or the problems it raised) with the job split in two processes, then
    walked whole in one; and how the split ended: "merged" (the other process's findings added),
    "walked here" (its half walked again in this process), "stopped" (at the problem cap in the
    first half) or "no split". Tests check the last, so none can pass by not splitting."""
    from batchgpt import dryfork as module
    from batchgpt.errors import JobError
    from batchgpt.estimate import dry_run

    how: list[str] = []
    real_halves, real_adds_up, real_received = module.halves, module._adds_up, module._received

    def received(receiver):
        part = real_received(receiver)
        how.extend([] if part is not None else ["walked here"])
        return part

    def adds_up(check, part):
        fits = real_adds_up(check, part)
        how.append("merged" if fits else "walked here")
        return fits

    def halves(job, check, estimator):
        groups = real_halves(job, check, estimator)
        how.extend(["no split"] if groups is None else ["stopped"] if check.stopped else [])
        return groups

    monkeypatch.setattr(module, "_received", received)
    monkeypatch.setattr(module, "_adds_up", adds_up)
    monkeypatch.setattr(module, "halves", halves)
    answers = []
    for split in (0, 1 << 40):
        monkeypatch.setattr(module, "SPLIT_BYTES", split)
        monkeypatch.setattr(module, "SPLIT_FILES", split)
        try:
            loaded, rows = dry_run(job, overrides)
            answers.append((loaded.count, rows))
        except JobError as exc:
            answers.append(([str(p) for p in exc.problems], None))
    assert how[-1] == "no split"
    return answers[0], answers[1], how[0]


def _mixed_lines(n: int) -> list[str]:
    lines = []
    for i in range(n):
        kind = ("chat", "translate", "embedding")[i % 3]
        line = {"type": kind, "id": f"i{i}", "max_tokens": 5 + i % 7}
        line.update(
            {"chat": {"prompt": f"q {i} " * (1 + i % 5)}, "translate": {"text": f"t{i}", "target_lang": "fr"}}.get(
                kind, {"text": f"embed {i}"}
            )
        )
        if kind == "embedding":
            del line["max_tokens"]
        if i % 4 == 0:
            line["model"] = "gpt-4o"
        lines.append(json.dumps(line))
    return lines


def test_a_job_split_in_two_processes_estimates_as_one_walk(tmp_path, monkeypatch):
    from batchgpt.jobs import Overrides

    job = tmp_path / "big.jsonl"
    job.write_text("\ufeff" + "\n".join(_mixed_lines(400)) + "\n\n")  # a BOM, and a blank line at the end
    halved, whole, how = _halved_and_whole(monkeypatch, job, Overrides(model="gpt-4o-mini"))
    assert how == "merged" and halved == whole
    assert whole[0] == 400 and len(whole[1]) == 6 + 1  # 3 types x 2 models, then TOTAL


def test_a_split_job_reports_the_problems_of_one_walk_at_the_same_lines(tmp_path, monkeypatch):
    from batchgpt.jobs import Overrides

    lines = _mixed_lines(400)
    lines[10] = "{not json"
    lines[350] = json.dumps({"type": "chat", "id": "i3", "prompt": "again"})  # i3 is on line 4, in the first half
    lines[360] = json.dumps({"type": "chat", "id": "x", "prompt": "p", "colour": "red"})
    lines[370] = json.dumps({"type": "chat", "id": "i3", "prompt": "and again"})
    job = tmp_path / "bad.jsonl"
    job.write_text("\n".join(lines) + "\n")
    halved, whole, how = _halved_and_whole(monkeypatch, job, Overrides(model="gpt-4o-mini"))
    assert how == "walked here" and halved == whole  # an id in both halves: the second is walked here again
    assert [p.split(": ")[0].rsplit(":", 1)[1] for p in whole[0]] == ["11", "351", "361", "371"]
    assert "duplicate id 'i3'" in whole[0][1] and "duplicate id 'i3'" in whole[0][3]


def test_problems_in_the_second_half_alone_are_merged_at_their_lines(tmp_path, monkeypatch):
    from batchgpt.jobs import Overrides

    lines = _mixed_lines(400)
    lines[300] = "[1]"
    lines[330] = json.dumps({"type": "chat", "id": "y", "prompt": "p", "colour": "red"})
    job = tmp_path / "bad.jsonl"
    job.write_text("\n".join(lines) + "\n")
    halved, whole, how = _halved_and_whole(monkeypatch, job, Overrides(model="gpt-4o-mini"))
    assert how == "merged" and halved == whole
    assert [p.split(": ")[0].rsplit(":", 1)[1] for p in whole[0]] == ["301", "331"]


@pytest.mark.parametrize(
    "bad,how", [((0, 1500), "stopped"), ((1000, 2400), "walked here"), ((0, 600), "merged")], ids=str
)
def test_past_the_problem_cap_a_split_job_says_what_one_walk_says(tmp_path, monkeypatch, bad, how):
    from batchgpt.jobs import MAX_PROBLEMS, Overrides

    lines = _mixed_lines(3000)
    for n in range(*bad):  # no target language: each such item fails its check, and the cap stops a walk
        lines[n] = json.dumps({"type": "translate", "id": f"m{n}", "text": "hi"})
    lines[-1] = json.dumps({"type": "chat", "prompt": "p", "colour": "red"})  # a walk stopped before it never sees it
    job = tmp_path / "capped.jsonl"
    job.write_text("\n".join(lines) + "\n")
    halved, whole, ended = _halved_and_whole(monkeypatch, job, Overrides(model="gpt-4o-mini"))
    assert ended == how and halved == whole
    count = bad[1] - bad[0] + 1
    assert len(whole[0]) == (MAX_PROBLEMS + 1 if count > MAX_PROBLEMS else count)  # then "... and N more"


def test_when_the_second_process_fails_this_one_walks_its_half(tmp_path, monkeypatch):
    import os

    from batchgpt import dryfork as module
    from batchgpt.estimate import dry_run
    from batchgpt.jobs import Overrides

    job = tmp_path / "big.jsonl"
    job.write_text("\n".join(_mixed_lines(300)) + "\n")
    expected = _halved_and_whole(monkeypatch, job, Overrides(model="gpt-4o-mini"))[1]
    monkeypatch.setattr(module, "_estimate_part", lambda *args: os._exit(3))  # dies without a word
    monkeypatch.setattr(module, "SPLIT_BYTES", 0)
    loaded, rows = dry_run(job, Overrides(model="gpt-4o-mini"))
    assert (loaded.count, rows) == expected


def test_a_split_dry_run_warns_once_of_an_encoding_it_cannot_load(tmp_path):
    import subprocess
    import sys

    job = tmp_path / "big.jsonl"
    job.write_text("\n".join(_mixed_lines(300)) + "\n")
    script = (  # tiktoken offline, in both processes; each process's warnings go to its own stderr
        "import logging, tiktoken, batchgpt.estimate as m, batchgpt.dryfork as f; from batchgpt.jobs import Overrides\n"
        "logging.basicConfig(level=logging.WARNING)\n"
        "tiktoken.get_encoding = lambda name: (_ for _ in ()).throw(ConnectionError('offline'))\n"
        "f.SPLIT_BYTES = 0\n"
        f"print(m.dry_run({str(job)!r}, Overrides(model='gpt-4o-mini'))[1][-1]['notes'])\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    warned = [line for line in done.stderr.splitlines() if "tiktoken cannot load" in line]
    assert warned and len(warned) == len(set(warned)), done.stderr  # each encoding once, not once a process
    assert "tiktoken could not load" in done.stdout


def test_a_job_with_lone_cr_line_ends_reads_as_its_lines(tmp_path, monkeypatch):
    from batchgpt.jobs import Overrides

    job = tmp_path / "mac.jsonl"
    job.write_bytes("\r".join(_mixed_lines(300)).encode() + b"\r")
    halved, whole, how = _halved_and_whole(monkeypatch, job, Overrides(model="gpt-4o-mini"))
    assert how == "no split" and halved == whole and whole[0] == 300  # each CR ends a line, as text mode read it


def test_a_dry_run_in_a_daemonic_process_walks_in_one(tmp_path):
    import multiprocessing

    job = tmp_path / "big.jsonl"
    job.write_text("\n".join(_mixed_lines(300)) + "\n")
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    worker = context.Process(target=_dry_run_count, args=(job, results), daemon=True)
    worker.start()
    assert results.get(timeout=60) == 300  # not "daemonic processes are not allowed to have children"
    worker.join(10)


def _dry_run_count(job, results) -> None:
    from batchgpt import dryfork
    from batchgpt.estimate import dry_run
    from batchgpt.jobs import Overrides

    dryfork.SPLIT_BYTES = 0
    try:
        results.put(dry_run(job, Overrides(model="gpt-4o-mini"))[0].count)
    except BaseException as exc:  # the test reads what went wrong
        results.put(repr(exc))


def test_killing_a_split_dry_run_leaves_no_process_behind(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    job = tmp_path / "big.jsonl"
    job.write_text("\n".join(_mixed_lines(30_000)) + "\n")  # the other half's findings overflow a pipe's buffer
    # The parent walks its half slowly, so it is surely killed while the other process waits to send.
    script = (
        "import multiprocessing, time, batchgpt.estimate as m, batchgpt.dryfork as f\n"
        "from batchgpt.jobs import Overrides\n"
        "f.SPLIT_BYTES = 0\n"
        "real = f.sums\n"
        "def slow(stream, estimator):\n"
        "    if multiprocessing.parent_process() is None: time.sleep(30)\n"
        "    return real(stream, estimator)\n"
        "f.sums = slow\n"
        f"m.dry_run({str(job)!r}, Overrides(model='gpt-4o-mini'))\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    children: list[str] = []
    for _ in range(100):  # until the split has forked
        children = open(f"/proc/{parent.pid}/task/{parent.pid}/children").read().split()
        if children:
            break
        time.sleep(0.1)
    assert children, "the dry run did not split"
    time.sleep(2)  # the other process is done with its half, and waits to send
    parent.send_signal(signal.SIGTERM)
    # Returns once no process holds its output open: the child too has ended. On a busy machine the child may
    # still be walking its half when the parent dies; it ends at its send, so the wait is generous, and a
    # child waiting forever to send still fails it.
    parent.communicate(timeout=60)
    assert parent.returncode == -signal.SIGTERM


def test_image_inputs_are_estimated_at_their_most_so_the_estimate_is_never_below_the_bill(cli, server, tmp_path):
    from test_budget import image_lines, jsonl_job

    job = jsonl_job(tmp_path / "pictures.jsonl", image_lines(4))
    [row, total] = estimate(load(job))
    assert "image inputs counted at the most" in row["notes"] and "approximate" in row["notes"]
    assert row["prompt_tokens"] >= 4 * 1445  # each image at gpt-4o's most: 8 tiles
    result = cli("run", job)
    assert result.exit_code == 0, result.output
    spent = float(re.search(r"cost \$(\d+\.\d+) this run", result.stderr).group(1))
    assert spent > 4 * 765 * 2.5 / 1e6  # billed for its images (765 tokens each at $2.50 a million)
    assert total["cost_usd_max"] >= spent
