"""The HTTP client against the mock server: answers, failures and headers."""
from __future__ import annotations

import asyncio
import json

import pytest

from batchgpt.client import Answer, Client
from batchgpt.records import Pack, Provider, Request
from batchgpt.retry import Failure

from conftest import SECRET, faults


def chat_request(model: str = "gpt-4o-mini", stream: bool = False, text: str = "hello") -> Request:
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    return Request(seq=0, id="a", task="t", type="chat", model=model, endpoint="/chat/completions", body=body,
                   payload=json.dumps(body).encode(), hash="h", provider=Provider())


def send(provider: Provider, request: Request, key: str | None = SECRET, timeout: float = 2.0):
    async def go():
        async with Client(provider, key, timeout, 4) as client:
            return await client.send(Pack.of(request))
    return asyncio.run(go())


def test_an_answer_carries_status_headers_and_json(server):
    answer = send(Provider(base_url=server.base_url), chat_request())
    assert isinstance(answer, Answer) and answer.status == 200
    assert answer.data["choices"][0]["message"]["content"] == "Echo: hello"
    assert answer.headers["x-request-id"].startswith("req_")


@pytest.mark.parametrize("fault,kind,status,code", [
    ("500", "http", 500, None), ("429", "http", 429, "rate_limit_exceeded"), ("quota", "http", 429, "insufficient_quota"),
    ("malformed", "malformed", 200, None), ("drop", "connection", None, None), ("hang", "timeout", None, None),
])
def test_failures_say_what_happened(server, fault, kind, status, code):
    faults(server, fault)
    failure = send(Provider(base_url=server.base_url), chat_request(), timeout=0.5)
    assert isinstance(failure, Failure)
    assert (failure.kind, failure.status, failure.code) == (kind, status, code)
    assert SECRET not in failure.describe()


def test_a_429_keeps_its_retry_headers(server):
    faults(server, "429")
    failure = send(Provider(base_url=server.base_url), chat_request())
    assert failure.headers["retry-after-ms"] == "50" and failure.headers["retry-after"] == "1"


def test_streamed_answers_are_assembled_with_usage(server):
    answer = send(Provider(base_url=server.base_url), chat_request(stream=True, text="a streamed reply, in pieces"))
    assert answer.data["choices"][0]["message"]["content"] == "Echo: a streamed reply, in pieces"
    assert answer.data["usage"]["completion_tokens"] > 0 and answer.data["_ttft_s"] >= 0


def test_provider_headers_organization_project_and_gateway_auth(server):
    provider = Provider(base_url=server.base_url, organization="org-1", project="proj-2",
                        headers=(("cf-aig-authorization", "Bearer gateway"),))
    send(provider, chat_request())
    headers = server.seen[-1].headers
    assert headers["authorization"] == f"Bearer {SECRET}"
    assert headers["openai-organization"] == "org-1" and headers["openai-project"] == "proj-2"
    assert headers["cf-aig-authorization"] == "Bearer gateway"


def test_azure_uses_deployment_urls_and_the_api_key_header():
    client = Client(Provider(base_url="https://res.openai.azure.com", kind="azure", api_version="2024-10-21"),
                    SECRET, 1, 1)
    assert client.url(chat_request("my-deployment")) == \
        "https://res.openai.azure.com/openai/deployments/my-deployment/chat/completions?api-version=2024-10-21"
    assert client._headers["api-key"] == SECRET and "Authorization" not in client._headers


def test_the_key_is_not_in_reprs():
    client = Client(Provider(), SECRET, 1, 1)
    assert SECRET not in repr(client) and SECRET not in repr(Provider()) and SECRET not in repr(chat_request())


def test_connection_refused_is_a_connection_failure():
    failure = send(Provider(base_url="http://127.0.0.1:9/v1"), chat_request())
    assert isinstance(failure, Failure) and failure.kind == "connection"


def test_the_redactor_hides_every_secret_a_provider_holds():
    from batchgpt.client import Redactor

    provider = Provider(base_url="https://user:url-PASSWORD-1@proxy.example/v1",
                        headers=(("cf-aig-authorization", "Bearer gateway-TOKEN-1"), ("x-flag", "1")),
                        proxy="http://me:proxy-PASSWORD-1@proxy:3128")
    redact = Redactor(provider, SECRET)
    text = (f"key {SECRET}; gateway Bearer gateway-TOKEN-1; token gateway-TOKEN-1; url-PASSWORD-1; "
            "proxy-PASSWORD-1; flag 1")
    shown = redact.text(text)
    assert all(s not in shown for s in (SECRET, "gateway-TOKEN-1", "url-PASSWORD-1", "proxy-PASSWORD-1"))
    assert shown.endswith("flag 1")  # a short header value is no secret: answers keep their 1s
    assert redact.bytes(text.encode()) == shown.encode()


def test_redirects_are_failures_naming_where_they_point(server):
    from batchgpt.mockserver import Config, MockServer

    other = MockServer(Config()).start()
    try:
        server.config.redirect_to = other.base_url.replace("http://", "http://user:pw-SECRET@")
        faults(server, "307")
        outcome = send(Provider(base_url=server.base_url), chat_request())
        assert isinstance(outcome, Failure) and outcome.status == 307 and not outcome.transient
        assert f"redirected to {other.base_url}/chat/completions;" in outcome.message  # no credentials shown
        assert other.seen == []
    finally:
        other.stop()
