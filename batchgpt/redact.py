"""Secrets out of whatever a server sends: the API key, the values of headers that carry
credentials, and the credentials of the base and proxy URLs.

Some proxies echo a request's headers in their errors, and a model may repeat what it was sent, so
everything a server sends is stripped of them as it arrives (client.py, sse.py, answers.py): no
message, output, log or stored row downstream can hold them.
"""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import unquote

from .records import Provider

REDACTED = "****"
MIN_SECRET = 4  # a shorter key or password would be found in every other word of an answer
# Headers that carry credentials (by their name). Others (X-Title, HTTP-Referer) are no secrets,
# and hiding their values would mangle answers that mention them.
_SECRET_HEADER = re.compile(r"auth|key|token|secret|cookie|password|signature", re.IGNORECASE)
_SCHEMES = ("bearer", "basic", "token")


class Redactor:
    """Replaces a provider's secrets in whatever a server sends: the key, the values of headers that
    carry credentials (and their token after a scheme such as "Bearer"), and the credentials of
    the base and proxy URLs (as written, and as the Basic auth they are sent as)."""

    def __init__(self, provider: Provider, api_key: str | None, proxy: str | None = None):
        secrets = {api_key}
        for name, value in provider.headers:
            if _SECRET_HEADER.search(name):
                scheme, _, token = value.partition(" ")
                secrets |= {value, token if scheme.lower() in _SCHEMES else None}
        for url in (provider.base_url, provider.proxy, proxy):
            secrets |= _credentials(url or "")
        found = {s for s in secrets if s and len(s) >= MIN_SECRET}
        self._secrets = sorted(found, key=len, reverse=True)  # a longer secret first: it may hold a shorter
        self._encoded = [secret.encode() for secret in self._secrets]

    def text(self, value: str) -> str:
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value

    def raw(self, value: bytes) -> bytes:
        for secret in self._encoded:
            if secret in value:
                value = value.replace(secret, REDACTED.encode())
        return value

    def tree(self, value: Any) -> Any:
        """A decoded answer with secrets replaced in every string, keys included: JSON escapes
        (`\\u0073k-...`) hide a secret from `raw` until it is decoded."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(k): self.tree(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.tree(v) for v in value]
        return value

    def escaped(self, raw: bytes) -> bool:
        """Whether a JSON text may hold a secret `raw` could not see: it has \\u or \\/ escapes
        (no secret holds the quotes, line breaks or tabs that other escapes stand for)."""
        return bool(self._secrets) and (b"\\u" in raw or b"\\/" in raw)


def _credentials(url: str) -> set[str | None]:
    """A URL's password, its user:password, and that as Basic auth sends it (base64)."""
    userinfo = url.partition("://")[2].partition("/")[0].rpartition("@")[0]
    if not userinfo:
        return set()
    user, _, password = userinfo.partition(":")
    plain = unquote(userinfo)
    return {password, unquote(password), userinfo, plain, base64.b64encode(plain.encode()).decode()}
