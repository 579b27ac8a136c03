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


@pytest.mark.usefixtures("exact_encodings")
@pytest.mark.parametrize("model,expected", [("gpt-4-0613", 129), ("gpt-4o-mini-2024-07-18", 124), ("gpt-4o", 124)])
def test_chat_counts_match_the_api(model, expected):
    assert Counter().messages(model, COOKBOOK).tokens == expected


@pytest.mark.usefixtures("exact_encodings")
@pytest.mark.parametrize("model,encoding", [("gpt-4o-mini", "o200k_base"), ("gpt-3.5-turbo-instruct", "cl100k_base")])
def test_completion_prompts_count_exactly_like_tiktoken(model, encoding):
    prompt = "Translate the following English text to French: 'Hello' — 你好 🌍 <|endoftext|>"
    count = Counter().body("/completions", {"model": model, "prompt": prompt})
    assert count.tokens == len(tiktoken.get_encoding(encoding).encode(prompt, disallowed_special=()))
    assert not count.approximate


@pytest.mark.usefixtures("exact_encodings")
def test_a_longer_text_counted_again_and_then_another_each_count_as_tiktoken_does():
    """A repeated longer text (a template without fields) is counted once and kept: the next
    different text, in either order, is still counted afresh."""
    encoding, counter = tiktoken.get_encoding("o200k_base"), Counter()
    texts = ["Describe this photo in one sentence, please.", "A different and longer text than that one is."] * 2
    counts = [counter.text("gpt-4o", text).tokens for text in (*texts, texts[0], texts[0])]
    assert counts == [len(encoding.encode_ordinary(text)) for text in (*texts, texts[0], texts[0])]
    assert counts[0] != counts[1]


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
    """Four characters a token undercounted a Chinese prompt, so a dry run or a budget without
    tiktoken came out far too low."""
    text = "请把下面的产品说明翻译成英文，保持语气友好，不要遗漏任何技术参数。这款无线耳机支持主动降噪。"
    real = 55  # tiktoken's count of it in cl100k_base (33 in o200k_base): this test runs without them
    offline = Counter()
    monkeypatch.setattr(offline, "encoding", lambda name: None)  # as where tiktoken cannot load
    count = offline.text("gpt-3.5-turbo", text)
    assert count.approximate and real <= count.tokens <= real * 1.5
    assert offline.text("gpt-4o", "hello world, how are you").tokens == 6  # English: four characters a token


class _StallingProxy:
    """A proxy on 127.0.0.1 that takes every connection, reads what it is sent and never answers,
    like a corporate proxy that has stalled. Nothing sent to it goes further."""

    def __init__(self) -> None:
        import socket
        import threading

        self._socket = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self.heard: list[bytes] = []
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:  # closed
                return
            self._held.append(connection)
            self.heard.append(connection.recv(4096))

    def close(self) -> None:
        import socket

        try:  # closing alone does not wake the thread in accept(): a shutdown does
            self._socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._socket.close()
        for connection in self._held:
            connection.close()
        self._thread.join(5)


@pytest.fixture
def stalled_proxy():
    proxy = _StallingProxy()
    yield proxy
    proxy.close()


class _Words:
    """An encoding whose tokens are words: what tiktoken's loader hands back, in tests that are about
    waiting for it (so they need no real encoding)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def encode_ordinary(self, text: str) -> list[str]:
        return text.split()


def test_a_stalled_tokenizer_download_gives_approximate_counts_within_the_timeout(monkeypatch):
    """tiktoken's download sets no timeout: behind a stalled proxy it waited forever. A load that
    does not finish in time leaves counts approximate, and is not waited for again."""
    import threading

    import tiktoken.registry

    from batchgpt import tokens

    release = threading.Event()
    asked: list[str] = []

    def stalled(name):
        asked.append(name)
        release.wait(30)
        return _Words(name)

    monkeypatch.setattr(tiktoken, "get_encoding", stalled)
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})
    monkeypatch.setattr(tokens, "_stalled", {})
    monkeypatch.setattr(tokens, "cached", lambda name: False)  # a download, not a read of the cache
    try:
        counter = Counter(timeout=0.05)
        assert counter.text("gpt-4o", "x" * 40) == type(counter.text("gpt-4o", ""))(10, True)
        assert counter.offline and counter.unloaded == ["o200k_base"]
        again = Counter(timeout=30)  # a second counter (a notebook's next run) does not wait anew
        assert again.text("gpt-4", "x" * 8).approximate and again.text("gpt-4o", "x").approximate
        assert asked == ["o200k_base"]  # cl100k_base would only have queued behind tiktoken's lock
    finally:
        release.set()
    tokens._stalled["o200k_base"].join(30)
    late = Counter(timeout=30).text("gpt-4o", "hello world")  # the download that ended late is used
    assert late == type(late)(2, False) and asked == ["o200k_base"]


def test_an_encoding_in_the_cache_is_waited_for_however_slow_its_load(monkeypatch, tmp_path):
    """The timeout bounds a download, not a read of the cache: on a loaded machine (a parallel
    test run) reading o200k_base took more than the timeout, and exact counts became approximate."""
    import threading

    import tiktoken.load
    import tiktoken.registry

    from batchgpt import tokens

    url = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "filled"))
    assert not tokens.cached("o200k_base")
    monkeypatch.setattr(tiktoken.load, "read_file", lambda blobpath: b"downloaded")
    tiktoken.load.read_file_cached(url)  # tiktoken files a download in its cache, by its own rule
    assert tokens.cached("o200k_base")
    slow_load = threading.Event()

    def slow(name):
        slow_load.wait(0.3)  # longer than the timeout below
        return _Words(name)

    monkeypatch.setattr(tiktoken, "get_encoding", slow)
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})
    monkeypatch.setattr(tokens, "_stalled", {})
    counter = Counter(timeout=0.01)
    assert counter.text("gpt-4o", "hello world") == type(counter.text("gpt-4o", ""))(2, False)
    assert not counter.offline
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    assert not tokens.cached("o200k_base")
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")  # tiktoken's way of keeping no cache
    assert not tokens.cached("o200k_base")


def test_the_tokenizer_timeout_is_read_from_the_environment(monkeypatch):
    from batchgpt.tokens import LOAD_TIMEOUT, load_timeout

    for text, expected in (
        ("", LOAD_TIMEOUT),
        ("0.5", 0.5),
        ("nan", LOAD_TIMEOUT),
        ("-1", LOAD_TIMEOUT),
        ("x", LOAD_TIMEOUT),
    ):
        monkeypatch.setenv("BATCHGPT_TOKENIZER_TIMEOUT", text)
        assert load_timeout() == expected


def test_a_dry_run_behind_a_stalled_proxy_ends_with_approximate_counts(tmp_path, write_job, stalled_proxy):
    """Issue 24, item 14: with no encodings cached and a proxy that never answers, a dry run hung
    for ever in tiktoken's download."""
    import os
    import subprocess
    import sys

    job = write_job(
        {
            "name": "t",
            "defaults": {"model": "gpt-4o-mini"},
            "tasks": [{"type": "chat", "items": [{"id": "a", "prompt": "hello"}]}],
        }
    )
    (tmp_path / "cache").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(
        HTTPS_PROXY=stalled_proxy.url,
        HTTP_PROXY=stalled_proxy.url,
        TIKTOKEN_CACHE_DIR=str(tmp_path / "cache"),
        BATCHGPT_TOKENIZER_TIMEOUT="0.5",
    )
    done = subprocess.run(
        [sys.executable, "-m", "batchgpt.cli", "run", str(job), "--dry-run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert "approximate: some token counts are estimates (tiktoken could not load)" in done.stdout
    assert "did not finish in 0.5 s" in done.stderr and "python -m batchgpt.tokens" in done.stderr
    assert "Traceback" not in done.stderr
    assert stalled_proxy.heard and stalled_proxy.heard[0].startswith(b"CONNECT ")  # it went nowhere else


@pytest.mark.usefixtures("exact_encodings")
def test_python_m_batchgpt_tokens_fills_the_cache_it_is_given(tmp_path):
    """The README's way to pre-load the encodings: here from a cache that has them, offline."""
    import os
    import shutil
    import subprocess
    import sys

    from batchgpt.tokens import cache_dir

    cache = tmp_path / "cache"
    shutil.copytree(cache_dir(), cache)
    env = dict(os.environ, TIKTOKEN_CACHE_DIR=str(cache))
    done = subprocess.run(
        [sys.executable, "-m", "batchgpt.tokens"], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0 and f"o200k_base, cl100k_base are in tiktoken's cache, {cache}" in done.stdout


def test_python_m_batchgpt_tokens_refuses_a_cache_turned_off():
    import os
    import subprocess
    import sys

    env = dict(os.environ, TIKTOKEN_CACHE_DIR="")
    done = subprocess.run(
        [sys.executable, "-m", "batchgpt.tokens"], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 1 and "turns tiktoken's cache off" in done.stderr and "Traceback" not in done.stderr
