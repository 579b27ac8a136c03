"""An independent judge of secrets in outputs: where a secret shows in some bytes under any
layering of JSON escapes, percent-encoding and base64 (at any offset) it can undo, written apart
from batchgpt's redact.py; and the ways a server may echo a secret, for the tests to send."""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import quote, quote_plus, unquote_to_bytes


def _unjson(data: bytes) -> bytes:
    return re.sub(
        rb"\\(u[0-9a-fA-F]{4}|[/\"\\])",
        lambda m: chr(int(m[1][1:], 16)).encode("utf-8", "surrogatepass") if len(m[1]) == 5 else m[1],
        data,
    )


def _base64_runs(data: bytes) -> list[bytes]:
    """What each run of base64 characters decodes to, read from each of its first four characters."""
    decoded = []
    for run in re.findall(rb"[A-Za-z0-9+/_-]{8,}", data):
        for start in range(4):
            chunk = run[start:]
            chunk = chunk[: len(chunk) // 4 * 4] if len(chunk) % 4 == 1 else chunk + b"=" * (-len(chunk) % 4)
            for alphabet in (chunk, chunk.translate(bytes.maketrans(b"-_", b"+/"))):
                try:
                    decoded.append(base64.b64decode(alphabet))
                except (binascii.Error, ValueError):
                    pass
    return decoded


def leaks(data: bytes, secret: str) -> bool:
    layers, frontier = {data}, [data]
    for _ in range(3):
        frontier = [
            undone
            for text in frontier
            for undone in (_unjson(text), unquote_to_bytes(text), unquote_to_bytes(text.replace(b"+", b" ")))
            if undone not in layers
        ]
        layers.update(frontier)
    for text in list(layers):
        layers.update(_base64_runs(text))
    return any(secret.encode() in text for text in layers)


def encodings(secret: str) -> dict[str, str]:
    """The ways a server may echo `secret`, each in a sentence."""
    data = secret.encode()
    found = {
        "plain": secret,
        "json-u": "".join(f"\\u{ord(c):04x}" for c in secret),
        "json-U": "".join(f"\\u{ord(c):04X}" for c in secret),
        "url": quote(secret, safe=""),
        "url-lower": "".join(f"%{b:02x}" for b in data),
        "url-all": "".join(f"%{b:02X}" for b in data),
        "url-plus": quote_plus(f"Bearer {secret}"),
        "url-double": quote(quote(secret, safe=""), safe=""),
        "url-mixed": "".join(f"%{b:02x}" if i % 2 else chr(b) for i, b in enumerate(data)),
    }
    for name, encode in (("b64", base64.b64encode), ("b64url", base64.urlsafe_b64encode)):
        for context, bytes_ in (("", data), ("bearer", b"Bearer " + data), ("basic", b"someone:" + data)):
            text = encode(bytes_).decode()
            found[f"{name}-{context}"], found[f"{name}-{context}-nopad"] = text, text.rstrip("=")
        for offset in range(3):  # inside a longer base64 text, starting at each byte of a group of three
            found[f"{name}-inside-{offset}"] = encode(b"#" * offset + b"x-key: " + data + b"; more").decode()
    found["b64-url-encoded"] = quote(base64.b64encode(b">>?" + data).decode(), safe="")
    found["b64-json-slash"] = base64.b64encode(b"??>" + data).decode().replace("/", "\\/")
    return found
