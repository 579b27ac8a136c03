"""Where requests go and with which key: a provider from the job's settings, the command line and
the environment, and the key from the variable it names.

One place for both, so the job loader, the engine and `batchgpt balance` resolve them alike.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from batchgpt.errors import MissingKeyError, UsageError
from batchgpt.records import DEFAULT_BASE_URL, Provider, shown_url

from .openai import OPENAI
from .spec import ProviderApi

_FIELDS = ("api_key_env", "kind", "api_version", "proxy", "organization", "project", "ca_bundle")
_APIS: dict[str, ProviderApi] = {kind: OPENAI for kind in OPENAI.kinds}


def api_of(provider: Provider) -> ProviderApi:
    """The API a provider's `kind` speaks (OpenAI's, for a kind not known here)."""
    return _APIS.get(provider.kind, OPENAI)


def identity(provider: Provider) -> str:
    """Which key and settings a provider sends, apart from its URL, as a hash (no secret is kept):
    a batch is polled with the key it was submitted with, never with another provider's."""
    names = sorted(name.lower() for name, _ in provider.headers)
    parts = [provider.api_key_env, provider.kind, provider.api_version, provider.organization, provider.project, names]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def provider_from(spec: Mapping[str, Any], base_url: str | None = None) -> Provider:
    """The job's `provider:` settings; the base URL is the command line's, else the job's, else
    $OPENAI_BASE_URL, else OpenAI's."""
    url = base_url or spec.get("base_url") or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
    fields = {k: v for k, v in spec.items() if k in _FIELDS}
    return Provider(base_url=url.rstrip("/"), headers=tuple(sorted((spec.get("headers") or {}).items())), **fields)


def merged(base: Provider, spec: Mapping[str, Any] | None) -> Provider:
    """A task's own `provider:` settings over the job's; headers are merged name by name."""
    if not spec:
        return base
    changes = {k: v for k, v in spec.items() if k != "headers"}
    if "base_url" in changes:
        changes["base_url"] = changes["base_url"].rstrip("/")
    if "headers" in spec:
        changes["headers"] = tuple(sorted({**dict(base.headers), **spec["headers"]}.items()))
    return replace(base, **changes)


def api_key(provider: Provider) -> str | None:
    """The key from the provider's variable. The official hosts need one; local servers may not."""
    key = os.environ.get(provider.api_key_env) or None
    if key is None and api_of(provider).needs_key(provider):
        raise MissingKeyError(f"no API key: set {provider.api_key_env}")
    if key is not None and shown_url(provider.base_url) != provider.base_url.partition("?")[0]:
        raise UsageError(
            f"the base URL {shown_url(provider.base_url)} carries credentials (user:password@) and "
            f"{provider.api_key_env} is set too: a request can carry only one of them, so take "
            "the credentials out of the URL (or unset the key, to log in with them)"
        )
    return key


def key_said(provider: Provider) -> str:
    """What to check when the server refuses the key: the variable it came from (or did not)."""
    name = provider.api_key_env
    value = os.environ.get(name)
    if value is None:
        return f"{name} is not set, so no key was sent: set it to this endpoint's API key"
    if not value.strip():
        return f"{name} is empty, so no key was sent: set it to this endpoint's API key"
    return f"check the key in {name} (the variable provider.api_key_env names)"
