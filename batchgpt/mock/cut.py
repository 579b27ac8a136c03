"""Where the mock cuts an answer at `max_tokens`: after that many of o200k_base's tokens, or, where
tiktoken cannot load it (offline, no cache), after the longest start of the text that the
approximate count (tokens.approximate, the one the mock then bills by) holds to that many. So a
rehearsal offline still ends an answer at its limit with finish_reason `length`."""

from __future__ import annotations

from batchgpt.tokens import CHARS_PER_TOKEN, Counter, approximate


def cut(text: str, most: int, counter: Counter) -> str:
    """`text` as a cap of `most` tokens leaves it (all of it when it fits)."""
    encoding = counter.encoding("o200k_base")
    if encoding is not None:
        tokens = encoding.encode_ordinary(text)
        return text if len(tokens) <= most else str(encoding.decode(tokens[:most]))
    if approximate(text) <= most:
        return text
    # The count never falls as the text grows, and a character costs at least 1/CHARS_PER_TOKEN of
    # a token, so the cut lies within the first CHARS_PER_TOKEN * most characters.
    fits, over = 0, min(len(text), CHARS_PER_TOKEN * most + 1)
    while over - fits > 1:
        middle = (fits + over) // 2
        if approximate(text[:middle]) <= most:
            fits = middle
        else:
            over = middle
    return text[:fits]
