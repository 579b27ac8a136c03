"""schema.py on its own: JSON pointers, the wording of schema errors, and what JSON cannot carry."""

from __future__ import annotations

import math

import pytest

from batchgpt import schema

VALID_JOB = {"tasks": [{"type": "chat", "items": [{"prompt": "hi"}]}]}


# ----------------------------------------------------------------------------- pointer


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ((), ""),
        (("tasks",), "/tasks"),
        (("tasks", 0, "items", 12), "/tasks/0/items/12"),
        (("a/b",), "/a~1b"),  # RFC 6901: "/" inside a key is escaped as ~1
        (("a~b",), "/a~0b"),  # and "~" as ~0
        (("~/",), "/~0~1"),  # each escaped once: the ~ of ~1 is not escaped again
        ([0, "x"], "/0/x"),  # a list path reads the same as a tuple
        (("",), "/"),  # the empty key is not the root
    ],
)
def test_pointer_follows_rfc_6901(path, expected):
    assert schema.pointer(path) == expected


# ----------------------------------------------------------------------------- messages


def test_a_valid_job_has_no_errors():
    assert list(schema.errors(VALID_JOB)) == []


@pytest.mark.parametrize(
    ("instance", "expected"),
    [
        ({}, [((), "missing required key 'tasks'")]),
        ({"tasks": [{"type": "chat"}]}, [(("tasks", 0), "a task needs `items` or `items_from`")]),
        (
            {**VALID_JOB, "limits": {"concurrency": 0}},
            [(("limits", "concurrency"), "0 is less than the minimum of 1")],
        ),
        (
            {"tasks": [{"type": "chat", "temperature": "hot", "items": [{"prompt": "hi"}]}]},
            [(("tasks", 0, "temperature"), "'hot' is not of type 'number'")],
        ),
    ],
)
def test_errors_are_worded_for_people_and_located_by_path(instance, expected):
    assert list(schema.errors(instance)) == expected


def test_an_unknown_key_is_pointed_at_with_the_key_it_resembles():
    found = list(schema.errors({**VALID_JOB, "limts": {}}))
    assert found == [(("limts",), "unknown key 'limts' (did you mean 'limits'?)")]


def test_an_unknown_key_resembling_nothing_gets_no_suggestion():
    found = list(schema.errors({**VALID_JOB, "zzzqqq": 1}))
    assert found == [(("zzzqqq",), "unknown key 'zzzqqq'")]


def test_a_key_known_elsewhere_is_not_allowed_here():
    item = {"prompt": "hi", "target_lang": "fr"}  # a translate field on a chat item
    found = list(schema.errors({"tasks": [{"type": "chat", "items": [item]}]}))
    assert found == [(("tasks", 0, "items", 0, "target_lang"), "key 'target_lang' is not allowed here")]


def test_errors_check_against_one_definition():
    assert list(schema.errors({"prompt": "hi"}, "chat_item")) == []
    found = list(schema.errors({"prompt": "hi", "tempreature": 1}, "chat_item"))
    assert found == [(("tempreature",), "unknown key 'tempreature' (did you mean 'temperature'?)")]


def test_every_missing_key_is_reported():
    found = list(schema.errors({"custom_id": "a"}, "batch_line"))
    assert found == [((), "missing required key 'url'"), ((), "missing required key 'body'")]


def test_a_known_key_called_unexpected_beside_a_real_error_is_a_cascade_and_left_out():
    # The failing `prompt` makes jsonschema call the object's other keys unevaluated too.
    found = list(schema.errors({"prompt": 5, "target_lang": "fr"}, "chat_item"))
    assert found == [(("prompt",), "5 is not of type 'string'")]


def test_an_unknown_key_is_reported_even_beside_a_real_error():
    found = list(schema.errors({"prompt": 5, "tempreature": 1}, "chat_item"))
    assert found == [
        (("prompt",), "5 is not of type 'string'"),
        (("tempreature",), "unknown key 'tempreature' (did you mean 'temperature'?)"),
    ]


def test_a_long_message_is_cut_short():
    ((path, message),) = schema.errors({**VALID_JOB, "name": "x" * 1000})
    assert path == ("name",)
    assert len(message) == 240 and message.endswith("...")


def test_known_keys_holds_keys_from_every_level_of_the_schema():
    assert {"tasks", "limits", "concurrency", "prompt", "target_lang", "custom_id"} <= schema.known_keys()


def test_the_fast_validator_agrees_with_the_wording_one():
    for instance in ({"prompt": "hi"}, {"prompt": 5}, {"prompt": "hi", "extra": 1}):
        fast = schema.fast_validator("chat_item").is_valid(instance)
        assert fast == schema.validator("chat_item").is_valid(instance)


# ----------------------------------------------------------------------------- json_problems


@pytest.mark.parametrize(
    "instance",
    [
        VALID_JOB,
        {"a": [1, 2.5, True, None, "x", {"b": []}]},
        {"min": -(2**63), "max": 2**64 - 1},
        (1, 2),  # a tuple is written as a list
        "text",
        None,
    ],
)
def test_plain_json_has_no_problems(instance):
    assert schema.json_problems(instance, 100) == []


@pytest.mark.parametrize(
    ("instance", "expected"),
    [
        ({"t": float("nan")}, [(("t",), "NaN is not a number JSON can carry")]),
        ({"t": [0, math.inf]}, [(("t", 1), "Infinity is not a number JSON can carry")]),
        ({"t": -math.inf}, [(("t",), "-Infinity is not a number JSON can carry")]),
        (
            {"n": 2**64},
            [(("n",), "18446744073709551616 does not fit in 64 bits, which is the most a request can carry")],
        ),
        ({"s": {1, 2}}, [(("s",), "set values are not JSON")]),
        ({"b": b"x"}, [(("b",), "bytes values are not JSON")]),
        ({1: "one"}, [((), "key 1 is not text: JSON keys are strings")]),
    ],
)
def test_what_json_cannot_carry_is_located(instance, expected):
    assert schema.json_problems(instance, 100) == expected


def test_every_problem_is_found_not_only_the_first():
    found = schema.json_problems({"a": math.nan, "b": [b"x"], "c": {2: 1}}, 100)
    assert [path for path, _ in found] == [("a",), ("b", 0), ("c",)]


def test_a_child_of_a_key_that_is_not_text_is_located_under_the_key_as_text():
    found = schema.json_problems({7: math.nan}, 100)
    assert found == [((), "key 7 is not text: JSON keys are strings"), (("7",), "NaN is not a number JSON can carry")]


def test_too_deep_ends_the_search_with_one_problem_at_the_top_key():
    deep = {"a": {"b": [[[1]]]}}
    assert schema.json_problems(deep, 10) == []
    assert schema.json_problems(deep, 3) == [(("a",), "nested more than 3 levels deep: refusing to read it")]


def test_a_cycle_is_refused_as_too_deep_instead_of_recursing_forever():
    cycle: list[object] = []
    cycle.append(cycle)
    assert schema.json_problems(cycle, 100) == [((0,), "nested more than 100 levels deep: refusing to read it")]


# ----------------------------------------------------------------------------- number_problem


@pytest.mark.parametrize("value", [0, 1.5, -(2**63), 2**64 - 1, True, False, "NaN", None])
def test_numbers_json_can_carry_and_non_numbers_have_no_problem(value):
    assert schema.number_problem(value, "as written") is None


@pytest.mark.parametrize(
    ("value", "written", "expected"),
    [
        (math.nan, ".nan", ".nan is not a number JSON can carry"),
        (-math.inf, "-.inf", "-.inf is not a number JSON can carry"),
        (2**64, "2**64", "2**64 does not fit in 64 bits, which is the most a request can carry"),
        (
            -(2**63) - 1,
            "-9223372036854775809",
            "-9223372036854775809 does not fit in 64 bits, which is the most a request can carry",
        ),
    ],
)
def test_a_number_json_cannot_carry_is_named_as_written(value, written, expected):
    assert schema.number_problem(value, written) == expected


def test_a_line_type_validator_accepts_exactly_what_the_whole_line_schema_does():
    # a valid line of each type, then each key the schema knows added to it, with values of each JSON kind
    values = ["text", 3, 0.5, True, None, ["a"], [{"role": "user", "content": "hi"}], {"a": 1}]
    fields = [{"prompt": "hi"}, {"text": "hi", "target_lang": "fr"}, {"input": "hi"}, {"turns": ["hi"]}]
    fields += [{"file": "a.wav"}, {"text": "hi"}, {"messages": [{"role": "user", "content": "hi"}]}]
    fields += [{"description": "a parser"}, {}]
    whole = schema.fast_validator("line")
    compared = accepted = 0
    for kind in schema.job_schema()["$defs"]["line"]["properties"]["type"]["enum"]:
        own = schema.line_validator(kind)
        bases = [{"type": kind, **f} for f in fields if whole.is_valid({"type": kind, **f})]
        assert bases, kind
        for base in bases:
            for key in sorted(schema.known_keys()):
                for value in values:
                    line = {**base, key: value}
                    assert own.is_valid(line) == whole.is_valid(line), line
                    compared += 1
                    accepted += whole.is_valid(line)
    assert accepted > 150 and compared - accepted > 5000  # both answers are well represented
