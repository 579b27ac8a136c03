"""HTTP to OpenAI-compatible servers: the only module that imports aiohttp.

A Client sends one attempt of one request and says what came back: a parsed JSON answer with its
status and headers, or a retry.Failure. Whether to try again is retry.py's business. The API key
lives only in the session's default headers; no message built here ever contains it.
"""
from __future__ import annotations

import asyncio
import datetime
import json
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Mapping

import aiohttp
import orjson
from yarl import URL

from . import __version__
from .records import Pack, Provider, Request
from .retry import Failure


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str] = field(repr=False)
    data: Any = field(repr=False)


class Client:
    """One aiohttp session per provider and run."""

    def __init__(self, provider: Provider, api_key: str | None, timeout: float, connections: int):
        self.provider = provider
        self._headers = _auth_headers(provider, api_key)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None
        self._proxy: str | None = None

    def __repr__(self) -> str:
        return f"Client(base_url={self.provider.base_url!r})"

    async def __aenter__(self) -> "Client":
        connector = aiohttp.TCPConnector(limit=self._connections, limit_per_host=0, ttl_dns_cache=300)
        # HTTPS_PROXY, HTTP_PROXY and NO_PROXY are read here, once: aiohttp's trust_env would look
        # them (and ~/.netrc) up in a thread for every request, which costs a third of throughput.
        self._proxy = self.provider.proxy or _env_proxy(self.provider.base_url)
        self._session = aiohttp.ClientSession(connector=connector, headers=self._headers, timeout=self._timeout)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()

    def url(self, request: Request) -> str:
        base = self.provider.base_url
        if self.provider.kind == "azure":
            version = self.provider.api_version or "2024-10-21"
            return f"{base}/openai/deployments/{request.model}{request.endpoint}?api-version={version}"
        return base + request.endpoint

    async def send(self, pack: Pack) -> Answer | Failure:
        """One attempt at one pack (usually a single request)."""
        assert self._session is not None, "use Client as an async context manager"
        request = pack.first
        started = time.monotonic()
        try:
            async with self._session.post(self.url(request), data=_body(pack), headers=_content_type(pack),
                                          proxy=self._proxy) as response:
                headers = response.headers  # case-insensitive, as HTTP header names are
                if response.status < 300 and pack.body.get("stream"):
                    return await _read_stream(response, headers, started)
                raw = await response.read()
        except asyncio.TimeoutError:
            return Failure("timeout", f"no complete answer within {self._timeout.total:g} s")
        except aiohttp.ClientPayloadError as exc:
            return Failure("connection", f"the answer was cut off ({_short(exc)})")
        except (aiohttp.ClientError, OSError) as exc:
            return Failure("connection", f"{type(exc).__name__}: {_short(exc)}")
        return _answer(response.status, headers, raw)


def _body(pack: Pack) -> bytes | aiohttp.FormData:
    """JSON, or a multipart form for uploads (the file is read afresh on each attempt)."""
    files = pack.first.files
    if not files:
        return pack.payload
    form = aiohttp.FormData()
    for key, value in pack.body.items():
        form.add_field(key, value if isinstance(value, str) else json.dumps(value))
    for field_name, path in files:
        form.add_field(field_name, path.read_bytes(), filename=path.name)
    return form


def _content_type(pack: Pack) -> dict[str, str]:
    return {} if pack.first.files else {"Content-Type": "application/json"}


def _env_proxy(base_url: str) -> str | None:
    """The proxy HTTPS_PROXY/HTTP_PROXY name for this URL, unless NO_PROXY exempts its host."""
    url = URL(base_url)
    if url.host and urllib.request.proxy_bypass(url.host):
        return None
    return urllib.request.getproxies().get(url.scheme)


def _auth_headers(provider: Provider, api_key: str | None) -> dict[str, str]:
    headers = {"User-Agent": f"batchgpt/{__version__}"}
    if api_key:
        if provider.kind == "azure":
            headers["api-key"] = api_key
        else:
            headers["Authorization"] = f"Bearer {api_key}"
    if provider.organization:
        headers["OpenAI-Organization"] = provider.organization
    if provider.project:
        headers["OpenAI-Project"] = provider.project
    headers.update(dict(provider.headers))
    return headers


def _answer(status: int, headers: Mapping[str, str], raw: bytes) -> Answer | Failure:
    content_type = headers.get("content-type", "")
    if status < 300 and content_type.startswith(("audio/", "image/", "application/octet-stream")):
        return Answer(status, headers, {"_binary": raw, "_content_type": content_type})
    if status < 300 and content_type.startswith("text/plain"):  # transcripts as text, srt or vtt
        return Answer(status, headers, {"text": raw.decode("utf-8", "replace")})
    try:
        data = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        if status < 300:
            return Failure("malformed", f"the answer is not JSON ({len(raw)} bytes)", status, headers=headers)
        return Failure("http", _short(raw.decode("utf-8", "replace")), status, headers=headers)
    if status < 300:
        if not isinstance(data, dict):
            return Failure("malformed", "the answer is not a JSON object", status, headers=headers)
        return Answer(status, headers, data)
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return Failure("http", _short(str(error.get("message") or "")), status,
                       code=error.get("code"), type=error.get("type"), headers=headers)
    return Failure("http", _short(json.dumps(data)), status, headers=headers)


async def _read_stream(response: aiohttp.ClientResponse, headers: Mapping[str, str], started: float) -> Answer | Failure:
    """Assemble a server-sent-events answer into the shape of a non-streamed one."""
    parts: list[str] = []
    usage = None
    ttft = None
    chat = True
    async for raw_line in response.content:
        line = raw_line.strip()
        if not line.startswith(b"data:"):
            continue
        payload = line[5:].strip()
        if payload.startswith(b"[DONE]"):
            break
        try:
            chunk = json.loads(payload)
        except json.JSONDecodeError:
            return Failure("malformed", "a stream event is not JSON", response.status, headers=headers)
        if "error" in chunk:  # an error in the middle of a stream, as the SDK raises it
            error = chunk["error"] if isinstance(chunk["error"], dict) else {"message": str(chunk["error"])}
            return Failure("http", _short(str(error.get("message"))), 500, code=error.get("code"), headers=headers)
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta")
            text = delta.get("content") if isinstance(delta, dict) else choice.get("text")
            chat = isinstance(delta, dict)
            if text:
                ttft = ttft if ttft is not None else time.monotonic() - started
                parts.append(text)
    else:
        return Failure("connection", "the stream ended before [DONE]", response.status, headers=headers)
    text = "".join(parts)
    choice = {"message": {"role": "assistant", "content": text}} if chat else {"text": text}
    return Answer(response.status, headers, {"choices": [choice], "usage": usage, "_ttft_s": ttft})


def _short(value: object, limit: int = 300) -> str:
    text = str(value).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class Balance:
    """What an endpoint's billing routes say: the account's limit and what has been used."""

    hard_limit_usd: float
    used_usd: float
    url: str

    @property
    def remaining_usd(self) -> float:
        return self.hard_limit_usd - self.used_usd


async def fetch_balance(provider: Provider, api_key: str | None, timeout: float = 30.0) -> Balance | str:
    """The balance from /dashboard/billing/subscription and /dashboard/billing/usage, which common
    proxy servers (one-api, new-api) keep, tried under the base URL and at the host's root; or
    why it cannot be had. `total_usage` comes in cents."""
    today = datetime.date.today()
    window = {"start_date": (today - datetime.timedelta(days=99)).isoformat(),
              "end_date": (today + datetime.timedelta(days=1)).isoformat()}
    base = provider.base_url
    roots = [base] + ([base[: -len("/v1")]] if base.endswith("/v1") else [])
    async with aiohttp.ClientSession(headers=_auth_headers(provider, api_key),
                                     timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        reasons = []
        for root in roots:
            try:
                subscription = await _get_json(session, f"{root}/dashboard/billing/subscription", {}, provider)
                if isinstance(subscription, str):
                    reasons.append(subscription)
                    continue
                usage = await _get_json(session, f"{root}/dashboard/billing/usage", window, provider)
                if isinstance(usage, str):
                    return usage
                return Balance(float(subscription["hard_limit_usd"]), float(usage["total_usage"]) / 100, root)
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
                return f"cannot reach {root}: {type(exc).__name__}: {_short(exc)}"
            except (KeyError, TypeError, ValueError):
                reasons.append(f"{root}: the billing answer is not in the expected shape")
    return "this endpoint does not expose its balance (" + "; ".join(reasons) + ")"


async def _get_json(session: aiohttp.ClientSession, url: str, params: dict[str, str],
                    provider: Provider) -> dict[str, Any] | str:
    async with session.get(url, params=params, proxy=provider.proxy or _env_proxy(url)) as response:
        raw = await response.read()
        if response.status == 404:
            return f"GET {url} answered 404"
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            return f"GET {url} answered {response.status} with no JSON"
        error = data.get("error") if isinstance(data, dict) else None
        if error:  # the proxies answer errors here with HTTP 200
            message = error.get("message") if isinstance(error, dict) else error
            return f"GET {url}: {_short(message)}"
        if response.status >= 300:
            return f"GET {url} answered {response.status}"
        return data
