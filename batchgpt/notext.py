"""Where a job's files stop being text: a byte that is not UTF-8, a NUL, a control character YAML
refuses, located by line and column (and the field, where the line says) instead of the byte
offset a decoder gives.

Files are decoded with `surrogateescape` (`decoded`), so a byte that is not UTF-8 stays in the
text as a lone surrogate, U+DC80-U+DCFF, at its place, and reading goes on past it: each bad line
or row is reported at its own line, and the rest is still read. A data file may be in another
encoding (`items_from: {path: ..., encoding: gbk}`): its text is decoded the same way, and a byte
that encoding does not decode is said to be not text of that encoding.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A byte that is not UTF-8 (surrogateescape's) or a NUL: what no text of a job may hold.
NOT_TEXT = re.compile("[\x00\udc80-\udcff]")
# What YAML's reader refuses (yaml/reader.py, NON_PRINTABLE): NOT_TEXT and the other controls.
NOT_YAML = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
NOT_DECODED = re.compile("[\udc80-\udcff]")  # a byte the file's encoding does not decode
SAVE_AS_UTF8 = "save the file as UTF-8"
NUL_IN_CSV = "\udc00"  # a NUL, as CSV rows carry it (Python 3.10's csv module refuses a NUL)
_UTF16 = ("\udcff\udcfe", "\udcfe\udcff")  # UTF-16's byte-order marks, as `decoded` keeps them
# A key in a line of JSON or YAML: quoted, or bare and followed by a space; strings are skipped
# whole, so a colon in a value is not taken for a key.
_TOKEN = re.compile(
    r"""(?P<quoted>"(?:[^"\\]|\\.)*"|'(?:[^']|'')*')\s*:"""
    r"""|(?P<bare>[^\s:,{}\[\]"'#-][^\s:,{}\[\]"']*)\s*:(?=\s|$)"""
    r"""|(?P<mark>[{}\[\],])|"(?:[^"\\]|\\.)*"?|'(?:[^']|'')*'?|."""
)


@dataclass(frozen=True)
class NotText:
    """The first character of a text that no job file may hold: its line, and what it is and its
    column (and field) in words."""

    line: int
    message: str


def decoded(data: bytes) -> str:
    """UTF-8 `data` as text, a BOM left out, each byte that is not UTF-8 kept (see the module)."""
    return data.decode("utf-8-sig", "surrogateescape")


def find(
    text: str, pattern: re.Pattern[str] = NOT_TEXT, encoding: str = "UTF-8", advice: str = SAVE_AS_UTF8
) -> NotText | None:
    """The first character of `text` that `pattern` finds, located; None when there is none. A
    byte not decoded is said to be no text of `encoding` (the file's), then what to do (`advice`)."""
    if text.startswith(_UTF16):
        return NotText(1, "the file is UTF-16 (it starts with UTF-16's byte-order mark): save it as UTF-8")
    match = pattern.search(text)
    if match is None:
        return None
    index = match.start()
    start = text.rfind("\n", 0, index) + 1
    field = key_before(text[start:index])
    where = f"at column {index - start + 1}" + (f" (in {field!r})" if field else "")
    return NotText(text.count("\n", 0, index) + 1, what(text[index], where, encoding, advice))


def escaped(text: str) -> bool:
    """Whether `text` holds a byte that is not UTF-8 (or a CSV's NUL): a lone surrogate, which no
    UTF-8 encodes. ASCII holds none; else encoding tells, ten times faster than a search."""
    if text.isascii():
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return True
    return False


def in_cells(header: list[str], cells: list[str], encoding: str = "UTF-8", advice: str = SAVE_AS_UTF8) -> str | None:
    """What is wrong with a CSV row whose cells hold a byte that is not UTF-8 (nor text of the
    file's `encoding`) or a NUL, named by its column's header; None for a sound row."""
    for name, cell in zip(header, cells, strict=False):
        found = _in_cell(cell)
        if found is not None:
            char, index = found
            return what(char, f"in column {name!r} (its character {index})", encoding, advice)
    return None


def in_header(header: list[str], encoding: str = "UTF-8", advice: str = SAVE_AS_UTF8) -> str | None:
    """What is wrong with a CSV header whose names hold a byte that is not text or a NUL, named by
    the column's place; None for a sound header."""
    for number, name in enumerate(header, 1):
        found = _in_cell(name)
        if found is not None:
            char, index = found
            return what(char, f"in the header, column {number} (its character {index})", encoding, advice)
    return None


def _in_cell(cell: str) -> tuple[str, int] | None:
    """A cell's first byte that is not text or NUL, and its place (from 1)."""
    if not escaped(cell):
        return None
    match = re.search(f"[{NUL_IN_CSV}\udc80-\udcff]", cell)
    if match is None:
        return None
    return ("\x00" if match.group() == NUL_IN_CSV else match.group()), match.start() + 1


def what(char: str, where: str, encoding: str = "UTF-8", advice: str = SAVE_AS_UTF8) -> str:
    """A character no job file may hold, said with where it is; a byte the file's `encoding` does
    not decode with what to do (`advice`, none if empty)."""
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:
        return f"not {encoding} text: byte 0x{code - 0xDC00:02x} {where}" + (f"; {advice}" if advice else "")
    if code == 0:
        return f"a NUL byte {where}: not text (is the file UTF-16, or binary?)"
    return f"control character U+{code:04X} {where}: not allowed here; write it as an escape (\\x{code:02x})"


def key_before(prefix: str) -> str | None:
    """The key whose value `prefix` (a line up to some column) ends in, as one line of JSON or
    YAML writes it (`"prompt": "...`, `- {id: a, prompt: ...`); an item of a list is in the list's
    key. None where the line names none."""
    key: str | None = None
    outer: list[tuple[str, str | None]] = []  # the open brackets, each with the key it opened in
    for token in _TOKEN.finditer(prefix):
        quoted, bare, mark = token["quoted"], token["bare"], token["mark"]
        if quoted is not None or bare is not None:
            key = quoted[1:-1] if quoted is not None else bare
        elif mark in ("{", "["):
            outer.append((mark, key))
            key = None if mark == "{" else key
        elif mark in ("}", "]") and outer:
            key = None
            outer.pop()
        elif mark == "," and outer:  # the value is over (outside brackets, YAML's commas are text)
            key = outer[-1][1] if outer[-1][0] == "[" else None
    return key
