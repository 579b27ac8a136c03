"""Which certificates a provider's https server is trusted by: its CA bundle, and the TLS context
made from it.

A company proxy that inspects TLS, or a self-hosted server with its own CA, presents a certificate
no public CA signed. The CA certificates (PEM) that sign it are found, first to last, in:
`provider.ca_bundle` (the job's setting or --ca-bundle), $REQUESTS_CA_BUNDLE (as requests and
the tools built on it read it), $SSL_CERT_FILE (as OpenSSL reads it); else the system's store.
The setting's or $REQUESTS_CA_BUNDLE's bundle is the whole trust store, as curl's --cacert is (a
proxy that inspects TLS signs every server's certificate, so its CA is all that is needed behind
it); $SSL_CERT_FILE replaces the system's file as OpenSSL has it do, $SSL_CERT_DIR still counting.
Each is read when a client opens (aiohttp's own context read SSL_CERT_FILE once, at import).

A bundle that is missing, unreadable or holds no certificate is an input error before anything is
sent (bundle_problem), never a run of connection errors.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from functools import lru_cache

from batchgpt.errors import UsageError
from batchgpt.records import Provider

SETTING = "provider.ca_bundle"
ENV_VARIABLES = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")  # the first one set wins


@dataclass(frozen=True)
class Bundle:
    """A CA bundle file, and where it was named (the setting, or an environment variable)."""

    path: str
    source: str  # provider.ca_bundle | $REQUESTS_CA_BUNDLE | $SSL_CERT_FILE


def bundle_of(provider: Provider) -> Bundle | None:
    """The CA bundle a provider's server is checked against; None: the system's store."""
    if provider.ca_bundle:
        return Bundle(provider.ca_bundle, SETTING)
    for name in ENV_VARIABLES:
        value = os.environ.get(name)
        if value:
            return Bundle(value, f"${name}")
    return None


def uses_tls(provider: Provider) -> bool:
    """Whether a request to this provider meets a certificate: its base URL or its proxy is https."""
    return any(url.lower().startswith("https://") for url in (provider.base_url, provider.proxy or ""))


def bundle_problem(path: str) -> str | None:
    """Why the file at `path` cannot be a CA bundle (missing, unreadable, no PEM certificate in
    it); None when it can."""
    try:
        _context(path, _stamp(path), False)  # as tls_context asks: a big bundle loads once (tens of ms), not twice
    except FileNotFoundError:
        return f"no such file {path}"
    except IsADirectoryError:
        return f"{path} is a folder, not a file of PEM certificates"
    except ssl.SSLError:  # before OSError, its base class: the file was read
        return f"{path} holds no certificate in PEM form (-----BEGIN CERTIFICATE-----)"
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or exc}"
    except (UnicodeError, ValueError):
        return f"{path} holds no certificate in PEM form (-----BEGIN CERTIFICATE-----)"
    return None


def tls_context(provider: Provider) -> ssl.SSLContext:
    """The TLS context that trusts the provider's bundle, else the system's store; both transports
    (http1's pool, aiohttp) are given this one. One context a file, made once: loading
    certificates costs milliseconds."""
    bundle = bundle_of(provider)
    if bundle is None:
        return system_context()
    problem = bundle_problem(bundle.path)  # checked before the run; the file may have gone since
    if problem is not None:
        raise UsageError(f"{bundle.source}: {problem}")
    return _context(bundle.path, _stamp(bundle.path), bundle.source == "$SSL_CERT_FILE")


@lru_cache(maxsize=1)
def system_context() -> ssl.SSLContext:
    """The system's store, as aiohttp's own verifying context has it (aiohttp.connector's
    _make_ssl_context(True)): OpenSSL's default paths, and ALPN offering http/1.1 alone."""
    context = ssl.create_default_context()
    context.set_alpn_protocols(("http/1.1",))
    return context


def untrusted(provider: Provider) -> str:
    """What to add to a certificate error: how to trust the server, or which bundle did not."""
    bundle = bundle_of(provider)
    if bundle is None:
        return (
            f"; the certificate is not trusted: to trust a private CA's server (a company proxy, a gateway), "
            f"set {SETTING} (or --ca-bundle) to its CA certificate (PEM); $REQUESTS_CA_BUNDLE and "
            "$SSL_CERT_FILE work too"
        )
    return (
        f"; the certificate is not trusted by the CA bundle {bundle.path} ({bundle.source}): point "
        f"{SETTING} (or --ca-bundle) at the CA certificate (PEM) that signed it"
    )


def _stamp(path: str) -> tuple[float, int]:
    """The file's modification time and size: a context is made again once the file changes."""
    status = os.stat(path)
    return status.st_mtime, status.st_size


@lru_cache(maxsize=8)
def _context(path: str, stamp: tuple[float, int], openssl_default: bool = False) -> ssl.SSLContext:
    """The context trusting `path` alone, or, `openssl_default`, OpenSSL's default paths read now:
    $SSL_CERT_FILE (which is `path`) and $SSL_CERT_DIR."""
    return ssl.create_default_context() if openssl_default else ssl.create_default_context(cafile=path)
