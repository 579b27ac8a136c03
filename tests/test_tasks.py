"""Task types: bodies built and answers read."""

from __future__ import annotations

import pytest

from batchgpt.records import Reply
from batchgpt.tasks import TASKS, MalformedReply, strip_fences, template_fields


def chat_answer(content, **usage):
    return {
        "choices": [{"message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, **usage},
    }


def test_translate_asks_for_the_translation_only():
    body = TASKS["translate"].body({"text": "Hello"}, {"source_lang": "en", "target_lang": "fr"}, {"model": "m"})
    system, user = body["messages"]
    assert "from en into fr" in system["content"] and "translation only" in system["content"]
    assert user == {"role": "user", "content": "Hello"}
    assert TASKS["translate"].parse(chat_answer("  Bonjour\n")).output == "Bonjour"


def test_code_asks_for_code_only_and_strips_fences():
    body = TASKS["code"].body({"description": "fib"}, {"language": "rust"}, {"model": "m"})
    assert "rust code" in body["messages"][0]["content"] and "no Markdown fences" in body["messages"][0]["content"]
    answer = chat_answer("Here you go:\n```rust\nfn main() {}\n```\nEnjoy")
    assert TASKS["code"].parse(answer).output == "fn main() {}"


@pytest.mark.parametrize(
    "text,code",
    [
        ("```python\nx = 1\n```", "x = 1"),
        ("```\nplain\n```", "plain"),
        ("no fence at all\n", "no fence at all"),
        ("```js\nunclosed()", "unclosed()"),
        ("```py\na\n```\n```py\nb\n```", "a"),
    ],
)
def test_strip_fences(text, code):
    assert strip_fences(text) == code


def test_chat_answer_usage_details_are_read():
    reply = TASKS["chat"].parse(
        chat_answer("hi", prompt_tokens_details={"cached_tokens": 3}, completion_tokens_details={"reasoning_tokens": 1})
    )
    assert reply == Reply(output="hi", prompt_tokens=5, completion_tokens=2, cached_tokens=3, reasoning_tokens=1)


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"choices": []},
        {"choices": ["x"]},
        {"choices": [{"message": None}]},
        {"choices": [{"message": {"content": "x"}}], "usage": "bad"},
    ],
)
def test_malformed_chat_answers_raise(data):
    with pytest.raises(MalformedReply):
        TASKS["chat"].parse(data)


def test_completion_reads_text_and_rejects_bad_shapes():
    assert TASKS["completion"].parse({"choices": [{"text": "abc"}], "usage": {}}).output == "abc"
    with pytest.raises(MalformedReply):
        TASKS["completion"].parse({"choices": [{"message": {"content": "abc"}}]})


def test_stream_and_params_go_into_the_body():
    body = TASKS["chat"].body(
        {"prompt": "p"},
        {},
        {
            "model": "gpt-4o",
            "stream": True,
            "stop": "x",
            "params": {"seed": 1, "response_format": {"type": "json_object"}},
        },
    )
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["stop"] == "x" and body["seed"] == 1 and body["response_format"] == {"type": "json_object"}


def test_template_fields():
    assert template_fields("{a} and {b} {{literal}}") == ["a", "b"]
    for bad in ("{a.b}", "{a[0]}", "{a!r}", "{a:>10}"):
        with pytest.raises(ValueError):
            template_fields(bad)
    with pytest.raises(ValueError):
        template_fields("{unclosed")


def usage(**extra):
    return {"usage": {"prompt_tokens": 1, "completion_tokens": 1}, **extra}


def test_content_as_a_list_of_parts_is_read_and_anything_else_is_malformed():
    from batchgpt.tasks import TASKS, MalformedReply

    parts = [{"type": "text", "text": "Bon"}, {"type": "text", "text": "jour "}]
    answer = usage(choices=[{"message": {"role": "assistant", "content": parts}}])
    assert TASKS["translate"].parse(answer).output == "Bonjour"
    for content in (42, [{"type": "text", "text": 7}], {"text": "x"}):
        with pytest.raises(MalformedReply):
            TASKS["code"].parse(usage(choices=[{"message": {"role": "assistant", "content": content}}]))


def test_odd_shapes_of_embeddings_and_images_are_malformed_not_crashes():
    from batchgpt.tasks import TASKS, MalformedReply

    with pytest.raises(MalformedReply):
        TASKS["embedding"].parse(usage(data=[{"index": "1", "embedding": [0.1]}, {"index": 0, "embedding": [0.2]}]))
    with pytest.raises(MalformedReply):
        TASKS["image"].parse({"data": [{"b64_json": 12345}]})


def test_a_servers_own_underscore_fields_are_no_timings():
    from batchgpt.tasks import TASKS

    reply = TASKS["chat"].parse(usage(choices=[{"message": {"content": "hi"}}], _ttft_s="soon"))
    assert reply.output == "hi"  # the time to first token comes from the client, never from the answer
