"""What a hostile relay sends back of a request's credentials (the `echo-encoded`,
`echo-encoded-answer` and `redirect-key` faults): its headers in every encoding a server may echo
them in, in an error, in an answer's text, or in the URL a redirect points to.

The encodings: as they are; JSON-escaped on the wire (every character as \\u, either case of hex
digit, and `\\/`) and in the text (a JSON document quoted inside the message); percent-encoded
(reserved characters, every byte, lower-case hex, `+` for a space, twice over); and base64
(standard and URL-safe, padded and not) of the value ("Bearer KEY"), of its token alone, of
"user:TOKEN" as Basic auth sends it, and of the whole header dump behind 0, 1 and 2 bytes, so that
every value starts at each of the three offsets in a group of three bytes. A request's body names
one with `echo=NAME` (each item of a test its own), or gets them all.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from urllib.parse import quote, quote_plus

from aiohttp import web

from .errors import error_body


def _b64(data: bytes, urlsafe: bool = False, padded: bool = True) -> str:
    text = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(data).decode()
    return text if padded else text.rstrip("=")


def _token(value: str) -> str:
    """A header's value after its scheme ("Bearer KEY": KEY)."""
    return value.partition(" ")[2] or value


def _json_u(text: str, upper: bool = False) -> str:
    """Every character as a JSON \\u escape (a pair of surrogates past the first plane)."""
    units = text.encode("utf-16-be", "surrogatepass")
    return "".join(
        (f"\\u{units[i]:02X}{units[i + 1]:02X}" if upper else f"\\u{units[i]:02x}{units[i + 1]:02x}")
        for i in range(0, len(units), 2)
    )


# name: how one header's value is echoed
VALUE_ENCODINGS: dict[str, Callable[[str], str]] = {
    "plain": lambda v: v,
    "json-text": _json_u,  # a JSON document quoted in the text: "\\u0073..." on the wire
    "url": lambda v: quote(v, safe=""),
    "url-lower": lambda v: "".join(f"%{b:02x}" for b in v.encode()),
    "url-all": lambda v: "".join(f"%{b:02X}" for b in v.encode()),
    "url-plus": quote_plus,
    "url-double": lambda v: quote(quote(v, safe=""), safe=""),
    "b64": lambda v: _b64(v.encode()),
    "b64-nopad": lambda v: _b64(v.encode(), padded=False),
    "b64url": lambda v: _b64(v.encode(), urlsafe=True),
    "b64url-nopad": lambda v: _b64(v.encode(), urlsafe=True, padded=False),
    "b64-token": lambda v: _b64(_token(v).encode()),
    "b64url-token-nopad": lambda v: _b64(_token(v).encode(), urlsafe=True, padded=False),
    "basic": lambda v: "Basic " + _b64(f"user:{_token(v)}".encode()),
}
# name: how the whole message is written on the wire, inside the JSON string
WIRE_ENCODINGS: dict[str, Callable[[str], str]] = {
    "json-u": _json_u,
    "json-U": lambda text: _json_u(text, upper=True),
    "json-slash": lambda text: json.dumps(text)[1:-1].replace("/", "\\/"),
}
DUMPS = [f"{alphabet}-dump-{offset}" for alphabet in ("b64", "b64url") for offset in range(3)]
ENCODINGS = [*VALUE_ENCODINGS, *WIRE_ENCODINGS, *DUMPS]
_CHOSEN = re.compile(rb"echo=([\w-]+)")


def echo(headers: Mapping[str, str], encoding: str) -> str:
    """The headers as a relay's error shows them, in `encoding` (a wire encoding shows them plain:
    the JSON around them is what it changes)."""
    if encoding in DUMPS:
        alphabet, _, offset = encoding.split("-")
        dump = "\n".join(f"{k}: {v}" for k, v in headers.items()).encode()
        return f"dump ({encoding}): " + _b64(b"#" * int(offset) + dump, urlsafe=alphabet == "b64url")
    encoded = VALUE_ENCODINGS.get(encoding, VALUE_ENCODINGS["plain"])
    return f"headers ({encoding}): " + "; ".join(f"{k}: {encoded(v)}" for k, v in headers.items())


def _json_string(text: str, encoding: str) -> str:
    """`text` as a JSON string literal, written on the wire as `encoding` says."""
    wire = WIRE_ENCODINGS.get(encoding)
    return f'"{wire(text)}"' if wire else json.dumps(text)


async def echoed(request: web.Request, answer: bool) -> web.Response:
    """A 400 whose message holds the request's headers in the encoding its body names (all of them
    when it names none), or (`answer`) a chat completion whose text holds them."""
    raw = await request.read()
    chosen = _CHOSEN.search(raw)
    names = [chosen.group(1).decode()] if chosen and chosen.group(1).decode() in ENCODINGS else ENCODINGS
    parts = [_json_string(echo(request.headers, name), name) for name in names]
    message = " ".join(json.loads(part) for part in parts)
    if not answer:
        body = json.dumps(error_body("MESSAGE", "invalid_request_error", None))
        return _raw(body.replace('"MESSAGE"', _json_concat(parts)), 400)
    model = json.loads(raw or b"{}").get("model", "gpt-4o-mini")
    words = len(message.split())
    completion = {
        "id": "chatcmpl-echo",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "CONTENT"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": words, "total_tokens": 10 + words},
    }
    return _raw(json.dumps(completion).replace('"CONTENT"', _json_concat(parts)), 200)


def _json_concat(parts: list[str]) -> str:
    """JSON string literals as one: each one's inside, joined by a space."""
    return '"' + " ".join(part[1:-1] for part in parts) + '"'


def _raw(body: str, status: int) -> web.Response:
    return web.Response(body=body.encode(), status=status, content_type="application/json")


def key_location(request: web.Request, redirect_to: str) -> str:
    """Where the `redirect-key` fault sends a request: under `redirect_to`, a path that holds the
    request's key (its bearer token, or Azure's api-key) plain, percent-encoded byte by byte, and
    in base64 (as "Bearer KEY", and URL-safe unpadded), with the key in the query too."""
    auth = request.headers.get("Authorization", "")
    key = _token(auth) if auth else request.headers.get("api-key", "")
    segments = [
        key,
        VALUE_ENCODINGS["url-all"](key),
        _b64(f"Bearer {key}".encode()),
        _b64(key.encode(), urlsafe=True, padded=False),
    ]
    path = request.path.removeprefix("/v1")
    return f"{redirect_to.rstrip('/')}/{'/'.join(quote(s, safe='%') for s in segments)}{path}?key={quote(key)}"
