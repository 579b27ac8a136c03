"""The mock's log probabilities: each token of an answer (o200k_base's tokens, or pieces of four
characters where tiktoken cannot load it) is certain (logprob 0), and its alternatives, asked for
by `top_logprobs` (chat) or `logprobs` (legacy completions), are the next token ids down, each a
nat less likely than the one before. Deterministic, shaped as the API's, and enough for a client
to read them."""

from __future__ import annotations

from typing import Any

from batchgpt.tokens import CHARS_PER_TOKEN, Counter


def _tokens(text: str, counter: Counter) -> list[tuple[str, bytes, list[tuple[str, bytes]]]]:
    """(token, its bytes, alternatives (token, bytes) most likely first) for each token of `text`."""
    encoding = counter.encoding("o200k_base")
    if encoding is None:
        return _pieces(text)
    found = []
    for token in encoding.encode_ordinary(text):
        spelled = encoding.decode_single_token_bytes(token)
        others = []
        for other in range(token + 1, token + 21):
            try:
                raw = encoding.decode_single_token_bytes(other)
            except KeyError:
                break
            others.append((raw.decode("utf-8", "replace"), raw))
        found.append((spelled.decode("utf-8", "replace"), spelled, others))
    return found


def _pieces(text: str) -> list[tuple[str, bytes, list[tuple[str, bytes]]]]:
    """Without tiktoken's encoding (offline, no cache): pieces of CHARS_PER_TOKEN characters, as
    the approximate count has them; each one's alternatives are its last character moved up the
    code points, one to twenty."""
    found = []
    for at in range(0, len(text), CHARS_PER_TOKEN):
        piece = text[at : at + CHARS_PER_TOKEN]
        moved = (ord(piece[-1]) + k for k in range(1, 21))
        others = [piece[:-1] + chr(c) for c in moved if c <= 0x10FFFF and not 0xD800 <= c <= 0xDFFF]
        found.append((piece, _bytes(piece), [(other, _bytes(other)) for other in others]))
    return found


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def chat_logprobs(text: str, top: int, counter: Counter) -> dict[str, Any]:
    """A chat choice's `logprobs`: `content` with `top` alternatives a token (the token first)."""
    content = []
    for token, raw, others in _tokens(text, counter):
        ranked = [(token, raw), *others][:top]
        content.append(
            {
                "token": token,
                "logprob": 0.0,
                "bytes": list(raw),
                "top_logprobs": [
                    {"token": t, "logprob": -float(k), "bytes": list(b)} for k, (t, b) in enumerate(ranked)
                ],
            }
        )
    return {"content": content, "refusal": None}


def completion_logprobs(text: str, top: int, counter: Counter) -> dict[str, Any]:
    """A legacy completion choice's `logprobs`: tokens, their logprobs, offsets and alternatives."""
    tokens, offsets, tops, at = [], [], [], 0
    for token, _, others in _tokens(text, counter):
        tokens.append(token)
        offsets.append(at)
        at += len(token)
        ranked = [token, *(t for t, _ in others)][:top]
        tops.append({t: -float(k) for k, t in reversed(list(enumerate(ranked)))})
    return {"tokens": tokens, "token_logprobs": [0.0] * len(tokens), "top_logprobs": tops, "text_offset": offsets}
