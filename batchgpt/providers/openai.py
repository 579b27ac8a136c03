"""OpenAI's API and the servers compatible with it (vLLM, llama.cpp, Ollama, relays such as one-api,
gateways such as Cloudflare's AI Gateway), and Azure OpenAI: URLs, authentication and usage.

URLs: a task's endpoint under the base URL (a gateway's URL is a base URL like any other);
Azure puts it under `/openai/deployments/{model}` with an `api-version` query, and its other
routes (the Batch API's) under `/openai`. Authentication: `Authorization: Bearer KEY`, Azure's
`api-key: KEY`, OpenAI-Organization and OpenAI-Project, then the provider's own headers (a
gateway's `cf-aig-authorization`), which may replace any of them. Usage: the counts an answer
reports (`prompt_tokens`/`completion_tokens`, or the Responses API's `input_tokens`/`output_tokens`)
with their `_details`, as the kinds of token billed apart; anything not a count is a MalformedReply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from batchgpt.records import PLAIN, Billed, Provider, Reply
from batchgpt.version import __version__

from .spec import MalformedReply

AZURE_API_VERSION = "2024-10-21"  # when the job names none
CHAT_USAGE = ("prompt_tokens", "completion_tokens")
RESPONSES_USAGE = ("input_tokens", "output_tokens")  # the Responses API's names for the same counts


@dataclass(frozen=True)
class OpenAIApi:
    """OpenAI's API, Azure OpenAI's layout of it, and every server compatible with either."""

    kinds: tuple[str, ...] = ("openai", "azure")
    openai_wire: bool = True

    def url(self, provider: Provider, endpoint: str, model: str) -> str:
        if provider.kind == "azure":
            version = provider.api_version or AZURE_API_VERSION
            return f"{provider.base_url}/openai/deployments/{model}{endpoint}?api-version={version}"
        return provider.base_url + endpoint

    def route(self, provider: Provider, path: str) -> tuple[str, dict[str, str]]:
        if provider.kind == "azure":
            return f"{provider.base_url}/openai{path}", {"api-version": provider.api_version or AZURE_API_VERSION}
        return provider.base_url + path, {}

    def line_url(self, provider: Provider, endpoint: str) -> str:
        return endpoint if provider.kind == "azure" else "/v1" + endpoint  # Azure's lines name no /v1

    def headers(self, provider: Provider, api_key: str | None) -> dict[str, str]:
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

    def needs_key(self, provider: Provider) -> bool:
        return "api.openai.com" in provider.base_url or provider.kind == "azure"

    def request(self, endpoint: str, body: Mapping[str, Any]) -> Mapping[str, Any]:
        return body

    def answer(self, endpoint: str, data: Mapping[str, Any]) -> dict[str, Any]:
        return dict(data)


OPENAI = OpenAIApi()


# Answers are decoded JSON, so their objects are dicts; isinstance(x, dict) is what is checked
# (a tenth of the cost of an abstract Mapping check, at thousands of answers a second).


def usage_of(data: Mapping[str, Any]) -> dict[str, Any]:
    """An answer's `usage` object (empty when it has none)."""
    usage = data.get("usage") or {}
    if not isinstance(usage, dict):
        raise MalformedReply("usage is not an object")
    return usage


def token_count(usage: Mapping[str, Any], name: str, where: str = "usage") -> int | None:
    """A token count from the answer: a whole number, not negative, or absent (None). Anything else
    (a string, -8000) is a malformed answer, never a cost."""
    value = usage.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedReply(f"{where}.{name} is {value!r}, not a token count")
    return value


def details_of(usage: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """A usage's `*_details` object (empty when it has none)."""
    details = usage.get(name) or {}
    if not isinstance(details, dict):
        raise MalformedReply(f"usage.{name} is not an object")
    return details


def usage_reply(
    data: Mapping[str, Any], output: Any, stop: str | None = None, names: tuple[str, str] = CHAT_USAGE
) -> Reply:
    """A reply with the usage the answer reports: prompt and completion tokens (under `names`),
    the cached and reasoning tokens in their `_details`, and the kinds billed apart (billed_of)."""
    usage = usage_of(data)
    prompt, completion = names
    prompt_details = details_of(usage, f"{prompt}_details")
    answered = details_of(usage, f"{completion}_details")
    return Reply(
        output=output,
        stop=stop,
        prompt_tokens=token_count(usage, prompt),
        completion_tokens=token_count(usage, completion),
        cached_tokens=token_count(prompt_details, "cached_tokens", f"{prompt}_details") or 0,
        reasoning_tokens=token_count(answered, "reasoning_tokens", f"{completion}_details") or 0,
        billed=billed_of(data, usage, names),
    )


def billed_of(data: Mapping[str, Any], usage: Mapping[str, Any], names: tuple[str, str] = CHAT_USAGE) -> Billed:
    """The kinds of token an answer's usage details tell apart, each billed at its own price:
    cache writes (relays pass them on from providers that bill them), audio and image tokens in
    and out; and the service tier the answer says served it."""
    prompt, completion = (f"{name}_details" for name in names)
    asked, answered = details_of(usage, prompt), details_of(usage, completion)
    tier = data.get("service_tier")
    billed = Billed(
        cache_write=token_count(asked, "cache_write_tokens", prompt) or 0,
        audio_in=token_count(asked, "audio_tokens", prompt) or 0,
        audio_out=token_count(answered, "audio_tokens", completion) or 0,
        image_in=token_count(asked, "image_tokens", prompt) or 0,
        image_out=token_count(answered, "image_tokens", completion) or 0,
        tier=tier if isinstance(tier, str) and tier else None,
    )
    return PLAIN if billed == PLAIN else billed
