"""Prompt token counts: tiktoken with each model's encoding, or an approximation said to be one.

Counts feed the tokens-per-minute limiter, the budget's worst case and the dry-run estimate. Where
tiktoken cannot load an encoding (no internet and no cache, or a download that does not finish in
BATCHGPT_TOKENIZER_TIMEOUT seconds) the count falls back to about four characters per token (a
Chinese, Japanese or Korean character 1.3 tokens), and every count made that way is marked
approximate. `python -m batchgpt.tokens` fills tiktoken's cache without a time limit.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

# tiktoken's model table (tiktoken/model.py): longest families first, since "gpt-4o" starts with "gpt-4".
_O200K = ("gpt-4o", "gpt-4.1", "gpt-4.5", "chatgpt-4o", "gpt-5", "o1", "o3", "o4", "ft:gpt-4o", "gpt-oss")
_CL100K = ("gpt-4", "gpt-3.5", "gpt-35", "ft:gpt-4", "ft:gpt-3.5", "davinci-002", "babbage-002", "text-embedding-")
# OpenAI's cookbook (How_to_count_tokens_with_tiktoken): every message costs 3 tokens besides its
# contents, a name 1 more, and the reply is primed with 3.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3
CHARS_PER_TOKEN = 4
# Four characters a token holds for English; cl100k_base spends 1.2-1.3 tokens on a CJK character
# (o200k_base 0.7-0.9), so those count on their own: an estimate or a budget must not come out at
# a third of the real count for a Chinese catalogue.
TOKENS_PER_CJK = 1.3
SHORT, SHORT_KEPT = 32, 100_000  # texts this short have their counts kept, up to this many
# A stalled proxy holds tiktoken's download forever (it sets no timeout), so a dry run hung: a load
# is waited for this long, then counts are approximate. Long enough for a 3.6 MB encoding on a
# slow link; BATCHGPT_TOKENIZER_TIMEOUT says otherwise.
LOAD_TIMEOUT = 5.0
ENCODINGS = ("o200k_base", "cl100k_base")  # the ones encoding_for names
_CJK = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]")


@dataclass(frozen=True)
class Count:
    tokens: int
    approximate: bool = False

    def __add__(self, other: Count) -> Count:
        return Count(self.tokens + other.tokens, self.approximate or other.approximate)


def encoding_for(model: str) -> tuple[str, bool]:
    """(encoding name, whether the model is known to use it). Unknown models get o200k_base."""
    name = model.rsplit("/", 1)[-1] if model.startswith("openai/") else model
    if name.startswith(_O200K) and not name.startswith("gpt-oss"):
        return "o200k_base", True
    if name.startswith(_CL100K):
        return "cl100k_base", True
    return "o200k_base", False


class Counter:
    """Counts tokens, loading each encoding once. One counter per run; not shared across threads."""

    def __init__(self, timeout: float | None = None) -> None:
        self.timeout = load_timeout() if timeout is None else timeout
        self._encodings: dict[str, Any] = {}
        self._models: dict[str, tuple[Any, bool]] = {}
        self._short: dict[tuple[str, str], int] = {}
        self._last: dict[str, tuple[str, int]] = {}  # an encoding's last longer text and its count
        self.offline = False

    def encoding(self, name: str) -> Any:
        """tiktoken's encoding, or None where it cannot be loaded."""
        if name not in self._encodings:
            try:
                self._encodings[name] = load(name, self.timeout)
            except Exception as exc:  # tiktoken raises whatever its download raised
                log.warning(
                    "tiktoken cannot load %s (%s); token counts are approximate (~%d characters a token, "
                    "%g for a CJK character). To count exactly, fill tiktoken's cache once: "
                    "TIKTOKEN_CACHE_DIR=<a folder> python -m batchgpt.tokens",
                    name,
                    _why(exc),
                    CHARS_PER_TOKEN,
                    TOKENS_PER_CJK,
                )
                self._encodings[name] = None
                self.offline = True
        return self._encodings[name]

    @property
    def unloaded(self) -> list[str]:
        """The encodings that could not be loaded (their counts are approximate)."""
        return [name for name, encoding in self._encodings.items() if encoding is None]

    def text(self, model: str, text: str) -> Count:
        encoding, approximate_ = self._encoder(model)
        return Count(self._tokens(encoding, text), approximate_)

    def messages(self, model: str, messages: Iterable[Mapping[str, Any]]) -> Count:
        encoding, approximate_ = self._encoder(model)
        tokens, counted = REPLY_PRIMING, False
        for message in messages:
            tokens += TOKENS_PER_MESSAGE
            for key, value in message.items():
                tokens += self._tokens(encoding, value if isinstance(value, str) else _content_text(value))
                counted = True
                if key == "name":
                    tokens += TOKENS_PER_NAME
        return Count(tokens, approximate_ and counted)

    def _encoder(self, model: str) -> tuple[Any, bool]:
        """(the model's encoding or None, whether its counts are approximate), looked up once."""
        if model not in self._models:
            name, known = encoding_for(model)
            encoding = self.encoding(name)
            self._models[model] = (encoding, encoding is None or not known)
        return self._models[model]

    def _tokens(self, encoding: Any, text: str) -> int:
        if encoding is None:
            return approximate(text)
        if len(text) > SHORT:
            # a task's template without fields is the same text on every item: counted once
            last = self._last.get(encoding.name)
            if last is not None and last[0] == text:
                return last[1]
            tokens = len(encoding.encode_ordinary(text))
            self._last[encoding.name] = (text, tokens)
            return tokens
        # roles, names and other short values recur on every item of a million-item job
        key = (encoding.name, text)
        if key not in self._short:
            if len(self._short) >= SHORT_KEPT:
                return len(encoding.encode_ordinary(text))
            self._short[key] = len(encoding.encode_ordinary(text))
        return self._short[key]

    def body(self, endpoint: str, body: Mapping[str, Any]) -> Count:
        """The prompt tokens of a request body, for the endpoints billed by prompt tokens."""
        model = str(body.get("model", ""))
        if endpoint == "/chat/completions":
            return self.messages(model, body.get("messages") or ())
        if endpoint == "/responses":  # text or messages, after the instructions (a system message)
            value = body.get("input")
            messages = list(value) if isinstance(value, list) else [{"role": "user", "content": str(value or "")}]
            head = [{"role": "system", "content": body["instructions"]}] if body.get("instructions") else []
            return self.messages(model, head + messages)
        text = body.get("prompt") if endpoint == "/completions" else body.get("input")
        if isinstance(text, list):
            return sum((self.text(model, t if isinstance(t, str) else _content_text(t)) for t in text), Count(0))
        return self.text(model, text if isinstance(text, str) else "")


def _content_text(value: Any) -> str:
    """Text parts of a structured message content; images, files, audio and tool calls are not
    counted here (overhead.py and vision.py count them)."""
    if isinstance(value, list):
        return "".join(part.get("text", "") for part in value if isinstance(part, Mapping))
    return "" if value is None or isinstance(value, Mapping) else str(value)


def approximate(text: str) -> int:
    """Tokens without a tokenizer: four characters a token, a CJK character TOKENS_PER_CJK."""
    cjk = len(_CJK.findall(text))
    return math.ceil((len(text) - cjk) / CHARS_PER_TOKEN + cjk * TOKENS_PER_CJK)


class _Load(threading.Thread):
    """One encoding loaded by tiktoken, in a thread of its own so that a stalled download can be
    left behind (a daemon: it never holds the process open)."""

    def __init__(self, encoding: str) -> None:
        super().__init__(name=f"tiktoken-{encoding}", daemon=True)
        self.encoding_name = encoding
        self.encoding: Any = None
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            import tiktoken

            self.encoding = tiktoken.get_encoding(self.encoding_name)
        except Exception as exc:  # noqa: BLE001 - handed to the waiting thread, which reports it
            self.error = exc


class Stalled(TimeoutError):
    """An encoding's download that did not finish in time (its reason is the message)."""


_stalled: dict[str, _Load] = {}  # loads that outlived their wait, by encoding

_SLOW = "a stalled proxy or a slow link?"


def load(name: str, timeout: float) -> Any:
    """tiktoken's encoding `name`, waited for at most `timeout` seconds (Stalled after that).
    A load left behind is not waited for again, and none other is begun while it lasts: tiktoken
    holds one lock through a download, so the next would wait behind it, and each counter anew."""
    import tiktoken.registry

    ready = getattr(tiktoken.registry, "ENCODINGS", {}).get(name)
    if ready is not None:
        return ready
    loader = _stalled.get(name)
    if loader is None:
        for other, behind in _stalled.items():
            if behind.is_alive():
                raise Stalled(f"the download of {other} has not finished: {_SLOW}")
        loader = _Load(name)
        loader.start()
        loader.join(None if cached(name) else timeout)  # reading the cache cannot stall, only be slow
        if loader.is_alive():
            _stalled[name] = loader
            raise Stalled(f"its download did not finish in {timeout:g} s: {_SLOW}")
    elif loader.is_alive():
        raise Stalled(f"its download, begun earlier, has not finished: {_SLOW}")
    _stalled.pop(name, None)
    if loader.error is not None:
        raise loader.error
    return loader.encoding


def cached(name: str) -> bool:
    """Whether tiktoken's cache holds encoding `name` (tiktoken names a download by its URL's SHA-1)."""
    folder = cache_dir()
    url = f"https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
    return bool(folder) and os.path.isfile(os.path.join(folder, hashlib.sha1(url.encode()).hexdigest()))


def load_timeout() -> float:
    """BATCHGPT_TOKENIZER_TIMEOUT in seconds, or LOAD_TIMEOUT where it is unset or no number >= 0."""
    try:
        value = float(os.environ.get("BATCHGPT_TOKENIZER_TIMEOUT", ""))
    except ValueError:
        return LOAD_TIMEOUT
    return value if math.isfinite(value) and value >= 0 else LOAD_TIMEOUT


def _why(exc: Exception) -> str:
    return str(exc) if isinstance(exc, Stalled) else type(exc).__name__


def cache_dir() -> str:
    """Where tiktoken keeps its downloads (tiktoken/load.py's rule; "" keeps none)."""
    for name in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if name in os.environ:
            return os.environ[name]
    return os.path.join(tempfile.gettempdir(), "data-gym-cache")


def main() -> int:
    """`python -m batchgpt.tokens`: download the encodings into tiktoken's cache, without a time
    limit, so that later runs count exactly (offline too, given the same TIKTOKEN_CACHE_DIR)."""
    import tiktoken

    if not cache_dir():
        print("TIKTOKEN_CACHE_DIR is empty, which turns tiktoken's cache off: set it to a folder", file=sys.stderr)
        return 1
    for name in ENCODINGS:
        print(f"{name} ...", flush=True)
        try:
            tiktoken.get_encoding(name)
        except Exception as exc:  # noqa: BLE001 - said in one line, without a traceback
            print(f"tiktoken could not download {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
    print(f"{', '.join(ENCODINGS)} are in tiktoken's cache, {cache_dir()}")
    if "TIKTOKEN_CACHE_DIR" not in os.environ:
        print("(a temporary folder: set TIKTOKEN_CACHE_DIR to keep them, here and for batchgpt)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
