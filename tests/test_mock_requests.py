"""The mock server refuses what the real API refuses, as the real API does: a table of malformed,
mistyped, out-of-bounds, huge and hostile bodies thrown at every route it serves. Each gets the
documented status (400; 413 past a size cap; 404 for a model that does not exist), an error body
of the API's shape with `param` naming the field, and never a 500, a traceback in the server's
log, or work without bound; after each, the server still answers."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from batchgpt.mock import Config, MockServer
from batchgpt.mock.reading import MAX_AUDIO_BYTES

KEY = "sk-mock-requests-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
USER = [{"role": "user", "content": "hi"}]
ROUTES = {  # route: a valid body for it (None: a multipart route)
    "/v1/chat/completions": {"model": "gpt-4o-mini", "messages": USER},
    "/v1/completions": {"model": "gpt-4o-mini", "prompt": "hi"},
    "/v1/responses": {"model": "gpt-4o-mini", "input": "hi"},
    "/v1/embeddings": {"model": "text-embedding-3-small", "input": "hi"},
    "/v1/moderations": {"input": "hi"},
    "/v1/images/generations": {"model": "dall-e-2", "prompt": "a cat"},
    "/v1/audio/speech": {"model": "tts-1", "input": "hi", "voice": "alloy"},
    "/v1/audio/transcriptions": None,
    "/v1/files": None,
    "/v1/batches": {"input_file_id": "file-nope", "endpoint": "/v1/chat/completions", "completion_window": "24h"},
    "/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21": {"messages": USER},
}
# what an empty object is refused for first, at each route
EMPTY = {
    "/v1/moderations": "input",
    "/v1/images/generations": "prompt",
    "/v1/audio/transcriptions": "file",
    "/v1/files": None,
    "/v1/batches": "input_file_id",
    "/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21": "messages",
}
DEEP = 100_000
# bodies no route takes: each is a 400 naming no field
BROKEN = {
    "no JSON": b"{not json",
    "empty": b"",
    "a list": b"[1, 2]",
    "null": b"null",
    "a string": b'"text"',
    "a number": b"42",
    "not UTF-8": b'{"model": "\xff\xfe"}',
    "UTF-16": '{"model": "x"}'.encode("utf-16"),
    "a byte-order mark": b'\xef\xbb\xbf{"model": "x"}',
    "nested past Python's stack": b'{"a": ' + b"[" * DEEP + b"]" * DEEP + b"}",
    "nested 200 levels": b'{"a": ' + b"[" * 200 + b"]" * 200 + b"}",
    "NaN": b'{"model": NaN}',
    "Infinity": b'{"n": Infinity}',
    "a number of 5,000 digits": b'{"n": 1' + b"0" * 5000 + b"}",
    "a lone surrogate": b'{"model": "\\ud800"}',
    "a lone surrogate in a key": b'{"\\udfff": 1}',
}


@pytest.fixture(scope="module")
def mock() -> Iterator[MockServer]:
    server = MockServer(Config(api_key=KEY, record=False)).start()
    yield server
    server.stop()


def send(
    server: MockServer,
    path: str,
    data: Any = None,
    content_type: str | None = "application/json",
    method: str = "POST",
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """(status, body) of one request; `data` is bytes, a JSON value (dumped), or a FormData."""

    async def go() -> tuple[int, bytes]:
        sent = {**AUTH, **({"Content-Type": content_type} if content_type else {}), **(headers or {})}
        raw = isinstance(data, (bytes, aiohttp.FormData)) or hasattr(data, "__aiter__") or data is None
        payload = data if raw else json.dumps(data)
        if isinstance(data, aiohttp.FormData):
            sent.pop("Content-Type", None)
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{server.port}{path}"
            async with session.request(method, url, data=payload, headers=sent) as response:
                return response.status, await response.read()

    return asyncio.run(go())


def error_of(raw: bytes) -> dict[str, Any]:
    """The error object of an answer, checked to be of the API's shape."""
    body = json.loads(raw)
    assert list(body) == ["error"] and set(body["error"]) == {"message", "type", "param", "code"}, body
    error = body["error"]
    assert isinstance(error["message"], str) and error["message"] and isinstance(error["type"], str)
    return error  # type: ignore[no-any-return]


def still_up(server: MockServer) -> None:
    status, raw = send(server, "/v1/chat/completions", ROUTES["/v1/chat/completions"])
    assert status == 200 and json.loads(raw)["choices"][0]["message"]["content"] == "Echo: hi"


@pytest.fixture(autouse=True)
def no_traceback(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Nothing the server logs (on its own thread) is an error or carries a traceback."""
    caplog.set_level(logging.WARNING)
    yield
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not failures, caplog.text
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize("case", list(BROKEN))
def test_a_body_that_is_no_json_object_is_a_400_at_every_route(mock, route, case):
    status, raw = send(mock, route, BROKEN[case])
    error = error_of(raw)
    assert status == 400 and error["type"] == "invalid_request_error" and error["param"] is None, raw
    still_up(mock)


@pytest.mark.parametrize("route", list(ROUTES))
def test_an_empty_object_is_refused_for_its_first_missing_field(mock, route):
    status, raw = send(mock, route, {})
    assert status == 400 and error_of(raw)["param"] == EMPTY.get(route, "model"), raw


@pytest.mark.parametrize("route", [r for r, body in ROUTES.items() if body is not None and "batches" not in r])
@pytest.mark.parametrize("model", [None, 5, "", ["gpt-4o-mini"], {"id": "x"}, True])
def test_a_model_of_the_wrong_type_names_the_model(mock, route, model):
    status, raw = send(mock, route, {**ROUTES[route], "model": model})
    if model is None and route in ("/v1/moderations", "/v1/images/generations"):
        assert status == 200  # these kinds default their model
        return
    assert status == 400 and error_of(raw)["param"] == "model", raw


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": USER, **fields}


def part(**fields: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": [fields]}]}


MANY = 10_000
# (route, body, status, param, code): each field broken as a client breaks it
FIELDS: list[tuple[str, dict[str, Any], int, str | None, str | None]] = [
    ("chat", chat(messages=None), 400, "messages", "invalid_type"),
    ("chat", chat(messages=[]), 400, "messages", "empty_array"),
    ("chat", chat(messages="hi"), 400, "messages", "invalid_type"),
    ("chat", chat(messages=["hi"]), 400, "messages[0]", "invalid_type"),
    ("chat", chat(messages=[{"content": "hi"}]), 400, "messages[0].role", "missing_required_parameter"),
    ("chat", chat(messages=[{"role": "robot", "content": "x"}]), 400, "messages[0].role", "invalid_value"),
    ("chat", chat(messages=[{"role": 7, "content": "x"}]), 400, "messages[0].role", "invalid_type"),
    ("chat", chat(messages=[{"role": "user"}]), 400, "messages[0].content", "missing_required_parameter"),
    ("chat", chat(messages=[{"role": "user", "content": 5}]), 400, "messages[0].content", "invalid_type"),
    ("chat", chat(messages=[{"role": "user", "content": {"a": 1}}]), 400, "messages[0].content", "invalid_type"),
    ("chat", part(type="text", text=5), 400, "messages[0].content[0].text", "invalid_type"),
    ("chat", part(type="text"), 400, "messages[0].content[0].text", "missing_required_parameter"),
    ("chat", part(type="video"), 400, "messages[0].content[0].type", "invalid_value"),
    ("chat", part(text="no type"), 400, "messages[0].content[0].type", "missing_required_parameter"),
    ("chat", part(type="image_url", image_url="x"), 400, "messages[0].content[0].image_url", "invalid_type"),
    ("chat", part(type="image_url", image_url={"url": 5}), 400, "messages[0].content[0].image_url.url", "invalid_type"),
    ("chat", part(type="input_audio", input_audio={"data": []}), 400, "messages[0].content[0].input_audio.data", None),
    ("chat", chat(messages=[{"role": "user", "content": [5]}]), 400, "messages[0].content[0]", "invalid_type"),
    ("chat", chat(messages=[{"role": "user", "content": "x", "name": 5}]), 400, "messages[0].name", "invalid_type"),
    ("chat", chat(messages=[{"role": "assistant", "tool_calls": [1]}]), 400, "messages[0].tool_calls[0]", None),
    ("chat", chat(n=100_000_000), 400, "n", "integer_above_max_value"),
    ("chat", chat(n=0), 400, "n", "integer_below_min_value"),
    ("chat", chat(n="5"), 400, "n", "invalid_type"),
    ("chat", chat(n=2.5), 400, "n", "invalid_type"),
    ("chat", chat(n=True), 400, "n", "invalid_type"),
    ("chat", chat(n=[1]), 400, "n", "invalid_type"),
    ("chat", chat(max_tokens=-5), 400, "max_tokens", "integer_below_min_value"),
    ("chat", chat(max_tokens=10**30), 400, "max_tokens", "integer_above_max_value"),
    ("chat", chat(max_tokens="a"), 400, "max_tokens", "invalid_type"),
    ("chat", chat(max_completion_tokens=0), 400, "max_completion_tokens", "integer_below_min_value"),
    ("chat", chat(temperature=5), 400, "temperature", "decimal_above_max_value"),
    ("chat", chat(temperature="hot"), 400, "temperature", "invalid_type"),
    ("chat", chat(top_p=-1), 400, "top_p", "decimal_below_min_value"),
    ("chat", chat(presence_penalty=1e308), 400, "presence_penalty", "decimal_above_max_value"),
    ("chat", chat(top_logprobs=21), 400, "top_logprobs", "integer_above_max_value"),
    ("chat", chat(stream="yes"), 400, "stream", "invalid_type"),
    ("chat", chat(stop=["a", "b", "c", "d", "e"]), 400, "stop", "array_above_max_length"),
    ("chat", chat(stop=5), 400, "stop", "invalid_type"),
    ("chat", chat(stop=["a", 5]), 400, "stop[1]", "invalid_type"),
    ("chat", chat(tools=[1]), 400, "tools[0]", "invalid_type"),
    ("chat", chat(tools={"type": "function"}), 400, "tools", "invalid_type"),
    ("chat", chat(tools=[{"function": {"name": "f"}}]), 400, "tools[0].type", "missing_required_parameter"),
    ("chat", chat(tools=[{"type": "function"}]), 400, "tools[0].function", "missing_required_parameter"),
    ("chat", chat(tools=[{"type": "function", "function": "f"}]), 400, "tools[0].function", "invalid_type"),
    ("chat", chat(tools=[{"type": "function", "function": {}}]), 400, "tools[0].function.name", None),
    ("chat", chat(tools=[{"type": "function", "function": {"name": 5}}]), 400, "tools[0].function.name", None),
    ("chat", chat(tools=[{"type": "function", "function": {"name": "a b"}}]), 400, "tools[0].function.name", None),
    (
        "chat",
        chat(tools=[{"type": "function", "function": {"name": "f", "parameters": {"properties": {"x": 1}}}}]),
        400,
        "tools[0].function.parameters.properties.x",
        "invalid_type",
    ),
    (
        "chat",
        chat(tools=[{"type": "function", "function": {"name": "f", "description": ["d"]}}]),
        400,
        "tools[0].function.description",
        "invalid_type",
    ),
    ("chat", chat(tools=[{"type": "function", "function": {"name": "f"}}] * MANY), 400, "tools", None),
    ("chat", chat(tool_choice=5), 400, "tool_choice", "invalid_type"),
    ("chat", chat(tool_choice="sometimes"), 400, "tool_choice", "invalid_value"),
    ("chat", chat(tool_choice={"type": "function", "function": "f"}), 400, "tool_choice.function", None),
    ("chat", chat(response_format="json"), 400, "response_format", "invalid_type"),
    ("chat", chat(response_format={}), 400, "response_format.type", "missing_required_parameter"),
    ("chat", chat(response_format={"type": "xml"}), 400, "response_format.type", "invalid_value"),
    ("chat", chat(response_format={"type": "json_schema"}), 400, "response_format.json_schema", None),
    (
        "chat",
        chat(response_format={"type": "json_schema", "json_schema": "s"}),
        400,
        "response_format.json_schema",
        "invalid_type",
    ),
    (
        "chat",
        chat(response_format={"type": "json_schema", "json_schema": {"name": "s", "schema": []}}),
        400,
        "response_format.json_schema.schema",
        "invalid_type",
    ),
    ("chat", chat(stream=True, stream_options="x"), 400, "stream_options", "invalid_type"),
    ("chat", chat(stream_options={"include_usage": "yes"}), 400, "stream_options.include_usage", "invalid_type"),
    ("chat", chat(logit_bias={"50256": 500}), 400, "logit_bias.50256", "integer_above_max_value"),
    ("chat", chat(logit_bias=[1]), 400, "logit_bias", "invalid_type"),
    ("chat", chat(metadata={"k": 5}), 400, "metadata.k", "invalid_type"),
    ("chat", chat(metadata={f"k{i}": "v" for i in range(17)}), 400, "metadata", None),
    ("chat", chat(modalities="audio"), 400, "modalities", "invalid_type"),
    ("chat", chat(model="gpt-5", max_tokens=5), 400, "max_tokens", "unsupported_parameter"),
    ("chat", chat(messages=[{"role": "user", "content": f"m{i}"} for i in range(MANY)]), 200, None, None),
    ("completions", {"model": "m"}, 400, "prompt", "missing_required_parameter"),
    ("completions", {"model": "m", "prompt": {}}, 400, "prompt", "invalid_type"),
    ("completions", {"model": "m", "prompt": []}, 400, "prompt", "empty_array"),
    ("completions", {"model": "m", "prompt": [1, "a"]}, 400, "prompt[0]", "invalid_type"),
    ("completions", {"model": "m", "prompt": "x", "max_tokens": -1}, 400, "max_tokens", "integer_below_min_value"),
    ("completions", {"model": "m", "prompt": "x", "n": 10**8}, 400, "n", "integer_above_max_value"),
    ("completions", {"model": "m", "prompt": "x", "best_of": 100}, 400, "best_of", "integer_above_max_value"),
    ("completions", {"model": "m", "prompt": "x", "logprobs": 10}, 400, "logprobs", "integer_above_max_value"),
    ("completions", {"model": "m", "prompt": "x", "echo": "no"}, 400, "echo", "invalid_type"),
    ("completions", {"model": "m", "prompt": [[1, 2], [3]]}, 200, None, None),
    ("completions", {"model": "m", "prompt": ["p"] * MANY}, 200, None, None),
    ("responses", {"model": "m"}, 400, "input", "missing_required_parameter"),
    ("responses", {"model": "m", "input": 5}, 400, "input", "invalid_type"),
    ("responses", {"model": "m", "input": [5]}, 400, "input[0]", "invalid_type"),
    ("responses", {"model": "m", "input": [{}]}, 400, "input[0].role", "missing_required_parameter"),
    ("responses", {"model": "m", "input": [{"role": "robot", "content": "x"}]}, 400, "input[0].role", None),
    ("responses", {"model": "m", "input": [{"role": "user", "content": 5}]}, 400, "input[0].content", None),
    (
        "responses",
        {"model": "m", "input": [{"role": "user", "content": [{"type": "input_text", "text": 7}]}]},
        400,
        "input[0].content[0].text",
        "invalid_type",
    ),
    ("responses", {"model": "m", "input": "x", "max_output_tokens": 0}, 400, "max_output_tokens", None),
    ("responses", {"model": "m", "input": "x", "max_output_tokens": "x"}, 400, "max_output_tokens", None),
    ("responses", {"model": "m", "input": "x", "instructions": 5}, 400, "instructions", "invalid_type"),
    ("responses", {"model": "m", "input": "x", "text": {"format": "x"}}, 400, "text.format", "invalid_type"),
    (
        "responses",
        {"model": "m", "input": "x", "text": {"format": {"type": "json_schema"}}},
        400,
        "text.format.name",
        "missing_required_parameter",
    ),
    ("responses", {"model": "m", "input": "x", "tools": [{"type": "function"}]}, 400, "tools[0].function", None),
    ("responses", {"model": "m", "input": [{"role": "user", "content": "x"}] * MANY}, 200, None, None),
    ("embeddings", {"model": "e"}, 400, "input", "missing_required_parameter"),
    ("embeddings", {"model": "e", "input": ""}, 400, "input", None),
    ("embeddings", {"model": "e", "input": [""]}, 400, "input[0]", None),
    ("embeddings", {"model": "e", "input": [[]]}, 400, "input[0]", None),
    ("embeddings", {"model": "e", "input": ["a", 5]}, 400, "input[1]", "invalid_type"),
    ("embeddings", {"model": "e", "input": {"a": 1}}, 400, "input", "invalid_type"),
    ("embeddings", {"model": "e", "input": ["x"] * MANY}, 400, "input", "array_above_max_length"),
    ("embeddings", {"model": "e", "input": "word " * 9000}, 400, "input", "context_length_exceeded"),
    # 6,000 tokens an input exactly, 7,500 counted four characters a token: within 8,192 either way
    ("embeddings", {"model": "e", "input": ["word " * 6000] * 60}, 400, "input", "max_tokens_per_request"),
    ("embeddings", {"model": "e", "input": [[1] * 9000]}, 400, "input", "context_length_exceeded"),
    ("embeddings", {"model": "e", "input": "x", "dimensions": 0}, 400, "dimensions", "integer_below_min_value"),
    ("embeddings", {"model": "e", "input": "x", "dimensions": 10**9}, 400, "dimensions", "integer_above_max_value"),
    ("embeddings", {"model": "e", "input": "x", "dimensions": "x"}, 400, "dimensions", "invalid_type"),
    ("embeddings", {"model": "e", "input": "x", "encoding_format": "hex"}, 400, "encoding_format", "invalid_value"),
    (
        "embeddings",
        {"model": "e", "input": ["x"] * 2048, "dimensions": 8, "encoding_format": "base64"},
        200,
        None,
        None,
    ),
    ("embeddings", {"model": "e", "input": [1, 2, 3]}, 200, None, None),
    ("embeddings", {"model": "e", "input": [[1, 2], [3]]}, 200, None, None),
    ("moderations", {"input": 5}, 400, "input", "invalid_type"),
    ("moderations", {"input": None}, 400, "input", "invalid_type"),
    ("moderations", {"input": [{"type": "video"}]}, 400, "input[0].type", "invalid_value"),
    ("moderations", {"input": [{"type": "text", "text": 5}]}, 400, "input[0].text", "invalid_type"),
    ("moderations", {"input": ["a", {"type": "text", "text": "b"}]}, 400, "input[0]", "invalid_type"),
    ("moderations", {"input": ["x"] * MANY}, 400, "input", "array_above_max_length"),
    ("moderations", {"input": [{"type": "text", "text": "kill"}]}, 200, None, None),
    ("images", {"model": "dall-e-2", "prompt": "x", "n": 100_000_000}, 400, "n", "integer_above_max_value"),
    ("images", {"model": "dall-e-2", "prompt": "x", "n": 0}, 400, "n", "integer_below_min_value"),
    ("images", {"model": "dall-e-2", "prompt": "x", "n": "2"}, 400, "n", "invalid_type"),
    ("images", {"model": "dall-e-3", "prompt": "x", "n": 2}, 400, "n", None),
    ("images", {"model": "dall-e-2", "prompt": 5}, 400, "prompt", "invalid_type"),
    ("images", {"model": "dall-e-2", "prompt": "x" * 1001}, 400, "prompt", "string_above_max_length"),
    ("images", {"model": "gpt-image-1", "prompt": "x" * 32_001}, 400, "prompt", "string_above_max_length"),
    ("images", {"model": "dall-e-2", "prompt": "x", "size": "9x9"}, 400, "size", None),
    ("images", {"model": "dall-e-2", "prompt": "x", "size": ["1024x1024"]}, 400, "size", "invalid_type"),
    ("images", {"model": "dall-e-2", "prompt": "x", "response_format": "gif"}, 400, "response_format", None),
    ("images", {"prompt": "x", "n": 10}, 200, None, None),
    ("speech", {"model": "tts-1", "input": "x"}, 400, "voice", "missing_required_parameter"),
    ("speech", {"model": "tts-1", "voice": "alloy"}, 400, "input", "missing_required_parameter"),
    ("speech", {"model": "tts-1", "input": "x", "voice": 5}, 400, "voice", "invalid_type"),
    ("speech", {"model": "tts-1", "input": "x", "voice": {}}, 400, "voice.id", "missing_required_parameter"),
    ("speech", {"model": "tts-1", "input": "x", "voice": ["alloy"] * MANY}, 400, "voice", "invalid_type"),
    ("speech", {"model": "tts-1", "input": "x" * 5000, "voice": "alloy"}, 400, "input", "string_above_max_length"),
    ("speech", {"model": "tts-1", "input": "x", "voice": "alloy", "speed": 0.01}, 400, "speed", None),
    ("speech", {"model": "tts-1", "input": "x", "voice": "alloy", "speed": 100}, 400, "speed", None),
    (
        "speech",
        {"model": "tts-1", "input": "x", "voice": "alloy", "response_format": "ogg"},
        400,
        "response_format",
        None,
    ),
    ("speech", {"model": "tts-1", "input": "x", "voice": {"id": "voice_1"}, "response_format": "wav"}, 200, None, None),
    ("batches", {"input_file_id": 5, "endpoint": "/v1/chat/completions"}, 400, "input_file_id", "invalid_type"),
    ("batches", {**ROUTES["/v1/batches"], "endpoint": None}, 400, "endpoint", "invalid_type"),
    ("batches", {**ROUTES["/v1/batches"], "metadata": []}, 400, "metadata", "invalid_type"),
    ("batches", {**ROUTES["/v1/batches"], "metadata": {"k": {"v": 1}}}, 400, "metadata.k", "invalid_type"),
]
PATHS = {
    "chat": "/v1/chat/completions",
    "completions": "/v1/completions",
    "responses": "/v1/responses",
    "embeddings": "/v1/embeddings",
    "moderations": "/v1/moderations",
    "images": "/v1/images/generations",
    "speech": "/v1/audio/speech",
    "batches": "/v1/batches",
}


@pytest.mark.parametrize(("route", "body", "status", "param", "code"), FIELDS, ids=lambda v: str(v)[:60])
def test_each_field_is_checked_as_the_api_checks_it(mock, route, body, status, param, code):
    got, raw = send(mock, PATHS[route], body)
    assert got == status, raw[:300]
    if status != 200:
        error = error_of(raw)
        assert error["param"] == param and error["type"] == "invalid_request_error", error
        assert code is None or error["code"] == code, error
    still_up(mock)


def form(**fields: Any) -> aiohttp.FormData:
    data = aiohttp.FormData(default_to_multipart=True)
    for name, value in fields.items():
        if isinstance(value, tuple):
            data.add_field(name, value[1], filename=value[0])
        else:
            data.add_field(name, value)
    return data


WAV = ("call.wav", b"RIFF\x00\x00\x00\x00WAVEfmt ")  # a broken WAV: answered by its size
UPLOADS = [  # (form fields, param)
    ({"model": "whisper-1"}, "file"),
    ({"file": WAV}, "model"),
    ({"file": ("notes.txt", b"x"), "model": "whisper-1"}, "file"),
    ({"file": WAV, "model": "whisper-1", "temperature": "hot"}, "temperature"),
    ({"file": WAV, "model": "whisper-1", "temperature": "5"}, "temperature"),
    ({"file": WAV, "model": "whisper-1", "response_format": "xml"}, "response_format"),
    ({"_file": "call.wav", "model": "whisper-1"}, "file"),  # a text field cannot pose as the upload
    ({"upload": WAV, "model": "whisper-1"}, "file"),
]


@pytest.mark.parametrize(("fields", "param"), UPLOADS, ids=lambda v: str(v)[:50])
def test_a_transcription_form_is_checked_field_by_field(mock, fields, param):
    status, raw = send(mock, "/v1/audio/transcriptions", form(**fields))
    assert status == 400 and error_of(raw)["param"] == param, raw
    status, raw = send(mock, "/v1/audio/transcriptions", form(file=WAV, model="whisper-1", temperature="0.2"))
    assert status == 200 and json.loads(raw)["text"].startswith("Transcript of call.wav")


def test_broken_multipart_forms_are_400s():
    server = MockServer(Config(api_key=KEY, record=False)).start()
    try:
        for route in ("/v1/audio/transcriptions", "/v1/files"):
            for body, content_type in [
                (b"--x\r\nnot a part", "multipart/form-data; boundary=x"),
                (b"anything", "multipart/form-data"),
                (b'--x\r\nContent-Disposition: form-data; name="model"\r\n\r\n\xff\xfe\r\n--x--\r\n', None),
                (
                    b'--x\r\nContent-Disposition: form-data; name="model"\r\nContent-Type: text/plain; '
                    b"charset=nope\r\n\r\nwhisper-1\r\n--x--\r\n",
                    None,
                ),
            ]:
                status, raw = send(server, route, body, content_type or "multipart/form-data; boundary=x")
                assert status == 400, (route, body, raw)
                error_of(raw)
        still_up(server)
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"file": ("in.jsonl", b"{}")}, "purpose"),
        ({"purpose": "batch"}, "file"),
        ({"file": WAV, "purpose": "fun"}, "purpose"),
    ],
    ids=["no purpose", "no file", "unknown purpose"],
)
def test_an_upload_is_checked_field_by_field(mock, fields, param):
    status, raw = send(mock, "/v1/files", form(**fields))
    assert status == 400 and error_of(raw)["param"] == param, raw


def test_a_query_that_is_no_count_is_a_400(mock):
    for limit in ("abc", "-1", "0", "101", "1e3", "１"):
        status, raw = send(mock, f"/v1/batches?limit={limit}", method="GET", content_type=None)
        assert status == 400 and error_of(raw)["param"] == "limit", (limit, raw)
    assert send(mock, "/v1/batches?limit=100", method="GET", content_type=None)[0] == 200


def upload_lines(server: MockServer, data: bytes) -> dict[str, Any]:
    """A batch of these input file bytes, as the server reads it once validated."""
    status, raw = send(server, "/v1/files", form(purpose="batch", file=("in.jsonl", data)))
    assert status == 200, raw
    creation = {"input_file_id": json.loads(raw)["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    status, raw = send(server, "/v1/batches", creation)
    assert status == 200, raw
    status, raw = send(server, f"/v1/batches/{json.loads(raw)['id']}", method="GET", content_type=None)
    return json.loads(raw)  # type: ignore[no-any-return]


def test_batch_lines_no_online_route_would_read_fail_validation_naming_their_lines(mock):
    good = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": ROUTES["/v1/chat/completions"]}
    bad = [
        {**good, "custom_id": "b", "body": [1]},
        {**good, "custom_id": 7},
        {**good, "custom_id": "c", "body": {"a": [[[[1]]]] * 3}},
    ]
    data = b"\n".join(
        [json.dumps(good).encode()]
        + [json.dumps(x).encode() for x in bad]
        + [
            b'{"custom_id": "d", "body": {"x": "\xff"}}',
            b'{"custom_id": "e", "body": ' + b"[" * DEEP + b"]" * DEEP + b"}",
        ]
        + [b'{"custom_id": "f", "method": "POST", "url": "/v1/chat/completions", "body": {"m": "\\ud800"}}']
    )
    batch = upload_lines(mock, data)
    assert batch["status"] == "failed"
    errors = {(e["code"], e["line"]) for e in batch["errors"]["data"]}
    assert {(code, line) for code, line in errors if code == "invalid_json_line"} == {
        ("invalid_json_line", n) for n in (2, 3, 5, 6, 7)
    }


def test_batch_lines_with_malformed_bodies_are_answered_with_their_400s_in_the_error_file(mock):
    line = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions"}
    bodies = [chat(n=10**8), chat(max_tokens="x"), chat(messages=[5]), ROUTES["/v1/chat/completions"]]
    data = b"\n".join(json.dumps({**line, "custom_id": f"c{i}", "body": b}).encode() for i, b in enumerate(bodies))
    batch = upload_lines(mock, data)
    assert batch["status"] == "completed" and batch["request_counts"] == {"total": 4, "completed": 1, "failed": 3}
    status, raw = send(mock, f"/v1/files/{batch['error_file_id']}/content", method="GET", content_type=None)
    failed = {x["custom_id"]: x["response"] for x in map(json.loads, raw.splitlines())}
    assert {c: (r["status_code"], r["body"]["error"]["param"]) for c, r in failed.items()} == {
        "c0": (400, "n"),
        "c1": (400, "max_tokens"),
        "c2": (400, "messages[0]"),
    }


def test_an_unknown_model_is_a_404_model_not_found_when_the_server_knows_its_models():
    server = MockServer(Config(api_key=KEY, models=("gpt-4o-mini",))).start()
    try:
        status, raw = send(server, "/v1/chat/completions", chat(model="gpt-nope"))
        error = error_of(raw)
        assert status == 404 and error["code"] == "model_not_found" and "`gpt-nope` does not exist" in error["message"]
        assert send(server, "/v1/chat/completions", chat())[0] == 200
        status, raw = send(server, "/v1/chat/completions", chat(model="gpt-nope", n="x"))
        assert status == 400 and error_of(raw)["param"] == "n"  # the body is checked before the model
        status, raw = send(server, "/v1/moderations", {"input": "x"})  # the default model is no exception
        assert status == 404 and "omni-moderation-latest" in error_of(raw)["message"]
    finally:
        server.stop()


@pytest.fixture
def small() -> Iterator[MockServer]:
    """A server with small size caps, to exceed them cheaply."""
    server = MockServer(Config(api_key=KEY, record=False, max_body=64 * 1024, max_upload=64 * 1024)).start()
    yield server
    server.stop()


def oversize(status: int, raw: bytes, limit: int) -> None:
    error = error_of(raw)
    assert status == 413 and error["type"] == "server_error" and error["param"] is None, raw
    assert error["message"].startswith(f"Maximum content size limit ({limit}) exceeded (")


@pytest.mark.parametrize("route", list(ROUTES))
def test_a_json_body_past_the_cap_is_a_413_in_the_apis_words(small, route):
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x" * 100_000}]})
    status, raw = send(small, route, body.encode())
    oversize(status, raw, 64 * 1024)
    assert f"exceeded ({len(body)} bytes read)" in error_of(raw)["message"]  # read to its end, not kept
    still_up(small)


def test_a_body_without_a_length_and_a_compressed_one_are_capped_as_they_arrive(small):
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(200):
            yield b" " * 1024

    status, raw = send(small, "/v1/chat/completions", chunks())
    oversize(status, raw, 64 * 1024)
    bomb = gzip.compress(b'{"model": "' + b"x" * 50 * 2**20 + b'"}')  # 50 KB that inflates to 50 MB
    status, raw = send(small, "/v1/chat/completions", bomb, headers={"Content-Encoding": "gzip"})
    oversize(status, raw, 64 * 1024)
    status, raw = send(small, "/v1/chat/completions", b"\x1f\x8bnot gzip", headers={"Content-Encoding": "gzip"})
    assert status == 400 and error_of(raw)["param"] is None
    fits = gzip.compress(json.dumps(chat()).encode())
    assert send(small, "/v1/chat/completions", fits, headers={"Content-Encoding": "gzip"})[0] == 200
    still_up(small)


def test_an_upload_past_the_cap_is_a_413(small):
    status, raw = send(small, "/v1/files", form(purpose="batch", file=("in.jsonl", b"{}\n" * 30_000)))
    oversize(status, raw, 64 * 1024)
    still_up(small)


def test_a_transcription_past_25_mib_is_the_apis_413(mock):
    big = form(model="whisper-1", file=("big.wav", b"\0" * (MAX_AUDIO_BYTES + 1)))
    oversize(*send(mock, "/v1/audio/transcriptions", big), 26_214_400)
    fits = form(model="whisper-1", file=("big.wav", b"\0" * (MAX_AUDIO_BYTES - 4096)))  # the form's own bytes count too
    status, raw = send(mock, "/v1/audio/transcriptions", fits)
    assert status == 200, raw[:300]
