"""Token counts: tiktoken's own counts, OpenAI's chat overhead, and the offline fallback."""

from __future__ import annotations

import pytest
import tiktoken

from batchgpt.tokens import Counter, encoding_for

# The cookbook's example conversation; OpenAI's API counted it as 129 (cl100k) and 124 (o200k).
COOKBOOK = [
    {
        "role": "system",
        "content": "You are a helpful, pattern-following assistant that translates corporate jargon "
        "into plain English.",
    },
    {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
    {"role": "system", "name": "example_assistant", "content": "Things working well together will increase revenue."},
    {
        "role": "system",
        "name": "example_user",
        "content": "Let's circle back when we have more bandwidth to touch base on opportunities for "
        "increased leverage.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Let's talk later when we're less busy about how to do better.",
    },
    {
        "role": "user",
        "content": "This late pivot means we don't have time to boil the ocean for the client deliverable.",
    },
]


@pytest.mark.parametrize("model,expected", [("gpt-4-0613", 129), ("gpt-4o-mini-2024-07-18", 124), ("gpt-4o", 124)])
def test_chat_counts_match_the_api(model, expected):
    assert Counter().messages(model, COOKBOOK).tokens == expected


@pytest.mark.parametrize("model,encoding", [("gpt-4o-mini", "o200k_base"), ("gpt-3.5-turbo-instruct", "cl100k_base")])
def test_completion_prompts_count_exactly_like_tiktoken(model, encoding):
    prompt = "Translate the following English text to French: 'Hello' — 你好 🌍 <|endoftext|>"
    count = Counter().body("/completions", {"model": model, "prompt": prompt})
    assert count.tokens == len(tiktoken.get_encoding(encoding).encode(prompt, disallowed_special=()))
    assert not count.approximate


@pytest.mark.parametrize(
    "model,encoding,known",
    [
        ("gpt-4o", "o200k_base", True),
        ("gpt-4.1-mini", "o200k_base", True),
        ("gpt-5", "o200k_base", True),
        ("o3-mini", "o200k_base", True),
        ("gpt-4", "cl100k_base", True),
        ("gpt-4-turbo", "cl100k_base", True),
        ("gpt-3.5-turbo", "cl100k_base", True),
        ("text-embedding-3-small", "cl100k_base", True),
        ("llama3", "o200k_base", False),
        ("gpt-oss-20b", "o200k_base", False),
    ],
)
def test_model_families_pick_their_encoding(model, encoding, known):
    assert encoding_for(model) == (encoding, known)


def test_unknown_models_are_counted_but_marked_approximate():
    assert Counter().text("mistral-large", "hello world").approximate


def test_without_tiktoken_data_counts_fall_back_and_say_so(monkeypatch, tmp_path):
    import tiktoken.load

    def offline(*args, **kwargs):
        raise ConnectionError("no internet")

    monkeypatch.setattr(tiktoken.load, "read_file_cached", offline)
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})
    counter = Counter()
    count = counter.text("gpt-4o", "x" * 40)
    assert count == type(count)(10, True)
    assert counter.offline


def test_without_tiktoken_chinese_is_not_counted_at_a_third(monkeypatch):
    """Four characters a token undercounted a Chinese prompt (17 against 47 in o200k_base and 74
    in cl100k_base), so a dry run or a budget without tiktoken came out far too low."""
    import tiktoken

    text = "请把下面的产品说明翻译成英文，保持语气友好，不要遗漏任何技术参数。这款无线耳机支持主动降噪。"
    real = max(len(tiktoken.get_encoding(name).encode(text)) for name in ("cl100k_base", "o200k_base"))
    offline = Counter()
    monkeypatch.setattr(offline, "encoding", lambda name: None)  # as where tiktoken cannot load
    count = offline.text("gpt-3.5-turbo", text)
    assert count.approximate and real <= count.tokens <= real * 1.5
    assert offline.text("gpt-4o", "hello world, how are you").tokens == 6  # English: four characters a token
