"""The HTTP client against the mock server: answers, failures and headers."""

from __future__ import annotations

import asyncio
import json

import pytest
from conftest import SECRET, faults

from batchgpt.client import Answer, Client
from batchgpt.records import Failure, Pack, Provider, Request


def chat_request(model: str = "gpt-4o-mini", stream: bool = False, text: str = "hello") -> Request:
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    return Request(
        seq=0,
        id="a",
        task="t",
        type="chat",
        model=model,
        endpoint="/chat/completions",
        body=body,
        payload=json.dumps(body).encode(),
        hash="h",
        provider=Provider(),
    )


# Long enough for a loaded machine's first answer (the mock loads its tokenizer then); the timeout
# test below waits less, for a server that hangs for longer.
def send(provider: Provider, request: Request, key: str | None = SECRET, timeout: float = 10.0):
    async def go():
        async with Client(provider, key, timeout, 4) as client:
            return await client.send(Pack.of(request))

    return asyncio.run(go())


def test_an_answer_carries_status_headers_and_json(server):
    answer = send(Provider(base_url=server.base_url), chat_request())
    assert isinstance(answer, Answer) and answer.status == 200, answer
    assert answer.data["choices"][0]["message"]["content"] == "Echo: hello"
    assert answer.headers["x-request-id"].startswith("req_")


@pytest.mark.parametrize(
    "fault,kind,status,code",
    [
        ("500", "http", 500, None),
        ("429", "http", 429, "rate_limit_exceeded"),
        ("quota", "http", 429, "insufficient_quota"),
        ("malformed", "malformed", 200, None),
        ("drop", "connection", None, None),
        ("hang", "timeout", None, None),
    ],
)
def test_failures_say_what_happened(server, fault, kind, status, code):
    faults(server, fault)
    failure = send(Provider(base_url=server.base_url), chat_request(), timeout=0.5 if fault == "hang" else 10.0)
    assert isinstance(failure, Failure)
    assert (failure.cause, failure.status, failure.code) == (kind, status, code)
    assert SECRET not in failure.describe()


def test_a_429_keeps_its_retry_headers(server):
    faults(server, "429")
    failure = send(Provider(base_url=server.base_url), chat_request())
    assert failure.headers["retry-after-ms"] == "50" and failure.headers["retry-after"] == "1"


def test_streamed_answers_are_assembled_with_usage(server):
    answer = send(Provider(base_url=server.base_url), chat_request(stream=True, text="a streamed reply, in pieces"))
    assert answer.data["choices"][0]["message"]["content"] == "Echo: a streamed reply, in pieces"
    assert answer.data["usage"]["completion_tokens"] > 0 and answer.ttft_s is not None and answer.ttft_s >= 0


def test_provider_headers_organization_project_and_gateway_auth(server):
    provider = Provider(
        base_url=server.base_url,
        organization="org-1",
        project="proj-2",
        headers=(("cf-aig-authorization", "Bearer gateway"),),
    )
    send(provider, chat_request())
    headers = server.seen[-1].headers
    assert headers["authorization"] == f"Bearer {SECRET}"
    assert headers["openai-organization"] == "org-1" and headers["openai-project"] == "proj-2"
    assert headers["cf-aig-authorization"] == "Bearer gateway"


def test_azure_uses_deployment_urls_and_the_api_key_header():
    client = Client(
        Provider(base_url="https://res.openai.azure.com", kind="azure", api_version="2024-10-21"), SECRET, 1, 1
    )
    assert (
        client.url(chat_request("my-deployment"))
        == "https://res.openai.azure.com/openai/deployments/my-deployment/chat/completions?api-version=2024-10-21"
    )


def test_azure_sends_the_key_in_the_api_key_header(server):
    provider = Provider(base_url=server.base_url.removesuffix("/v1"), kind="azure", api_version="2024-10-21")
    assert isinstance(send(provider, chat_request("my-deployment")), Answer)
    [seen] = server.seen
    assert seen.headers["api-key"] == SECRET and "authorization" not in seen.headers
    assert seen.path == "/openai/deployments/my-deployment/chat/completions"


def test_the_key_is_not_in_reprs():
    client = Client(Provider(), SECRET, 1, 1)
    assert SECRET not in repr(client) and SECRET not in repr(Provider()) and SECRET not in repr(chat_request())


def test_connection_refused_is_a_connection_failure():
    failure = send(Provider(base_url="http://127.0.0.1:9/v1"), chat_request())
    assert isinstance(failure, Failure) and failure.cause == "connection"


def test_the_redactor_hides_every_secret_a_provider_holds():
    from batchgpt.redact import Redactor

    provider = Provider(
        base_url="https://user:url-PASSWORD-1@proxy.example/v1",
        headers=(("cf-aig-authorization", "Bearer gateway-TOKEN-1"), ("x-flag", "1")),
        proxy="http://me:proxy-PASSWORD-1@proxy:3128",
    )
    redact = Redactor(provider, SECRET)
    text = (
        f"key {SECRET}; gateway Bearer gateway-TOKEN-1; token gateway-TOKEN-1; url-PASSWORD-1; proxy-PASSWORD-1; flag 1"
    )
    shown = redact.text(text)
    assert all(s not in shown for s in (SECRET, "gateway-TOKEN-1", "url-PASSWORD-1", "proxy-PASSWORD-1"))
    assert shown.endswith("flag 1")  # a short header value is no secret: answers keep their 1s
    assert redact.raw(text.encode()) == shown.encode()


def test_redirects_are_failures_naming_where_they_point(server):
    from batchgpt.mock import Config, MockServer

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


@pytest.fixture
def hostile():
    """A server of our own that answers exactly the bytes a test gives it (status, type, body)."""
    import threading

    from aiohttp import web

    answers: list[tuple[int, str, bytes, dict[str, str]]] = []
    state: dict = {}

    async def handle(request):
        await request.read()
        status, content_type, body, headers = answers[0]
        return web.Response(status=status, body=body, content_type=content_type, headers=headers)

    def serve():
        loop = asyncio.new_event_loop()
        runner = web.AppRunner(_app(handle))
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        state["port"] = site._server.sockets[0].getsockname()[1]
        state["loop"], state["runner"] = loop, runner
        ready.set()
        loop.run_forever()

    def _app(handler):
        app = web.Application()
        app.router.add_post("/v1/chat/completions", handler)
        app.router.add_post("/v1/embeddings", handler)
        return app

    ready = threading.Event()
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait(5)

    def answer(status: int, content_type: str, body: bytes, headers: dict[str, str] | None = None) -> Provider:
        answers[:] = [(status, content_type, body, headers or {})]
        return Provider(base_url=f"http://127.0.0.1:{state['port']}/v1")

    yield answer
    asyncio.run_coroutine_threadsafe(state["runner"].cleanup(), state["loop"]).result(5)
    state["loop"].call_soon_threadsafe(state["loop"].stop)
    thread.join(5)


def stream(*events: bytes) -> bytes:
    return b"".join(b"data: " + e + b"\n\n" for e in events) + b"data: [DONE]\n\n"


@pytest.mark.parametrize(
    "body",
    [
        stream(b'{"choices": 5}'),  # choices that are no list
        stream(b'{"choices": [{"delta": {"content": "\xff\xfe"}}]}'),  # not UTF-8
        stream(b"[" * 100_000 + b"]" * 100_000),  # nested past all sense
        stream(b'{"choices": ["x"]}'),
    ],
)
def test_stream_events_no_server_should_send_are_malformed_answers(hostile, body):
    provider = hostile(200, "text/event-stream", body)
    outcome = send(provider, chat_request(stream=True))
    assert isinstance(outcome, Failure) and outcome.cause == "malformed"


def test_a_key_the_server_escaped_is_hidden_all_the_same(hostile):
    # json.dumps with ensure_ascii escapes nothing in a key, so the escapes are written by hand.
    escaped = "".join(f"\\u{ord(c):04x}" for c in SECRET)
    error = {"error": {"message": f"bad key {escaped}", "type": "invalid_request_error", "code": escaped}}
    body = json.dumps(error).replace("\\\\u", "\\u").encode()
    outcome = send(hostile(401, "application/json", body), chat_request())
    assert isinstance(outcome, Failure) and SECRET not in outcome.describe() and "****" in outcome.describe()
    choice = {"message": {"role": "assistant", "content": f"your key is {escaped}"}}
    answer = {"choices": [choice], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}
    outcome = send(
        hostile(200, "application/json", json.dumps(answer).replace("\\\\u", "\\u").encode()), chat_request()
    )
    assert isinstance(outcome, Answer)
    assert outcome.data["choices"][0]["message"]["content"] == "your key is ****"


def test_a_long_error_is_hidden_before_it_is_shortened(hostile):
    body = json.dumps({"error": {"message": f"{'x' * 280} Bearer {SECRET}", "type": "x", "code": None}}).encode()
    outcome = send(hostile(400, "application/json", body), chat_request())
    assert SECRET[:12] not in outcome.describe()


def test_url_credentials_are_hidden_as_written_and_as_basic_auth():
    import base64

    from batchgpt.redact import Redactor

    provider = Provider(base_url="http://alice:hunter2-pass@proxy.example/v1")
    redact = Redactor(provider, None, proxy="http://bob:proxy%2Dsecret@corp:3128")
    basic = base64.b64encode(b"alice:hunter2-pass").decode()
    text = redact.text(f"Authorization: Basic {basic}; url http://bob:proxy-secret@corp; alice:hunter2-pass")
    assert "hunter2" not in text and basic not in text and "proxy-secret" not in text


def test_only_credentials_are_hidden_and_short_keys_too():
    from batchgpt.redact import Redactor

    provider = Provider(
        headers=(
            ("X-Title", "Contract Review Application"),
            ("HTTP-Referer", "https://c.example"),
            ("x-api-key", "k3y-42x-header"),
        )
    )
    redact = Redactor(provider, "k3y-42x")
    assert (
        redact.text("Summarise the Contract Review Application at https://c.example")
        == "Summarise the Contract Review Application at https://c.example"
    )
    assert redact.text("keys k3y-42x and k3y-42x-header") == "keys **** and ****"


def test_a_provider_shows_no_credentials():
    provider = Provider(
        base_url="http://u:pw-secret-99@h/v1",
        headers=(("cf-aig-authorization", "Bearer cf-tok-123"),),
        proxy="http://p:proxy-pw@corp:3128",
    )
    shown = repr(provider)
    assert "pw-secret-99" not in shown and "cf-tok-123" not in shown and "proxy-pw" not in shown
    assert "http://h/v1" in shown and "cf-aig-authorization" in shown


async def _no_wait(seconds: float) -> None:
    """A retry's wait, at once."""


class _ConnectRecorder:
    """A proxy that records the CONNECT request an https call opens its tunnel with, then hangs up."""

    def __init__(self) -> None:
        self.heads: list[str] = []

    async def __aenter__(self) -> str:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.heads.append((await reader.readuntil(b"\r\n\r\n")).decode())
            writer.close()

        self._server = await asyncio.start_server(handle, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()


@pytest.mark.parametrize("call", ["send", "balance"])
def test_the_key_and_gateway_headers_never_reach_an_https_proxy(call):
    """The proxy sees only the CONNECT line: the key and the gateway's headers travel inside the
    TLS tunnel. aiohttp copies a session's default headers into the CONNECT request (and the
    Authorization header into Proxy-Authorization), so they must not be session defaults."""
    from batchgpt.balance import fetch_balance

    recorder = _ConnectRecorder()

    async def go() -> object:
        async with recorder as proxy_url:
            headers = (("cf-aig-authorization", "gw-TOKEN-7"),)
            provider = Provider(base_url="https://api.example.test/v1", proxy=proxy_url, headers=headers)
            if call == "balance":
                return await fetch_balance(provider, SECRET, timeout=5, sleep=_no_wait)
            async with Client(provider, SECRET, timeout=5, connections=1) as client:
                return await client.send(Pack.of(chat_request()))

    outcome = asyncio.run(go())
    assert isinstance(outcome, str) or (isinstance(outcome, Failure) and outcome.cause == "connection")
    assert recorder.heads and recorder.heads[0].startswith("CONNECT api.example.test:443 ")
    sent = "".join(recorder.heads)
    assert SECRET not in sent and "gw-TOKEN-7" not in sent and "authorization" not in sent.lower()


def test_a_provider_host_header_replaces_the_usual_one(server):
    # an IP base URL with a virtual host's name, as some gateways need: one Host, the provider's
    provider = Provider(base_url=server.base_url, headers=(("Host", "api.internal"),))
    answer = send(provider, chat_request())
    assert isinstance(answer, Answer) and server.seen[-1].headers["host"] == "api.internal"


def test_a_deployment_name_with_a_space_or_an_accent_is_sent_percent_encoded(server):
    provider = Provider(base_url=server.base_url.removesuffix("/v1"), kind="azure", api_version="2024-10-21")
    for model in ("my deployment", "modèle"):
        answer = send(provider, chat_request(model=model))
        assert isinstance(answer, Answer), answer
        assert server.seen[-1].path == f"/openai/deployments/{model}/chat/completions"  # as the server decoded it


def test_a_plain_request_target_is_sent_as_yarl_would_send_it():
    from yarl import URL

    from batchgpt.outbound import target as _target

    urls = [
        "http://127.0.0.1:8000/v1/chat/completions",
        "http://h/openai/deployments/gpt-4o_mini-2/chat/completions?api-version=2024-10-21",
        "http://h/v1/embeddings?a=1&b=",
        "http://h/v1/../chat/completions",
        "http://h/v1/./x",
        "http://h/.well-known/x",
        "http://h//v1//x",
        "http://h/v1/chat/completions/",
        "http://h/openai/deployments/my deployment/chat/completions?api-version=2024-10-21",
        "http://h/openai/deployments/modèle/x",
        "http://h/v1/a%2Fb",
        "http://h/v1/x?q=a b&r=é",
        "http://h/v1/x?flag",
        "http://h/v1/x?",
        "http://h/v1/x#frag",
        "http://h/v1/x;p=1",
        "http://h/v1/ä",
    ]
    for url in urls:
        assert _target(url) == URL(url).raw_path_qs, url
