"""Which encoding a data file that is not UTF-8 is in, for the message that says how to read it
(`items_from: {path: ..., encoding: gbk}`), and which names `encoding:` may give.

Excel saves a CSV in the code page of the Windows it runs on: GBK on Chinese Windows, Big5 on
Taiwanese, Shift_JIS on Japanese, EUC-KR on Korean, Windows-1252 on Western ones. Most byte strings
of one of them also decode in some other, so a decoding that succeeds is not enough: the text it
gives must look like text of that encoding (its common characters). A sample too short to tell
names every encoding it reads as.
"""

from __future__ import annotations

import codecs
import difflib
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from encodings.aliases import aliases
from functools import cache

SAMPLE = 64 * 1024  # bytes of a file a guess reads: enough to tell, few enough to take a tenth of a second
_PLAUSIBLE = 0.85  # the share of a sample's characters that are common in an encoding for it to be taken


@dataclass(frozen=True)
class Guess:
    """An encoding a file reads as: its name for `encoding:` and its name for people."""

    name: str
    label: str


def _in_gb2312(char: str) -> bool:
    # GB2312 holds the 6,763 hanzi of everyday Simplified Chinese: GBK's extensions are rare in
    # text, but they are what other encodings' bytes decode to.
    return _encodes(char, "gb2312")


def _in_big5_level1(char: str) -> bool:
    # Big5's symbols and its 5,401 common hanzi (A140-C67E); level 2 holds the rarer ones
    encoded = _encoded(char, "big5")
    return encoded is not None and b"\xa1\x40" <= encoded <= b"\xc6\x7e"


def _japanese(char: str) -> bool:
    # kana, and Shift_JIS's symbols (lead bytes 81-84) and level-1 kanji (88-98)
    if "\u3040" <= char <= "\u30ff" or "\uff61" <= char <= "\uff9f":
        return True
    encoded = _encoded(char, "shift_jis")
    return encoded is not None and (0x81 <= encoded[0] <= 0x84 or 0x88 <= encoded[0] <= 0x98)


def _korean(char: str) -> bool:
    # Hangul: Korean text is nearly all Hangul, where other encodings' bytes give hanja as well
    return "\uac00" <= char <= "\ud7a3" or "\u3131" <= char <= "\u318e"


def _latin(char: str) -> bool:
    return unicodedata.category(char)[0] != "C"  # what matters is that they stand alone (_plausible)


# In the order they are named when several fit: GBK first, the encoding this was asked for.
_CANDIDATES: tuple[tuple[Guess, Callable[[str], bool]], ...] = (
    (Guess("gbk", "GBK/GB18030"), _in_gb2312),
    (Guess("gb18030", "GBK/GB18030"), _in_gb2312),  # the few files GBK does not decode
    (Guess("big5", "Big5"), _in_big5_level1),
    (Guess("shift_jis", "Shift_JIS"), _japanese),
    (Guess("euc_kr", "EUC-KR"), _korean),
    (Guess("cp1252", "Windows-1252 (Latin-1)"), _latin),
)


def guess(sample: bytes) -> list[Guess]:
    """The encodings `sample` (a file's first bytes, maybe cut mid-character) reads as, the likeliest
    first; none when it is mostly UTF-8 (a stray bad byte is no other encoding) or fits none."""
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return [Guess("utf-16", "UTF-16")]
    as_utf8 = codecs.getincrementaldecoder("utf-8")("surrogateescape").decode(sample, final=False)
    wide = [c for c in as_utf8 if not c.isascii()]
    bad = sum("\udc80" <= c <= "\udcff" for c in wide)
    if not bad or len(wide) - bad >= bad:
        return []
    found: list[Guess] = []
    for candidate, common in _CANDIDATES:
        text = _decoded(sample, candidate.name)
        if text is None or any(g.label == candidate.label for g in found):
            continue
        if _plausible(text, common, candidate.name == "cp1252"):
            found.append(candidate)
    return found[:3]


def _decoded(sample: bytes, encoding: str) -> str | None:
    try:
        return codecs.getincrementaldecoder(encoding)("strict").decode(sample, final=False)
    except UnicodeDecodeError:
        return None


def _plausible(text: str, common: Callable[[str], bool], single_byte: bool) -> bool:
    """Whether most of the text's characters outside ASCII are common ones of the encoding. In a
    single-byte encoding they must also stand alone, as accented letters do in words: two-byte
    characters of any other encoding come in runs of two and more."""
    wide = [i for i, c in enumerate(text) if not c.isascii()]
    if not wide:
        return False
    if single_byte:
        alone = sum(text[i - 1 : i].isascii() and text[i + 1 : i + 2].isascii() for i in wide)
        if alone < len(wide) / 2:
            return False
    return sum(common(text[i]) for i in wide) >= _PLAUSIBLE * len(wide)


def advice(guesses: list[Guess], written: str) -> str:
    """What to set, for a file `written` (as the job names it) that reads as `guesses`."""
    first, *others = guesses
    said = f"it reads as {first.label}: set `items_from: {{path: {written}, encoding: {first.name}}}`"
    if others:
        said += " (or " + ", ".join(f"{g.label}: `encoding: {g.name}`" for g in others) + ")"
    return said


@cache
def _encoded(char: str, encoding: str) -> bytes | None:
    try:
        return char.encode(encoding)
    except UnicodeEncodeError:
        return None


def _encodes(char: str, encoding: str) -> bool:
    return _encoded(char, encoding) is not None


def encoding_problem(name: str) -> str | None:
    """Why `encoding:` cannot be `name`, if it cannot: Python has no text codec of that name."""
    try:
        known = codecs.lookup(name)
    except LookupError:
        close = difflib.get_close_matches(name.lower().replace("-", "_"), _names(), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else " (such as utf-8, gbk, gb18030, big5, shift_jis, cp1252)"
        return f"unknown encoding {name!r}{hint}"
    if not known._is_text_encoding:  # rot13, base64: codecs, but not of text
        return f"{name!r} is not a text encoding (such as utf-8, gbk, gb18030, big5, shift_jis, cp1252)"
    return None


@cache
def _names() -> list[str]:
    return sorted(set(aliases) | set(aliases.values()))
