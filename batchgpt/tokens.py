"""Prompt token counts: tiktoken with each model's encoding, or an approximation said to be one.

Counts feed the tokens-per-minute limiter, the budget's worst case and the dry-run estimate. Where
tiktoken cannot load an encoding (no internet and no cache) the count falls back to about four
characters per token (a Chinese, Japanese or Korean character 1.3 tokens), and every count made
that way is marked approximate.
"""

from __future__ import annotations

import logging
import math
import re
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

    def __init__(self) -> None:
        self._encodings: dict[str, Any] = {}
        self._models: dict[str, tuple[Any, bool]] = {}
        self._short: dict[tuple[str, str], int] = {}
        self.offline = False

    def encoding(self, name: str) -> Any:
        """tiktoken's encoding, or None where it cannot be loaded."""
        if name not in self._encodings:
            try:
                import tiktoken

                self._encodings[name] = tiktoken.get_encoding(name)
            except Exception as exc:  # tiktoken raises whatever its download raised
                log.warning(
                    "tiktoken cannot load %s (%s); token counts are approximate (~%d characters a token, "
                    "%g for a CJK character)",
                    name,
                    type(exc).__name__,
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
            return len(encoding.encode_ordinary(text))
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
