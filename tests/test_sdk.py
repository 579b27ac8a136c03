"""The official openai SDK drives `batchgpt mock-server` (issue 27, item 2): each of the 40 common
calls in CALLS parses into the SDK's own types, and its fields say what the mock answered.

One server (the real command, in a process of its own) serves the whole module; the clients
retry at most once, and the 429s say to wait 50 ms, so the module runs in seconds.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from batchgpt.tokens import Counter

openai = pytest.importorskip("openai")
pydantic = pytest.importorskip("pydantic")

KEY = "sk-sdk-test-0123456789abcdef"
ROOT = Path(__file__).resolve().parents[1]
RETRIED = "RETRY-ONCE"  # a request holding this text gets one 429 before its answer
LIMITED = "ALWAYS-LIMITED"  # and this one only 429s
BATCH_DELAY = 0.5


class Mock:
    """`batchgpt mock-server` on a free port, and the counts its requests leave."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        command = [sys.executable, "-m", "batchgpt.cli", "mock-server", "--port", str(self.port), "--api-key", KEY]
        command += ["--rpm", "100000", "--tpm", "100000000"]  # high enough never to refuse: for the headers
        command += ["--fault", f"429:first=1,match={RETRIED}", "--fault", f"429,match={LIMITED}"]
        command += ["--batch-delay", str(BATCH_DELAY)]  # so that a batch is in progress when it is cancelled
        env = {**os.environ, "PYTHONPATH": str(ROOT)}  # a cached encoding is waited for, however slow
        self.log = tempfile.TemporaryFile()  # a file, not a pipe: a full pipe would stall the server
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=self.log)
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._wait()

    def _wait(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"the mock server ended: {self.log.read().decode(errors='replace')}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the mock server did not start")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.log.close()


@pytest.fixture(scope="module")
def mock() -> Iterator[Mock]:
    server = Mock()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(mock: Mock) -> Any:
    return openai.OpenAI(api_key=KEY, base_url=mock.base_url, max_retries=1, timeout=20)


def png(width: int, height: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def pdf(pages: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    sheets = [Image.new("RGB", (85, 110), (k * 40 % 256, 90, 90)) for k in range(pages)]
    sheets[0].save(buffer, "PDF", save_all=True, append_images=sheets[1:])
    return buffer.getvalue()


def sha(data: bytes) -> str:
    """What the mock's answer says of media: the first 12 hex digits of its bytes' sha256."""
    return hashlib.sha256(data).hexdigest()[:12]


def data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def ask(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city", "days"],
            "additionalProperties": False,
        },
    },
}


# ---------------------------------------------------------------------------------------- models


def models_list(client: Any, mock: Mock) -> None:
    listed = client.models.list()
    ids = [m.id for m in listed]
    assert "gpt-4o-mini" in ids and all(isinstance(m, openai.types.Model) for m in listed.data)
    assert all(m.object == "model" and isinstance(m.created, int) and m.owned_by for m in listed.data)


def models_retrieve(client: Any, mock: Mock) -> None:
    model = client.models.retrieve("gpt-4o-mini")
    assert isinstance(model, openai.types.Model) and model.id == "gpt-4o-mini" and model.object == "model"


# ------------------------------------------------------------------------------------------ chat


def chat_create(client: Any, mock: Mock) -> None:
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=ask("Say this is a test"))
    assert isinstance(answer, openai.types.chat.ChatCompletion)
    assert answer.choices[0].message.content == "Echo: Say this is a test"
    assert answer.choices[0].finish_reason == "stop" and answer.object == "chat.completion"
    usage = answer.usage
    assert usage is not None and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 0
    cut = client.chat.completions.create(
        model="gpt-4o-mini", messages=ask("one two three four five six seven"), max_completion_tokens=3
    )
    assert cut.choices[0].finish_reason == "length" and cut.usage.completion_tokens == 3


def chat_n(client: Any, mock: Mock) -> None:
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=ask("again"), n=3)
    assert [c.index for c in answer.choices] == [0, 1, 2]
    assert {c.message.content for c in answer.choices} == {"Echo: again"}
    one = client.chat.completions.create(model="gpt-4o-mini", messages=ask("again"))
    assert answer.usage.completion_tokens == 3 * one.usage.completion_tokens
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=ask("twice"), stream=True, n=2))
    for index in (0, 1):
        said = "".join(c.delta.content or "" for k in chunks for c in k.choices if c.index == index)
        assert said == "Echo: twice"


def chat_logprobs(client: Any, mock: Mock) -> None:
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=ask("odds"), logprobs=True, top_logprobs=2)
    logprobs = answer.choices[0].logprobs
    assert logprobs is not None and logprobs.content
    assert "".join(t.token for t in logprobs.content) == answer.choices[0].message.content
    assert all(len(t.top_logprobs) == 2 and t.top_logprobs[0].token == t.token for t in logprobs.content)
    assert all(t.logprob <= 0 and t.bytes == list(t.token.encode()) for t in logprobs.content)


def chat_tools(client: Any, mock: Mock) -> None:
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=ask("Weather in Paris?"), tools=[WEATHER])
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.function.name == "get_weather" and call.id.startswith("call_")
    arguments = json.loads(call.function.arguments)
    assert arguments == {"city": "Weather in Paris?", "days": 1}
    assert answer.usage.completion_tokens > 0
    messages = ask("Weather in Paris?") + [
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    # the tool has answered: the model speaks
    spoken = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=[WEATHER])
    assert spoken.choices[0].message.content == "Echo: Weather in Paris?" and spoken.choices[0].finish_reason == "stop"


def chat_tool_choice(client: Any, mock: Mock) -> None:
    other = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
    forced = {"type": "function", "function": {"name": "get_time"}}
    answer = client.chat.completions.create(
        model="gpt-4o-mini", messages=ask("Time?"), tools=[WEATHER, other], tool_choice=forced
    )
    assert answer.choices[0].message.tool_calls[0].function.name == "get_time"
    plain = client.chat.completions.create(
        model="gpt-4o-mini", messages=ask("No tools"), tools=[WEATHER], tool_choice="none"
    )
    assert plain.choices[0].message.content == "Echo: No tools" and not plain.choices[0].message.tool_calls


def chat_stream(client: Any, mock: Mock) -> None:
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=ask("streamed words"), stream=True))
    assert all(isinstance(c, openai.types.chat.ChatCompletionChunk) for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Echo: streamed words"
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)


def chat_stream_usage(client: Any, mock: Mock) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=ask("count me"), stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    whole = client.chat.completions.create(model="gpt-4o-mini", messages=ask("count me"))
    assert chunks[-1].usage.total_tokens == whole.usage.total_tokens


def chat_stream_helper(client: Any, mock: Mock) -> None:
    with client.chat.completions.stream(model="gpt-4o-mini", messages=ask("helper")) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_completion()
    assert "content.delta" in kinds and "content.done" in kinds
    assert final.choices[0].message.content == "Echo: helper"


def chat_stream_tools(client: Any, mock: Mock) -> None:
    with client.chat.completions.stream(
        model="gpt-4o-mini", messages=ask("Weather in Oslo?"), tools=[WEATHER]
    ) as stream:
        done = [e for e in stream if e.type == "tool_calls.function.arguments.done"]
        final = stream.get_final_completion()
    call = final.choices[0].message.tool_calls[0]
    assert (
        done and done[0].name == "get_weather" and json.loads(call.function.arguments) == json.loads(done[0].arguments)
    )


class Product(pydantic.BaseModel):
    name: str
    price: float
    tags: list[str]


def chat_parse(client: Any, mock: Mock) -> None:
    answer = client.chat.completions.parse(model="gpt-4o-mini", messages=ask("A red kettle"), response_format=Product)
    parsed = answer.choices[0].message.parsed
    assert isinstance(parsed, Product) and parsed.name == "Echo: A red kettle" and parsed.price == 1.5


def chat_image(client: Any, mock: Mock) -> None:
    picture = png(1024, 1024)
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": data_url(picture, "image/png"), "detail": "high"}},
    ]
    answer = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": content}])
    assert answer.choices[0].message.content == f"Echo: What is this? [image 1024x1024 sha256:{sha(picture)}]"
    text_only = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": [{"type": "text", "text": "What is this?"}]}]
    )
    assert answer.usage.prompt_tokens == text_only.usage.prompt_tokens + 765


def chat_async(client: Any, mock: Mock) -> None:
    import asyncio

    async def go() -> list[str | None]:
        async with openai.AsyncOpenAI(api_key=KEY, base_url=mock.base_url, max_retries=1) as asynchronous:
            answers = await asyncio.gather(
                *(asynchronous.chat.completions.create(model="gpt-4o-mini", messages=ask(f"n{k}")) for k in range(5))
            )
        return [a.choices[0].message.content for a in answers]

    assert asyncio.run(go()) == [f"Echo: n{k}" for k in range(5)]


# -------------------------------------------------------------------- completions, embeddings, ...


def completions_create(client: Any, mock: Mock) -> None:
    answer = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Once upon", max_tokens=5)
    assert isinstance(answer, openai.types.Completion) and answer.choices[0].text.startswith("Echo")
    assert answer.usage.completion_tokens <= 5 and answer.object == "text_completion"


def completions_stream(client: Any, mock: Mock) -> None:
    chunks = list(client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Once upon", stream=True))
    assert "".join(c.choices[0].text for c in chunks) == "Echo: Once upon"


def embeddings_float(client: Any, mock: Mock) -> None:
    answer = client.embeddings.create(model="text-embedding-3-small", input=["a", "b c"], encoding_format="float")
    assert [d.index for d in answer.data] == [0, 1] and len(answer.data[0].embedding) == 1536
    counted = sum(Counter().text("text-embedding-3-small", text).tokens for text in ("a", "b c"))  # as the mock counts
    assert answer.usage.prompt_tokens == answer.usage.total_tokens == counted


def embeddings_base64(client: Any, mock: Mock) -> None:
    # the SDK asks for base64 when it is told no format, and decodes it to floats itself
    answer = client.embeddings.create(model="text-embedding-3-small", input="hello", dimensions=256)
    floats = client.embeddings.create(
        model="text-embedding-3-small", input="hello", dimensions=256, encoding_format="float"
    )
    assert len(answer.data[0].embedding) == 256
    assert answer.data[0].embedding == pytest.approx(floats.data[0].embedding, abs=1e-6)


def moderations_create(client: Any, mock: Mock) -> None:
    answer = client.moderations.create(input="I love kittens")
    assert answer.model.startswith("omni-moderation") and answer.results[0].flagged is False
    assert answer.results[0].categories.violence is False and answer.results[0].category_scores.hate >= 0


def images_generate(client: Any, mock: Mock) -> None:
    answer = client.images.generate(model="dall-e-3", prompt="a cat", size="1024x1024", response_format="b64_json")
    image = base64.b64decode(answer.data[0].b64_json)
    assert image[:8] == b"\x89PNG\r\n\x1a\n" and answer.created > 0


def audio_speech(client: Any, mock: Mock) -> None:
    spoken = client.audio.speech.create(model="tts-1", voice="alloy", input="Hello there", response_format="wav")
    assert spoken.content[:4] == b"RIFF"


def audio_transcription(client: Any, mock: Mock) -> None:
    from batchgpt.mock import silent_wav

    heard = client.audio.transcriptions.create(model="whisper-1", file=("a.wav", silent_wav(2), "audio/wav"))
    assert isinstance(heard, openai.types.audio.Transcription) and isinstance(heard.text, str)


# ------------------------------------------------------------------------------------- responses


def responses_create(client: Any, mock: Mock) -> None:
    answer = client.responses.create(model="gpt-4o-mini", input="Tell me", instructions="Be brief")
    assert isinstance(answer, openai.types.responses.Response) and answer.status == "completed"
    assert answer.output_text == "Echo: Tell me" and answer.usage.total_tokens > 0


def responses_parts(client: Any, mock: Mock) -> None:
    picture = png(512, 512)
    content = [
        {"type": "input_text", "text": "Describe"},
        {"type": "input_image", "image_url": data_url(picture, "image/png"), "detail": "low"},
    ]
    answer = client.responses.create(model="gpt-4o", input=[{"role": "user", "content": content}])
    document = pdf(2)
    content.append({"type": "input_file", "filename": "a.pdf", "file_data": data_url(document, "application/pdf")})
    answer = client.responses.create(model="gpt-4o", input=[{"role": "user", "content": content}])
    said = f"Echo: Describe [image 512x512 sha256:{sha(picture)}] [pdf 2 pages sha256:{sha(document)}]"
    assert answer.output_text == said
    text_only = client.responses.create(model="gpt-4o", input=[{"role": "user", "content": content[:1]}])
    # the image at low detail (85), each page as 500 tokens of text and a high 816x1056 image (765)
    assert answer.usage.input_tokens == text_only.usage.input_tokens + 85 + 2 * (500 + 765)


def responses_stream(client: Any, mock: Mock) -> None:
    with client.responses.stream(model="gpt-4o-mini", input="a streamed answer") as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    assert "".join(d.delta for d in deltas) == "Echo: a streamed answer" == final.output_text
    assert {d.item_id for d in deltas} == {final.output[0].id} and {d.content_index for d in deltas} == {0}
    raw = list(client.responses.create(model="gpt-4o-mini", input="raw", stream=True))
    assert raw[-1].type == "response.completed" and raw[-1].response.output_text == "Echo: raw"


def responses_parse(client: Any, mock: Mock) -> None:
    answer = client.responses.parse(model="gpt-4o-mini", input="A blue mug", text_format=Product)
    assert isinstance(answer.output_parsed, Product) and answer.output_parsed.name == "Echo: A blue mug"


# ---------------------------------------------------------------------------------- files, batches


def files_create(client: Any, mock: Mock) -> None:
    uploaded = client.files.create(file=("notes.jsonl", b'{"a": 1}\n'), purpose="batch")
    assert isinstance(uploaded, openai.types.FileObject) and uploaded.bytes == 9 and uploaded.purpose == "batch"


def files_list(client: Any, mock: Mock) -> None:
    made = client.files.create(file=("listed.jsonl", b"{}\n"), purpose="batch")
    listed = list(client.files.list())
    assert made.id in [f.id for f in listed] and all(isinstance(f, openai.types.FileObject) for f in listed)
    assert [f.id for f in client.files.list(purpose="batch")] and not list(client.files.list(purpose="vision"))


def files_retrieve(client: Any, mock: Mock) -> None:
    made = client.files.create(file=("kept.jsonl", b"{}\n"), purpose="batch")
    found = client.files.retrieve(made.id)
    assert found.id == made.id and found.filename == "kept.jsonl" and found.bytes == 3
    assert client.files.content(made.id).content == b"{}\n"


def files_delete(client: Any, mock: Mock) -> None:
    made = client.files.create(file=("gone.jsonl", b"{}\n"), purpose="batch")
    deleted = client.files.delete(made.id)
    assert deleted.id == made.id and deleted.deleted is True
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(made.id)


def batch_file(client: Any, count: int = 2) -> str:
    lines = [
        {
            "custom_id": f"r{k}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "gpt-4o-mini", "messages": ask(f"line {k}")},
        }
        for k in range(count)
    ]
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    return str(client.files.create(file=("batch.jsonl", data), purpose="batch").id)


def batches_create(client: Any, mock: Mock) -> None:
    batch = client.batches.create(
        input_file_id=batch_file(client), endpoint="/v1/chat/completions", completion_window="24h", metadata={"k": "v"}
    )
    assert isinstance(batch, openai.types.Batch) and batch.status == "validating" and batch.metadata == {"k": "v"}


def batches_retrieve(client: Any, mock: Mock) -> None:
    batch = client.batches.create(
        input_file_id=batch_file(client), endpoint="/v1/chat/completions", completion_window="24h"
    )
    done = client.batches.retrieve(batch.id)
    while done.status == "in_progress":  # the server takes BATCH_DELAY seconds
        time.sleep(0.1)
        done = client.batches.retrieve(batch.id)
    assert done.status == "completed" and done.request_counts.completed == 2 and done.output_file_id
    lines = [json.loads(line) for line in client.files.content(done.output_file_id).text.splitlines()]
    answers = {line["custom_id"]: line["response"]["body"]["choices"][0]["message"]["content"] for line in lines}
    assert answers == {"r0": "Echo: line 0", "r1": "Echo: line 1"}


def batches_list(client: Any, mock: Mock) -> None:
    batch = client.batches.create(
        input_file_id=batch_file(client), endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert batch.id in [b.id for b in client.batches.list(limit=100)]


def batches_cancel(client: Any, mock: Mock) -> None:
    batch = client.batches.create(
        input_file_id=batch_file(client), endpoint="/v1/chat/completions", completion_window="24h"
    )
    cancelled = client.batches.cancel(batch.id)
    assert cancelled.status == "cancelling" and client.batches.retrieve(batch.id).status == "cancelled"


# ------------------------------------------------------------------------- errors, headers, Azure


def error_401(client: Any, mock: Mock) -> None:
    wrong = openai.OpenAI(api_key="sk-wrong-000000000000", base_url=mock.base_url, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        wrong.chat.completions.create(model="gpt-4o-mini", messages=ask("x"))
    assert caught.value.status_code == 401 and caught.value.code == "invalid_api_key"
    assert "sk-wrong-000000000000" not in str(caught.value)


def error_404(client: Any, mock: Mock) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.batches.retrieve("batch_nope")
    assert caught.value.status_code == 404 and "batch_nope" in caught.value.message


def error_400(client: Any, mock: Mock) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=ask("x"), temperature=5)
    error = caught.value
    assert (
        error.param == "temperature"
        and error.code == "decimal_above_max_value"
        and error.type == "invalid_request_error"
    )


def error_429(client: Any, mock: Mock) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=ask(LIMITED))
    assert caught.value.code == "rate_limit_exceeded" and caught.value.response.headers["retry-after-ms"] == "50"
    once = f"{RETRIED} {time.time_ns()}"  # refused once, then answered on the SDK's own retry
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=ask(once))
    assert raw.retries_taken == 1 and raw.parse().choices[0].message.content == f"Echo: {once}"


def raw_headers(client: Any, mock: Mock) -> None:
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=ask("headers"))
    headers = raw.headers
    assert int(headers["x-ratelimit-limit-requests"]) == 100000
    assert int(headers["x-ratelimit-remaining-requests"]) < 100000 and headers["x-ratelimit-reset-tokens"]
    assert headers["x-request-id"].startswith("req_") and raw.parse().choices[0].message.content == "Echo: headers"


def azure_chat(client: Any, mock: Mock) -> None:
    azure = openai.AzureOpenAI(
        api_key=KEY, azure_endpoint=f"http://127.0.0.1:{mock.port}", api_version="2024-10-21", max_retries=0
    )
    answer = azure.chat.completions.create(model="my-deployment", messages=ask("from Azure"))
    assert answer.choices[0].message.content == "Echo: from Azure" and answer.model == "my-deployment"


CALLS: dict[str, Callable[[Any, Mock], None]] = {
    call.__name__: call
    for call in (
        models_list,
        models_retrieve,
        chat_create,
        chat_n,
        chat_logprobs,
        chat_tools,
        chat_tool_choice,
        chat_stream,
        chat_stream_usage,
        chat_stream_helper,
        chat_stream_tools,
        chat_parse,
        chat_image,
        chat_async,
        completions_create,
        completions_stream,
        embeddings_float,
        embeddings_base64,
        moderations_create,
        images_generate,
        audio_speech,
        audio_transcription,
        responses_create,
        responses_parts,
        responses_stream,
        responses_parse,
        files_create,
        files_list,
        files_retrieve,
        files_delete,
        batches_create,
        batches_retrieve,
        batches_list,
        batches_cancel,
        error_401,
        error_404,
        error_400,
        error_429,
        raw_headers,
        azure_chat,
    )
}


def test_forty_calls_are_listed() -> None:
    assert len(CALLS) == 40


@pytest.mark.parametrize("name", list(CALLS))
def test_the_sdk_parses(name: str, client: Any, mock: Mock) -> None:
    CALLS[name](client, mock)
