"""Secrets out of whatever a server sends: the API key, the values of headers that carry
credentials, and the credentials of the base and proxy URLs, in every encoding a server may echo
them in.

Some proxies echo a request's headers in their errors (as they are, JSON-escaped, percent-encoded
in a URL, base64-encoded in a token of their own), a redirect may point to a URL holding them, and
a model may repeat what it was sent: everything a server sends is stripped of them as it arrives
(client.py, sse.py, answers.py), so no message, output, log or stored row downstream can hold
them. logs.py strips the keys of the environment from every line the same way.

The encodings: plain; JSON escapes (`\\u0073`, `\\/`, `\\"`); percent-encoding, in either case of
hex digit, twice over (`%2573`) and with `+` for a space; base64, standard or URL-safe, padded or
not, and at any byte alignment inside a longer base64 text: the characters that only the secret's
bytes decide, at each of the three offsets a secret can start at in a group of three bytes. So
`Bearer KEY` and `user:KEY` (Basic auth) in base64 are found too, and a header dump in base64.

Most texts hold none: a few substring searches (the secrets, and for each a stretch of its base64
at each offset) and, only when the text has escapes, a decoding of them, say so (`held`). The
regular expression that finds every encoding of every secret, character by character, is compiled
on the first text that holds one and run only on such texts.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from functools import cached_property
from typing import Any, AnyStr
from urllib.parse import parse_qsl, unquote

from .records import Provider

REDACTED = "****"
MIN_SECRET = 4  # a shorter key or password would be found in every other word of an answer
# The least of a secret's base64 worth looking for: 12 characters (72 bits) no image's base64 holds
# by chance. A secret of 10 characters or more reaches it at every offset; a shorter one is looked
# for in base64 only as "Bearer SECRET".
MIN_BASE64 = 12
MIN_MARK = 8  # a base64 stretch without + or / (the characters URL-safe base64 changes) to screen with
# Headers that carry credentials (by their name). Others (X-Title, HTTP-Referer) are no secrets,
# and hiding their values would mangle answers that mention them.
_SECRET_HEADER = re.compile(r"auth|key|token|secret|cookie|password|signature", re.IGNORECASE)
_SCHEMES = ("bearer", "basic", "token")
_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "/": "\\/", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_URLSAFE = {"+": "-", "/": "_"}
_TO_URLSAFE = str.maketrans(_URLSAFE)


class Secrets:
    """Finds a set of secrets, in every encoding (see the module's docstring), and replaces them."""

    def __init__(self, values: Iterable[str | None]) -> None:
        self._secrets = sorted({v for v in values if v and len(v) >= MIN_SECRET}, key=len, reverse=True)
        # A secret that holds another (a header's "Bearer TOKEN", its TOKEN) is found by the other's marks.
        inner = [s for s in self._secrets if not any(o != s and o in s for o in self._secrets)]
        self._marks = sorted({m for s in inner for m in _marks(s)}, key=len)
        self._bmarks = [m.encode() for m in self._marks]
        chars = set("".join(inner))
        self._plus = " " in chars  # '+' may stand for a space in a query
        # The JSON escapes that may hide a secret's characters: \u escapes (of ASCII characters only,
        # unless a secret holds others: a CJK answer's thousands of \u escapes hide nothing), \/,
        # \\ (JSON quoted in JSON: \\u0073) and \" only when a secret holds a quote (answers hold many).
        unicode = r"u[0-9a-fA-F]{4}" if any(ord(c) > 0x7F for c in chars) else r"u00[0-7][0-9a-fA-F]"
        quote = '"' if '"' in chars else ""
        self._json_text = re.compile(rf"\\({unicode}|[/\\{quote}])")
        self._json_bytes = re.compile(self._json_text.pattern.encode())
        # The last bytes `raw` found clean, so that `escaped`, asked of them next, need not look again
        self._clean: bytes | None = None

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def text(self, value: str) -> str:
        if not self._secrets or not self.held(value):
            return value
        cut = self._text_pattern.sub(REDACTED, value)
        # Nested deeper than the expression reaches (base64 of a percent-encoded key): all of it goes.
        return REDACTED if self.held(cut) else cut

    def raw(self, value: bytes) -> bytes:
        """`value` with every secret the expression finds replaced; `escaped` then says whether a
        secret is nested deeper in it (the JSON's strings are then redacted one by one, `tree`)."""
        if not self._secrets:
            return value
        if not self.held(value):
            self._clean = value
            return value
        return self._bytes_pattern.sub(REDACTED.encode(), value)

    def tree(self, value: Any) -> Any:
        """A decoded answer with secrets replaced in every string, keys included."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(k): self.tree(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.tree(v) for v in value]
        return value

    def escaped(self, raw: bytes) -> bool:
        """Whether a JSON text that went through `raw` still holds a secret, under encodings within
        encodings: then it is decoded and its strings redacted one by one (`tree`)."""
        return bool(self._secrets) and raw is not self._clean and self.held(raw)

    def held(self, value: AnyStr) -> bool:
        """Whether `value` holds a secret, as it is or once its escapes are decoded (three times
        over at most: a percent-encoded key in a JSON-escaped message is decoded twice)."""
        marks: list[Any] = self._bmarks if isinstance(value, bytes) else self._marks
        for _ in range(4):
            for mark in marks:
                if mark in value:
                    return True
            decoded = self._decoded(value)
            if decoded is None:
                return False
            value = decoded
        return False

    def _decoded(self, value: AnyStr) -> AnyStr | None:
        """`value` with the JSON escapes and the percent-encoding that may hide a secret decoded;
        None when it has none (most texts: that costs a search for each of two characters)."""
        if isinstance(value, bytes):
            return _decoded_bytes(value, self._json_bytes, self._plus)
        return _decoded_text(value, self._json_text, self._plus)

    @cached_property
    def _text_pattern(self) -> re.Pattern[str]:
        return re.compile(_pattern(self._secrets))

    @cached_property
    def _bytes_pattern(self) -> re.Pattern[bytes]:
        return re.compile(_pattern(self._secrets).encode("utf-8", "surrogateescape"))


class Redactor(Secrets):
    """A provider's secrets: the key, the values of headers that carry credentials (and their token
    after a scheme such as "Bearer"), the credentials of the base and proxy URLs (as written, and
    as the Basic auth they are sent as) and the base URL's query values named like credentials."""

    def __init__(self, provider: Provider, api_key: str | None, proxy: str | None = None):
        secrets = {api_key}
        for name, value in provider.headers:
            if _SECRET_HEADER.search(name):
                scheme, _, token = value.partition(" ")
                secrets |= {value, token if scheme.lower() in _SCHEMES else None}
        for url in (provider.base_url, provider.proxy, proxy):
            secrets |= _credentials(url or "")
        super().__init__(secrets)


def _credentials(url: str) -> set[str | None]:
    """A URL's password, its user:password, and that as Basic auth sends it (base64); and the values
    of its query named like credentials (`?key=...`, as some gateways take a key)."""
    query = url.partition("?")[2]
    found: set[str | None] = {v for k, v in parse_qsl(query) if _SECRET_HEADER.search(k)}
    userinfo = url.partition("://")[2].partition("/")[0].rpartition("@")[0]
    if not userinfo:
        return found
    user, _, password = userinfo.partition(":")
    plain = unquote(userinfo)
    return found | {password, unquote(password), userinfo, plain, base64.b64encode(plain.encode()).decode()}


def _marks(secret: str) -> set[str]:
    """What finds `secret` in a text at little cost: itself, and for each of its base64 stretches
    the longest run of characters that both base64 alphabets share."""
    marks = {secret}
    for stretch in _base64_stretches(secret):
        run = max(re.split(r"[+/]", stretch), key=len)
        marks |= {run} if len(run) >= MIN_MARK else {stretch, stretch.translate(_TO_URLSAFE)}
    return marks


def _base64_stretches(secret: str) -> set[str]:
    """The base64 characters only the secret's bytes decide, at each of the three byte offsets it
    may start at in a longer text (standard alphabet); "Bearer SECRET"'s for a short secret."""
    data = secret.encode()
    contexts = [data] if len(data) >= 10 else [data, b"Bearer " + data]
    stretches = set()
    for context in contexts:
        for offset in range(3):
            padded = b"\0" * offset + context
            encoded = base64.b64encode(padded + b"\0" * (-len(padded) % 3)).decode()
            # characters from the first that holds no bit of the bytes before, to the last that holds none after
            stretch = encoded[-(-8 * offset // 6) : 8 * len(padded) // 6]
            if len(stretch) >= MIN_BASE64:
                stretches.add(stretch)
    return stretches


def _pattern(secrets: list[str]) -> str:
    """A regular expression for every secret, longest first, and each of its base64 stretches, in
    every encoding: each character as itself or escaped in any of the ways a server may."""
    forms = {s: False for s in secrets} | {b: True for s in secrets for b in _base64_stretches(s)}
    ordered = sorted(forms, key=len, reverse=True)
    return "|".join("".join(_character(c, forms[form]) for c in form) for form in ordered)


def _character(char: str, base64_: bool) -> str:
    """One character of a secret, or of its base64 (in either alphabet), in every encoding."""
    ways: list[str] = []
    for one in (char, _URLSAFE.get(char, char)) if base64_ else (char,):
        utf8 = one.encode("utf-8", "surrogatepass")
        ways += [re.escape(one), "".join("%" + _hex(b, 2) for b in utf8), "".join("%25" + _hex(b, 2) for b in utf8)]
        ways.append(_json_u(ord(one)))
        if one in _JSON_ESCAPES:
            ways.append(re.escape(_JSON_ESCAPES[one]))
    if char == " ":
        ways.append(r"\+")
    return "(?:" + "|".join(dict.fromkeys(ways)) + ")"


def _json_u(point: int) -> str:
    """A character as JSON's \\u escape: a pair of UTF-16 surrogates past the first plane."""
    if point > 0xFFFF:
        high, low = 0xD800 + ((point - 0x10000) >> 10), 0xDC00 + ((point - 0x10000) & 0x3FF)
        return _json_u(high) + _json_u(low)
    return r"\\u" + _hex(point, 4)


def _hex(number: int, digits: int) -> str:
    """`number` in hex as a pattern that takes either case of its letters."""
    return "".join(f"[{d}{d.lower()}]" if d.isalpha() else d for d in f"{number:0{digits}X}")


_PERCENT_TEXT = re.compile(r"%[0-9A-Fa-f]{2}")
_PERCENT_BYTES = re.compile(rb"%([0-9A-Fa-f]{2})")


def _decoded_text(value: str, json_escape: re.Pattern[str], plus: bool) -> str | None:
    decoded = None
    if "\\" in value:  # one search for a character first: a regular expression's costs ten
        value, count = json_escape.subn(_unescaped_text, value)
        decoded = value if count else decoded
    if "%" in value and _PERCENT_TEXT.search(value):
        decoded = value = unquote(value, errors="surrogateescape")  # UTF-8 bytes as the characters they spell
    if plus and "+" in value:
        decoded = value = value.replace("+", " ")
    return decoded


def _decoded_bytes(value: bytes, json_escape: re.Pattern[bytes], plus: bool) -> bytes | None:
    decoded = None
    if b"\\" in value:
        value, count = json_escape.subn(_unescaped_bytes, value)
        decoded = value if count else decoded
    if b"%" in value:
        value, count = _PERCENT_BYTES.subn(_unpercent_bytes, value)
        decoded = value if count else decoded
    if plus and b"+" in value:
        decoded = value = value.replace(b"+", b" ")
    return decoded


def _unpercent_bytes(match: re.Match[bytes]) -> bytes:
    return bytes((int(match.group(1), 16),))


def _unescaped_text(match: re.Match[str]) -> str:
    escape = match.group(1)
    return chr(int(escape[1:], 16)) if len(escape) == 5 else escape


def _unescaped_bytes(match: re.Match[bytes]) -> bytes:
    escape = match.group(1)
    return chr(int(escape[1:], 16)).encode("utf-8", "surrogatepass") if len(escape) == 5 else escape
