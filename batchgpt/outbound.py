"""A request's URL as it goes out: its target percent-encoded and its Host as aiohttp (yarl) has
them, and the proxy the environment names for it. client.py's, apart so that neither costs an import (yarl,
urllib) on the usual path."""

from __future__ import annotations

import os
import re
import sys
from urllib.parse import urlsplit

# A request target yarl would send as it is: segments of unreserved characters, none of them "."
# or "..", and a query of name=value pairs of them (Azure's api-version).
_PLAIN_TARGET = re.compile(r"(?:/[\w~-][\w.~-]*)+(?:\?[\w.~-]+=[\w.~-]*(?:&[\w.~-]+=[\w.~-]*)*)?", re.ASCII)


def target(url: str) -> str:
    """The path and query of `url` as aiohttp sends them, percent-encoded by yarl. yarl costs 4 ms to
    import, and the usual URL needs nothing of it."""
    parts = urlsplit(url)
    path = f"{parts.path}?{parts.query}" if parts.query else parts.path
    if _PLAIN_TARGET.fullmatch(path):
        return path
    from yarl import URL  # aiohttp's, so the target is encoded as it encodes it

    return str(URL(url).raw_path_qs)


# A host and port yarl would send as they are: a name in lower case without a final dot, or an
# IPv4 address, and a port unless it is the scheme's own (yarl leaves that out).
_PLAIN_HOST = re.compile(r"[a-z0-9-]+(?:\.[a-z0-9-]+)*(?::[1-9][0-9]*)?", re.ASCII)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def host_header(url: str) -> str:
    """The Host header aiohttp sends for `url` (yarl's host_port_subcomponent): the host in lower
    case, IDNA-encoded, without its final dot, and its port unless it is the scheme's own."""
    parts = urlsplit(url)
    if _PLAIN_HOST.fullmatch(parts.netloc) and parts.port != _DEFAULT_PORTS.get(parts.scheme):
        return parts.netloc
    from yarl import URL

    return URL(url).host_port_subcomponent or parts.netloc


def raw_host(url: str) -> str:
    """The host aiohttp connects to (and, without a final dot, names in TLS) for `url`: IDNA-encoded
    as yarl encodes it, not as Python's older codec would."""
    host = urlsplit(url).hostname or ""
    if host.isascii():
        return host
    from yarl import URL

    return URL(url).raw_host or host


def env_proxy(base_url: str) -> str | None:
    """The proxy HTTPS_PROXY/HTTP_PROXY name for this URL, unless NO_PROXY exempts its host."""
    if sys.platform not in ("darwin", "win32") and not any(name.lower().endswith("_proxy") for name in os.environ):
        return None  # urllib would find none (elsewhere it asks the system too), and costs 7 ms to import
    import urllib.request

    url = urlsplit(base_url)
    if url.hostname and urllib.request.proxy_bypass(url.hostname):
        return None
    return urllib.request.getproxies().get(url.scheme)
