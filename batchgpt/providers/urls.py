"""What makes a base URL one requests can go to: an http or https scheme and a host.

A URL without a scheme (`localhost:8000`) or with a mistyped one (`htp://x`) is found before
anything is sent, with the URL it probably meant; sent as it is, every request failed as if the
endpoint were down, and the run waited out an outage. Nothing here shows what may hide a secret
in a URL (user:password@, the query).
"""

from __future__ import annotations

from urllib.parse import urlsplit

SCHEMES = ("http", "https")
_LOCAL = ("localhost", "127.", "0.0.0.0", "[::1]", "host.docker.internal")


def url_problem(url: str) -> str | None:
    """Why `url` cannot be a base URL, with the URL it probably meant; None when it can be one."""
    shown = _shown(url)
    if url != url.strip() or any(c.isspace() for c in url):
        return f"{shown!r} holds a space or a line break: a URL has none"
    scheme, sep, rest = url.partition("://")
    if not sep:
        return f"{shown!r} has no scheme: write it as {suggestion(url)}"
    if scheme.lower() not in SCHEMES:
        return (
            f"{shown!r} has the scheme {scheme[:20]!r}, which is neither http nor https: write it as {suggestion(url)}"
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # raises on a port that is no number (or out of range)
    except ValueError:
        return f"{shown!r} has a port that is not a number from 1 to 65535"
    if not parts.hostname:
        return f"{shown!r} names no host: write it as, e.g., http://localhost:8000/v1"
    return None


def suggestion(url: str) -> str:
    """The URL `url` probably meant: http:// (https:// for a host that is not local) in front of
    what follows its scheme, if any, and /v1 when it has no path."""
    scheme, sep, rest = url.strip().partition("://")
    if not sep:
        scheme, rest = "", url.strip()
    rest = _shown(rest)
    host = rest.partition("/")[0]
    secure = scheme.lower().endswith("s") if scheme else not host.startswith(_LOCAL) and ":" not in host
    path = rest.partition("/")[2]
    return f"{'https' if secure else 'http'}://{host}/{path or 'v1'}"


def _shown(url: str) -> str:
    """The URL without credentials (user:password@) or a query, where keys hide."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    netloc, slash, path = rest.partition("/")
    return f"{scheme}{sep}{netloc.rpartition('@')[2]}{slash}{path.partition('?')[0]}"
