"""Job loading and validation: every problem, located by file, line and JSON pointer."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batchgpt import settings
from batchgpt.errors import JobError
from batchgpt.jobs import MAX_YAML_BYTES, Overrides, load, requests, yamldoc


def problems(path_or_doc) -> list[str]:
    with pytest.raises(JobError) as caught:
        load(path_or_doc)
    return [str(p) for p in caught.value.problems]


def write(tmp_path: Path, text: str, name: str = "job.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_every_error_is_reported_with_its_line_and_pointer(tmp_path):
    job = write(
        tmp_path,
        """\
defaults:
  model: gpt-4o-mini
limits:
  concurrency: 0
output:
  results: out/r.txt
tasks:
  - type: chat
    sytem: typo
    items:
      - prompt: hi
  - type: translate
    target_lang: fr
    items:
      - {id: a, text: one}
      - {id: a, text: two}
      - text: three
        temperature: 2.5
""",
    )
    found = problems(job)
    assert f"{job}:4: 0 is less than the minimum of 1 (at /limits/concurrency)" in found
    assert f"{job}:9: unknown key 'sytem' (did you mean 'system'?) (at /tasks/0/sytem)" in found
    assert f"{job}:18: 2.5 is greater than the maximum of 2 (at /tasks/1/items/2/temperature)" in found
    assert f"{job}:16: duplicate id 'a': ids must be unique within the job (at /tasks/1/items/1)" in found
    assert any(p.startswith(f"{job}:6: unsupported results file suffix '.txt'") for p in found)
    assert len(found) == 5


def test_yaml_syntax_errors_point_at_their_line(tmp_path):
    job = write(tmp_path, "tasks:\n  - type: chat\n    items: [\n      {prompt: a\n")
    [message] = problems(job)
    assert message.startswith(f"{job}:") and "YAML syntax error" in message
    line = int(message.split(":")[1])
    assert 3 <= line <= 5


def test_only_safe_yaml_is_loaded(tmp_path):
    job = write(tmp_path, "tasks: !!python/object/apply:os.system ['echo pwned']\n")
    [message] = problems(job)
    assert "YAML" in message and "python/object" in message


def test_a_yaml_alias_bomb_fails_fast(tmp_path, monkeypatch):
    # The expansion limit made small, so the refusal comes at once; without it, 10**9 nodes would
    # outlast the test's timeout.
    monkeypatch.setattr(yamldoc, "MAX_YAML_EXPANDED", 20_000)
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join(f'*a{i - 1}' for _ in range(10))}]" for i in range(1, 9)]
    job = write(tmp_path, "\n".join(lines) + "\ntasks: *a8\n")
    [message] = problems(job)
    assert "expands to more than 20,000 nodes" in message


def test_a_huge_yaml_file_is_refused_before_parsing(tmp_path):
    job = tmp_path / "big.yaml"
    with job.open("w") as handle:
        handle.write("tasks:\n")
        handle.write("# padding\n" * (MAX_YAML_BYTES // 10 + 1))
    [message] = problems(job)
    assert "MiB" in message and "JSONL" in message


def test_templates_need_their_fields_and_plain_names(tmp_path):
    (tmp_path / "rows.csv").write_text("question\nfirst\n", encoding="utf-8")
    job = write(
        tmp_path,
        """\
defaults: {model: m}
tasks:
  - type: chat
    template: "{question} in {language}"
    items_from: rows.csv
  - type: completion
    template: "{x.__class__}"
    items: [{x: 1}]
""",
    )
    found = problems(job)
    assert f"{job}:4: field `language` not in rows.csv: 1 row lacks it, at line 2 (at /tasks/0/template)" in found
    assert any("must be a plain field name" in p for p in found)


def test_unreadable_items_from_is_an_error(tmp_path):
    job = write(tmp_path, "defaults: {model: m}\ntasks:\n  - {type: chat, items_from: missing.csv}\n")
    [message] = problems(job)
    assert "missing.csv" in message and "cannot read items_from" in message
    assert message.startswith(f"{job}:3: ") and message.endswith("(at /tasks/0/items_from)")  # the job file's line


def test_items_from_rows_are_validated_with_their_line(tmp_path):
    (tmp_path / "rows.jsonl").write_text('{"prompt": "ok"}\n{"prompt": "x", "max_tokens": -1}\n{"promt": "y"}\n')
    job = write(tmp_path, "defaults: {model: m}\ntasks:\n  - {type: chat, items_from: rows.jsonl}\n")
    found = problems(job)
    rows = tmp_path / "rows.jsonl"
    assert f"{rows}:2: -1 is less than the minimum of 1 (at /max_tokens)" in found
    assert f"{rows}:3: missing required key 'prompt' (at /)" in found


def test_items_from_parquet_and_csv_stream_in_order(tmp_path):
    pq.write_table(pa.table({"id": ["p1", "p2"], "prompt": ["uno", "dos"]}), tmp_path / "rows.parquet")
    (tmp_path / "rows.csv").write_text('prompt,temperature\n"multi\nline",0.5\nplain,\n', encoding="utf-8")
    job = write(
        tmp_path,
        """\
defaults: {model: gpt-4o-mini}
tasks:
  - {type: chat, items_from: rows.parquet}
  - {type: completion, items_from: rows.csv}
""",
    )
    built = list(requests(load(job)))
    assert [r.id for r in built] == ["p1", "p2", "completion:1", "completion:2"]
    assert [r.seq for r in built] == [0, 1, 2, 3]
    assert built[2].body["prompt"] == "multi\nline" and built[2].body["temperature"] == 0.5
    assert "temperature" not in built[3].body


def test_jsonl_job_lines_are_checked_line_by_line(tmp_path):
    job = write(
        tmp_path,
        "\n".join(
            [
                json.dumps({"type": "chat", "prompt": "ok", "model": "m"}),
                "{not json",
                json.dumps({"type": "chat", "prompt": "x", "model": "m", "colour": "red"}),
                json.dumps({"custom_id": "c", "method": "POST", "url": "/v1/unknown", "body": {"model": "m"}}),
                json.dumps({"type": "chat", "prompt": "no model"}),
            ]
        )
        + "\n",
        "job.jsonl",
    )
    found = problems(job)
    assert found[0].startswith(f"{job}:2: invalid JSON")
    assert f"{job}:3: unknown key 'colour' (at /colour)" in found
    assert any(p.startswith(f"{job}:4:") and "/url" in p for p in found)
    assert any(p.startswith(f"{job}:5: no model") for p in found)


def test_ids_are_stable_and_explicit_ids_kept(tmp_path):
    job = write(
        tmp_path,
        """\
defaults: {model: m}
tasks:
  - {type: chat, items: [{prompt: a}, {id: 42, prompt: b}]}
  - {type: chat, items: [{prompt: c}]}
  - {type: chat, name: named, items: [{prompt: d}]}
""",
    )
    first = [r.id for r in requests(load(job))]
    assert first == ["chat-1:1", "42", "chat-2:1", "named:1"]
    assert [r.id for r in requests(load(job))] == first


def test_parameters_cascade_defaults_task_item(tmp_path):
    job = write(
        tmp_path,
        """\
defaults: {model: gpt-4o-mini, temperature: 0.7, max_tokens: 100, params: {seed: 7, user: u}}
tasks:
  - type: chat
    model: gpt-4.1
    params: {seed: 8}
    items:
      - {prompt: a, temperature: 0, params: {user: v}}
      - {prompt: b, model: o3-mini}
""",
    )
    a, b = requests(load(job))
    assert a.body["model"] == "gpt-4.1" and a.body["temperature"] == 0 and a.body["max_tokens"] == 100
    assert a.body["seed"] == 8 and a.body["user"] == "v"
    # Reasoning models take max_completion_tokens; max_tokens would be a 400.
    assert b.body["model"] == "o3-mini" and b.body["max_completion_tokens"] == 100 and "max_tokens" not in b.body


def test_a_changed_prompt_changes_the_hash_and_nothing_else_does(tmp_path):
    one = write(
        tmp_path, "defaults: {model: m}\ntasks:\n  - {type: chat, items: [{id: a, prompt: x}, {id: b, prompt: y}]}\n"
    )
    before = {r.id: r.hash for r in requests(load(one))}
    one.write_text("defaults: {model: m}\ntasks:\n  - {type: chat, items: [{id: a, prompt: x}, {id: b, prompt: z}]}\n")
    after = {r.id: r.hash for r in requests(load(one))}
    assert before["a"] == after["a"] and before["b"] != after["b"]


def test_overrides_win_and_paths_are_relative_to_the_job(tmp_path):
    job = write(
        tmp_path,
        "defaults: {model: m}\nlimits: {concurrency: 3, rpm: 10}\n"
        "output: {results: o/r.parquet}\ntasks:\n  - {type: chat, items: [{prompt: a}]}\n",
    )
    loaded = load(job, Overrides(concurrency=7, base_url="http://127.0.0.1:9/v1/"))
    assert loaded.limits.concurrency == 7 and loaded.limits.rpm == 10
    assert loaded.provider.base_url == "http://127.0.0.1:9/v1"
    assert loaded.results == tmp_path / "o" / "r.parquet"
    assert loaded.report == tmp_path / "out" / "job-report.csv"
    assert load(job, Overrides(out="x.jsonl")).results == Path("x.jsonl")


# What a job built with an override holds at each setting the schema's x-option names
_AT = {
    "provider": lambda job, key: getattr(job.provider, key),
    "limits": lambda job, key: getattr(job.limits, key),
    "defaults": lambda job, key: job.defaults[key],
}


def _held(job, path: tuple[str, ...]):
    if path[0] == "output":
        return getattr(job, path[1])  # results, report (paths), bom
    if len(path) == 1:
        return getattr(job, path[0])
    return _AT[path[0]](job, path[1])


def _other_value(schema) -> object:
    """A valid value of a setting the job file below does not hold."""
    if "enum" in schema:
        return schema["enum"][-1]
    if schema.get("type") == "integer":
        return schema.get("minimum", 0) + 4
    if schema.get("type") == "number":
        return 4.5
    if schema.get("type") == "boolean":
        return not schema.get("default", False)
    return {"^https?://": "http://127.0.0.1:9/v1", "^rediss?://": "redis://127.0.0.1:6379/3"}.get(
        schema.get("pattern"), "other.csv"
    )


@pytest.mark.parametrize("setting", settings.overrides(), ids=lambda s: s.name)
def test_each_override_wins_over_the_job_file_at_its_setting(tmp_path, setting):
    """An override reaches its setting by the schema's declaration alone (no code per setting)."""
    job = write(
        tmp_path,
        "provider: {base_url: 'http://127.0.0.1:1/v1'}\ndefaults: {model: m}\nmode: online\nbudget_usd: 1\n"
        "limits: {concurrency: 3, rpm: 10, tpm: 10, max_retries: 1, timeout: 1, shared: 'redis://h:1/0'}\n"
        "output: {results: r.csv, report: p.csv}\ntasks:\n  - {type: chat, items: [{prompt: a}]}\n",
    )
    # a CA bundle is read when the job is: it must be a file of PEM certificates
    value = str(Path(__file__).parent / "tls" / "ca.pem") if setting.name == "provider.ca_bundle" else None
    value = value or _other_value(setting.schema)
    assert setting.option is not None
    loaded = load(job, Overrides(**{setting.option.name: value}))
    assert _held(loaded, setting.path) == (
        Path(value) if setting.path[0] == "output" and isinstance(value, str) else value
    )
    assert _held(load(job), setting.path) != _held(loaded, setting.path)


def test_base_url_comes_from_the_environment_when_the_job_has_none(tmp_path, monkeypatch):
    job = write(tmp_path, "defaults: {model: m}\ntasks:\n  - {type: chat, items: [{prompt: a}]}\n")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:1234/v1")
    assert load(job).provider.base_url == "http://127.0.0.1:1234/v1"


def test_non_latin_text_is_read_unchanged(tmp_path):
    job = write(tmp_path, "defaults: {model: m}\ntasks:\n  - {type: chat, items: [{prompt: '日本語 ☕ عربى'}]}\n")
    [request] = requests(load(job))
    assert request.body["messages"][-1]["content"] == "日本語 ☕ عربى"
    assert "日本語".encode() in request.payload


def test_json_jobs_are_read_with_line_numbers_too(tmp_path):
    job = write(
        tmp_path,
        '{"defaults": {"model": "m"},\n "tasks": [{"type": "chat",\n   "items": [{"prompt": "x", "top_p": 3}]}]}\n',
        "job.json",
    )
    assert problems(job) == [f"{job}:3: 3 is greater than the maximum of 1 (at /tasks/0/items/0/top_p)"]


def test_an_item_that_is_no_mapping_is_a_located_error_not_a_crash(tmp_path):
    job = write(tmp_path, "defaults: {model: m}\ntasks: [{type: chat, items: [5, {prompt: ok}]}]\n")
    assert problems(job) == [f"{job}:2: 5 is not of type 'object' (at /tasks/0/items/0)"]


def test_a_jsonl_line_that_is_not_utf8_is_its_own_problem_not_a_crash(tmp_path):
    job = tmp_path / "job.jsonl"
    ok = json.dumps({"type": "chat", "prompt": "ok", "model": "m"}).encode()
    job.write_bytes(
        b"\xef\xbb\xbf" + ok + b"\n" + b'{"type": "chat", "prompt": "caf\xe9", "model": "m"}\n' + ok + b"\n"
    )
    # the BOM of line 1 is no problem; the bad byte is located (issue 24, item 16)
    assert problems(job) == [f"{job}:2: not UTF-8 text: byte 0xe9 at column 32 (in 'prompt'); save the file as UTF-8"]


def test_a_provider_header_no_http_request_can_carry_is_a_located_error_not_a_crash(tmp_path):
    job = write(
        tmp_path,
        'provider:\n  headers:\n    X-Team: "a\\nb"\n    bad name: x\n    X-Ok: "tab\\tis fine"\n'
        "tasks: [{type: chat, model: m, items: [{prompt: hi}]}]\n",
    )
    assert problems(job) == [
        f"{job}:2: 'bad name' is not a header name (letters, digits and !#$%&'*+.^_`|~- only) (at /provider/headers)",
        f"{job}:3: a header value may not hold a line break or another control character (at /provider/headers/X-Team)",
    ]


def test_a_header_value_ending_in_a_line_break_is_refused_too(tmp_path):
    # Python's `$` matches before a final line break: the pattern must not rely on it
    job = write(
        tmp_path,
        "provider:\n  headers:\n    X-Title: |\n      my app\ntasks: [{type: chat, model: m, items: [{prompt: hi}]}]\n",
    )
    assert problems(job) == [
        f"{job}:3: a header value may not hold a line break or another control character (at /provider/headers/X-Title)"
    ]


def test_a_jsonl_job_with_lone_cr_line_ends_is_read_line_by_line(tmp_path):
    job = tmp_path / "mac.jsonl"
    good = json.dumps({"type": "chat", "prompt": "ok", "model": "m"}).encode()
    job.write_bytes(good + b"\r" + b'{"type": "chat", "promt": "x", "model": "m"}\r' + good + b"\r")
    assert [p.split(": ")[0] for p in problems(job)] == [f"{job}:2", f"{job}:2"]  # missing prompt, unknown promt


def test_a_jsonl_line_that_is_no_object_is_said_once_and_plainly(tmp_path):
    job = write(tmp_path, '"hello"\n[1]\n{"type": "chat", "prompt": "x", "model": "m"}\n', "job.jsonl")
    assert problems(job) == [
        f"{job}:1: a line must be a JSON object, not text",
        f"{job}:2: a line must be a JSON object, not list",
    ]


def test_a_small_jsonl_job_keeps_its_checked_items_and_sends_what_was_checked(tmp_path, monkeypatch):
    """Its walks take the items `load` checked: the file is not read again, so an edit made after
    the check (by hand, or by the cron job writing the next batch) is not sent half-checked."""
    from dataclasses import replace

    from batchgpt.jobs import items

    lines = [{"type": "chat", "id": f"i{n}", "prompt": f"say {n}", "model": "m", "max_tokens": 5} for n in range(3)]
    path = write(tmp_path, "".join(json.dumps(line) + "\n" for line in lines), "job.jsonl")
    job = load(path)
    assert job.items is not None and [item.id for item in job.items] == ["i0", "i1", "i2"]
    from_file = list(requests(replace(job, items=None)))
    assert list(requests(job)) == from_file and [r.id for r in from_file] == ["i0", "i1", "i2"]
    path.write_text('{"type": "chat", "id": "late", "prompt": {"not": "checked"}}\n', encoding="utf-8")
    assert [r.payload for r in requests(job)] == [r.payload for r in from_file]
    monkeypatch.setattr(items, "KEEP_BYTES", 100)  # a bigger job streams its file on every walk
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    big = load(path)
    assert big.items is None and list(requests(big)) == from_file


def test_an_estimate_builds_the_same_requests_without_payload_or_hash(tmp_path):
    lines = [{"type": "chat", "id": f"i{n}", "prompt": f"say {n}", "model": "m", "max_tokens": 5} for n in range(3)]
    job = load(write(tmp_path, "".join(json.dumps(line) + "\n" for line in lines), "job.jsonl"))
    sent, estimated = list(requests(job)), list(requests(job, sendable=False))
    assert [(r.id, r.seq, r.body, r.max_tokens) for r in estimated] == [
        (r.id, r.seq, r.body, r.max_tokens) for r in sent
    ]
    assert all(r.payload and len(r.hash) == 32 for r in sent)
    assert all(r.payload == b"" and r.hash == "" for r in estimated)
