"""YAML and JSON job files that are not plain JSON data: each is a located problem, never a traceback."""

from __future__ import annotations

import re

import pytest
from test_jobs import problems, write

from batchgpt.jobs import MAX_DEPTH, MAX_YAML_BYTES, load, requests
from batchgpt.jobs import yamldoc as jobs


@pytest.fixture(autouse=True, params=["libyaml", "python"])
def loader(request, monkeypatch):
    """Every test here runs with libyaml's parser and with the pure-Python one it falls back to."""
    if request.param == "python":
        monkeypatch.setattr(jobs, "_LOADER", jobs._PyLoader)
    elif jobs._LOADER is jobs._PyLoader:
        pytest.skip("PyYAML is built without libyaml")


# ------------------------------------------------------------ item 11: values YAML reads as non-JSON types


def test_the_readme_azure_api_version_is_read_as_written(tmp_path):
    job = write(
        tmp_path,
        """\
provider: {kind: azure, base_url: https://r.openai.azure.com, api_version: 2024-10-21}
defaults: {model: m}
tasks:
  - {type: chat, items: [{prompt: a}]}
""",
    )
    assert load(job).provider.api_version == "2024-10-21"


def test_date_and_timestamp_ids_are_kept_as_written(tmp_path):
    job = write(
        tmp_path,
        """\
defaults: {model: m}
tasks:
  - type: chat
    items:
      - {id: 2024-01-01, prompt: a}
      - {id: 2024-01-01 10:00:00, prompt: b}
      - {id: 2024-1-2T3:04:05Z, prompt: c}
""",
    )
    assert [r.id for r in requests(load(job))] == ["2024-01-01", "2024-01-01 10:00:00", "2024-1-2T3:04:05Z"]


def test_a_date_where_a_number_belongs_is_a_located_error(tmp_path):
    job = write(
        tmp_path,
        "defaults: {model: m}\ntasks:\n  - type: chat\n    items:\n      - {prompt: a, temperature: 2024-01-01}\n",
    )
    assert problems(job) == [f"{job}:5: '2024-01-01' is not of type 'number' (at /tasks/0/items/0/temperature)"]


def test_binary_sets_and_ordered_maps_are_located_errors_and_the_rest_is_still_checked(tmp_path):
    job = write(
        tmp_path,
        """\
defaults: {model: m}
tasks:
  - type: chat
    items:
      - {prompt: a, params: {x: !!binary aGVsbG8=}}
      - {prompt: b, params: !!set {a, b}}
      - {prompt: !!omap [a: 1], temperature: 9}
      - {promt: typo}
""",
    )
    found = problems(job)
    assert f"{job}:5: !!binary values are not JSON: write the text itself (at /tasks/0/items/0/params/x)" in found
    assert f"{job}:6: !!set values are not JSON: write a list (at /tasks/0/items/1/params)" in found
    assert f"{job}:7: !!omap values are not JSON: write a mapping (at /tasks/0/items/2/prompt)" in found
    assert f"{job}:7: 9 is greater than the maximum of 2 (at /tasks/0/items/2/temperature)" in found
    assert any(p.startswith(f"{job}:8: ") and "promt" in p for p in found)
    assert len(found) == 6  # the placeholders left for the bad values add no complaints of their own


def test_mapping_keys_are_text_so_a_number_key_is_an_unknown_key_and_logit_bias_still_works(tmp_path):
    job = write(
        tmp_path,
        """\
defaults: {model: m}
2024-01-01: x
tasks:
  - type: chat
    items:
      - {prompt: a, 5: x}
      - {prompt: b, params: {logit_bias: {50256: -100}}}
""",
    )
    found = problems(job)
    assert f"{job}:2: unknown key '2024-01-01' (at /2024-01-01)" in found
    assert f"{job}:6: unknown key '5' (at /tasks/0/items/0/5)" in found
    assert len(found) == 2
    fixed = write(
        tmp_path,
        "defaults: {model: m}\ntasks:\n  - {type: chat, items: [{prompt: b, params: {logit_bias: {50256: -100}}}]}\n",
    )
    [request] = requests(load(fixed))
    assert request.body["logit_bias"] == {"50256": -100}


def test_a_list_as_a_mapping_key_is_a_located_error(tmp_path):
    job = write(tmp_path, "defaults: {model: m}\ntasks:\n  - type: chat\n    items:\n      - {prompt: a, [x, y]: z}\n")
    [message] = problems(job)
    assert message.startswith(f"{job}:5: ") and "key" in message


# ----------------------------------------------------------------------------- item 12: deep nesting


@pytest.mark.parametrize("style", ["flow", "block", "json"])
def test_deep_nesting_is_a_located_error(tmp_path, style):
    depth = 500
    if style == "block":
        text = "defaults: {model: m}\ntasks:\n  - type: chat\n    items:\n      - prompt: a\n        params:\n"
        text += "".join("  " * (5 + i) + f"k{i}:\n" for i in range(depth)) + "  " * (5 + depth) + "v: 1\n"
        job = write(tmp_path, text)
    else:
        deep = "[" * depth + "]" * depth
        text = (
            '{"defaults": {"model": "m"},\n "tasks": [{"type": "chat",\n  "items": [{"prompt": "a",\n'
            f'   "params": {{"x": {deep}}}}}]}}]}}\n'
        )
        job = write(tmp_path, text, "job.json" if style == "json" else "job.yaml")
    [message] = problems(job)
    assert f"nested more than {MAX_DEPTH} levels" in message
    assert message.startswith(f"{job}:") and message.split(":")[1].isdigit()


def test_nesting_through_aliases_and_alias_cycles_are_located_errors(tmp_path):
    chain = ["a0: &a0 [x]"] + [f"a{i}: &a{i} [*a{i - 1}]" for i in range(1, 400)]
    job = write(
        tmp_path,
        "\n".join(chain) + "\ndefaults: {model: m}\ntasks: [{type: chat, items: [{prompt: a, params: {x: *a399}}]}]\n",
    )
    [message] = problems(job)
    assert f"nested more than {MAX_DEPTH} levels" in message and message.startswith(f"{job}:")
    cycle = write(
        tmp_path, "defaults: {model: m}\nx: &a [*a]\ntasks: [{type: chat, items: [{prompt: a}]}]\n", "cycle.yaml"
    )
    [message] = problems(cycle)
    assert f"nested more than {MAX_DEPTH} levels" in message and message.startswith(f"{cycle}:")


def test_nesting_within_the_limit_is_sent(tmp_path):
    inner = "[" * (MAX_DEPTH - 8) + "]" * (MAX_DEPTH - 8)
    job = write(
        tmp_path,
        f"defaults: {{model: m}}\ntasks:\n  - {{type: chat, items: [{{prompt: a, params: {{x: {inner}}}}}]}}\n",
    )
    [request] = requests(load(job))
    assert request.payload.count(b"[") == MAX_DEPTH - 8 + 1  # the messages list, plus the nested lists


# ----------------------------------------------------------------------------- item 13: size


def test_a_yaml_with_too_many_values_is_refused_while_reading_it(tmp_path, monkeypatch):
    monkeypatch.setattr(jobs, "MAX_YAML_NODES", 1000)
    job = write(
        tmp_path,
        "defaults: {model: m}\ntasks:\n  - type: chat\n    items:\n"
        + "".join(f"      - prompt: q{i}\n" for i in range(20_000)),
    )
    [message] = problems(job)
    assert "more than 1,000 keys and values" in message and "JSONL" in message and "items_from" in message
    # It stopped at the 1,001st node (three a row: the row, a key, a value), not after the whole file.
    assert message.startswith(f"{job}:") and int(message.split(":")[1]) < 400


def test_a_yaml_over_the_byte_limit_is_refused_at_once(tmp_path, monkeypatch):
    job = tmp_path / "big.yaml"
    with job.open("w") as handle:
        handle.write("defaults: {model: m}\ntasks:\n  - type: chat\n    items:\n")
        handle.write("      - prompt: q\n" * (MAX_YAML_BYTES // 17 + 1))

    def parse(*args: object) -> None:
        raise AssertionError("a file over the byte limit was parsed")

    monkeypatch.setattr(jobs, "parse", parse)  # at once: before parsing, whatever the machine's speed
    [message] = problems(job)
    assert "JSONL" in message and "items_from" in message


# ------------------------------------------------------------ item 14: duplicate keys, NaN and infinity


def test_duplicate_keys_are_located_errors(tmp_path):
    job = write(
        tmp_path,
        """\
defaults: {model: m, model: n}
limits: {rpm: 5}
tasks:
  - type: chat
    items:
      - prompt: a
        temperature: 0.5
        prompt: b
limits: {rpm: 6}
""",
    )
    found = problems(job)
    assert f"{job}:1: duplicate key 'model': the first one would be ignored (at /defaults/model)" in found
    assert f"{job}:8: duplicate key 'prompt': the first one would be ignored (at /tasks/0/items/0/prompt)" in found
    assert f"{job}:9: duplicate key 'limits': the first one would be ignored (at /limits)" in found
    assert len(found) == 3


def test_a_merge_key_may_be_overridden(tmp_path):
    job = write(
        tmp_path,
        """\
base: &base {model: m, temperature: 0.1}
defaults:
  <<: *base
  temperature: 0.2
tasks: [{type: chat, items: [{prompt: a}]}]
""",
    )
    # `base` itself is not a job key; the merge and its override are not duplicates.
    assert problems(job) == [f"{job}:1: unknown key 'base' (at /base)"]


def test_nan_and_infinity_are_located_errors(tmp_path):
    job = write(
        tmp_path,
        """\
defaults: {model: m, temperature: .nan}
tasks:
  - type: chat
    items:
      - {prompt: a, params: {x: .inf, y: [-.Inf], z: 1.0e+999}}
""",
    )
    found = problems(job)
    assert f"{job}:1: .nan is not a number JSON can carry (at /defaults/temperature)" in found
    assert f"{job}:5: .inf is not a number JSON can carry (at /tasks/0/items/0/params/x)" in found
    assert f"{job}:5: -.Inf is not a number JSON can carry (at /tasks/0/items/0/params/y/0)" in found
    assert f"{job}:5: 1.0e+999 is not a number JSON can carry (at /tasks/0/items/0/params/z)" in found
    assert len(found) == 4


def test_json_jobs_read_numbers_as_json_does_and_refuse_bare_words(tmp_path):
    job = write(
        tmp_path,
        '{"defaults": {"model": "m", "max_tokens": 1e2},\n "tasks": [{"type": "chat",\n'
        '  "items": [{"prompt": "a", "params": {"x": NaN, "y": -Infinity, "z": 1e999}}]}]}\n',
        "job.json",
    )
    found = problems(job)
    assert f"{job}:3: NaN is not a number JSON can carry (at /tasks/0/items/0/params/x)" in found
    assert f"{job}:3: -Infinity is not a number JSON can carry (at /tasks/0/items/0/params/y)" in found
    assert f"{job}:3: 1e999 is not a number JSON can carry (at /tasks/0/items/0/params/z)" in found
    assert len(found) == 3
    fine = write(
        tmp_path,
        '{"defaults": {"model": "m", "max_tokens": 100, "temperature": 5e-1},\n'
        ' "tasks": [{"type": "chat", "items": [{"prompt": "a", "params": {"x": 1.5E+3}}]}]}\n',
        "fine.json",
    )
    [request] = requests(load(fine))
    assert request.body["temperature"] == 0.5 and request.body["x"] == 1500.0


def test_a_job_given_as_a_dict_is_held_to_json_too():
    found = problems(
        {
            "defaults": {"model": "m", "temperature": float("nan")},
            "tasks": [{"type": "chat", "items": [{"prompt": "a", "params": {"x": b"raw", 5: "y"}}]}],
        }
    )
    assert "<job>: NaN is not a number JSON can carry (at /defaults/temperature)" in found
    assert "<job>: bytes values are not JSON (at /tasks/0/items/0/params/x)" in found
    assert "<job>: key 5 is not text: JSON keys are strings (at /tasks/0/items/0/params)" in found


EIGHT_MISTAKES = """\
name: bad-job
defaults:
  model: gpt-4o-mini
  temperature: 5
output:
  results: out/results.xlsx
limits:
  concurrency: 0
tasks:
  - type: translate
    target_lang: French
    items:
      - id: a
        text: hello
      - id: a
        text: again
      - text: 3
  - type: translate
    items:
      - id: b
        text: no language
  - type: chat
    template: "Say {missing} about {text}"
    items_from: data.csv
  - type: chat
    prompt: hi
"""


def test_one_pass_reports_every_problem_in_line_order(tmp_path):
    """Schema errors (a bad default among them) used to end the check: 3 of 8 mistakes were
    reported, and fixing them revealed the rest."""
    write(tmp_path, "id,text\nr1,hello\nr2,world\n", "data.csv")
    found = problems(write(tmp_path, EIGHT_MISTAKES))
    lines = ["{}:{}".format(*re.match(r".*?([^/]+):(\d+): ", p).groups()) for p in found]
    assert lines == [
        "job.yaml:4", "job.yaml:6", "job.yaml:8", "job.yaml:15", "job.yaml:17", "job.yaml:20", "job.yaml:23",
        "job.yaml:25",
    ]  # fmt: skip
    assert "duplicate id 'a'" in found[3] and "target language" in found[5] and "'.xlsx'" in found[1]
    assert "field `missing` not in data.csv: 2 rows lack it, the first at line 2" in found[6]


def test_an_unknown_key_in_an_item_is_not_blamed_on_its_task(tmp_path):
    job = """\
defaults: {model: gpt-4o-mini}
tasks:
  - type: translate
    target_lang: French
    items:
      - {id: a, text: hello, colour: red}
  - type: chat
    items:
      - {id: b, prompt: hi, target_lang: French}
"""
    assert [p.split(": ", 1)[1] for p in problems(write(tmp_path, job))] == [
        "unknown key 'colour' (at /tasks/0/items/0/colour)",
        "key 'target_lang' is not allowed here (at /tasks/1/items/0/target_lang)",
    ]


def test_past_the_cap_the_rest_are_counted_in_words():
    from batchgpt.jobs.problems import MAX_PROBLEMS, Problems

    found = Problems("job.yaml")
    for n in range(MAX_PROBLEMS + 1, 0, -1):
        found.add("bad", line=n)
    listed = found.listed()
    assert listed[-1].message == "... and 1 more problem"
    assert [p.line for p in listed[:3]] == [2, 3, 4]  # in line order, whatever order they were found in
