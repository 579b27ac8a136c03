"""The provider seam: URLs, authentication and the mapping of bodies and answers come from the
provider's module (providers/), so a provider that does not speak OpenAI's wire format needs
only its own module."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import SECRET

from batchgpt import client as client_module
from batchgpt.client import Answer, Client
from batchgpt.providers import OPENAI, api_key, api_of
from batchgpt.records import Pack, Provider, Request


def chat_request(text: str = "hello") -> Request:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}
    payload = json.dumps(body).encode()
    return Request(0, "r1", "t", "chat", "gpt-4o-mini", "/chat/completions", body, payload, "h", Provider())


def test_openai_and_azure_lay_out_urls_and_keys_their_own_way():
    openai = Provider(base_url="https://gw.example/v1/acct/gw/openai", organization="org-1")
    azure = Provider(base_url="https://res.openai.azure.com", kind="azure", api_version="2025-01-01")
    assert (
        api_of(openai).url(openai, "/chat/completions", "m") == "https://gw.example/v1/acct/gw/openai/chat/completions"
    )
    assert api_of(azure).url(azure, "/embeddings", "dep") == (
        "https://res.openai.azure.com/openai/deployments/dep/embeddings?api-version=2025-01-01"
    )
    assert api_of(azure).route(azure, "/files") == (
        "https://res.openai.azure.com/openai/files",
        {"api-version": "2025-01-01"},
    )
    assert api_of(azure).line_url(azure, "/chat/completions") == "/chat/completions"
    assert api_of(openai).line_url(openai, "/chat/completions") == "/v1/chat/completions"
    assert OPENAI.headers(openai, "sk-1")["Authorization"] == "Bearer sk-1"
    assert OPENAI.headers(openai, "sk-1")["OpenAI-Organization"] == "org-1"
    assert OPENAI.headers(azure, "sk-1")["api-key"] == "sk-1" and "Authorization" not in OPENAI.headers(azure, "sk-1")


def test_only_an_official_host_needs_a_key(monkeypatch):
    from batchgpt.errors import MissingKeyError

    with pytest.raises(MissingKeyError):
        api_key(Provider())
    assert api_key(Provider(base_url="http://127.0.0.1:8000/v1")) is None


@dataclass(frozen=True)
class Renaming:
    """A provider whose wire format is not OpenAI's: it takes `prompt_text` and answers `reply`."""

    kinds: tuple[str, ...] = ("renaming",)
    openai_wire: bool = False

    def __getattr__(self, name: str) -> Any:
        return getattr(OPENAI, name)

    def url(self, provider: Provider, endpoint: str, model: str) -> str:
        return OPENAI.url(provider, endpoint, model)

    def headers(self, provider: Provider, key: str | None) -> dict[str, str]:
        return OPENAI.headers(provider, key)

    def request(self, endpoint: str, body: Mapping[str, Any]) -> Mapping[str, Any]:
        return {**body, "messages": [{"role": "user", "content": "mapped: " + body["messages"][0]["content"]}]}

    def answer(self, endpoint: str, data: Mapping[str, Any]) -> dict[str, Any]:
        return {"reply": data["choices"][0]["message"]["content"]}


def test_a_provider_maps_bodies_out_and_answers_back(server, monkeypatch):
    monkeypatch.setattr(client_module, "api_of", lambda provider: Renaming())

    async def go() -> object:
        async with Client(Provider(base_url=server.base_url), SECRET, 10.0, 2) as client:
            return await client.send(Pack.of(chat_request()))

    answer = asyncio.run(go())
    assert isinstance(answer, Answer), answer
    assert server.seen[-1].body["messages"][0]["content"] == "mapped: hello"
    assert answer.data == {"reply": "Echo: mapped: hello"}
