"""The Batch API's files: which requests share a file, and how output and error lines read back."""

from __future__ import annotations

import json
from dataclasses import replace

from batchgpt.batch import files as batchfiles
from batchgpt.batch.files import MAX_INPUTS, MAX_LINES, Splitter, batchable, input_line, read_line
from batchgpt.records import Provider, Request


def request(n: int, model: str = "gpt-4o-mini", endpoint: str = "/chat/completions", **body: object) -> Request:
    payload = {"model": model, "messages": [{"role": "user", "content": f"item {n}"}], **body}
    return Request(
        seq=n,
        id=f"i{n}",
        task="t",
        type="chat",
        model=model,
        endpoint=endpoint,
        body=payload,
        payload=json.dumps(payload).encode(),
        hash=f"h{n}",
        provider=Provider(),
    )


def test_a_line_names_the_item_the_url_and_the_body_without_streaming() -> None:
    line = json.loads(input_line(request(3, stream=True, stream_options={"include_usage": True})))
    assert line == {
        "custom_id": "i3",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "item 3"}]},
    }
    azure = replace(request(1), provider=Provider(base_url="https://r.openai.azure.com", kind="azure"))
    assert json.loads(input_line(azure))["url"] == "/chat/completions"


def test_a_file_holds_one_model_and_at_most_50000_lines() -> None:
    splitter = Splitter()
    closed = []
    for n in range(MAX_LINES + 10):
        for model in ("a", "b"):
            _, _, full = splitter.add(request(n, model=model), 100, 0.0)
            if full is not None:
                closed.append((model, full.lines))
    assert closed == [("a", MAX_LINES), ("b", MAX_LINES)]
    assert sorted(fill.lines for fill in splitter.open.values()) == [10, 10]
    assert len({fill.number for fill in splitter.open.values()}) == 2


def test_a_file_closes_before_it_passes_200_mb() -> None:
    splitter = Splitter()
    size = batchfiles.MAX_BYTES // 3 + 1
    fulls = [splitter.add(request(n), size, 0.0)[2] for n in range(4)]
    assert [f.lines if f else None for f in fulls] == [None, None, 2, None]


def test_embedding_inputs_are_counted_over_the_batch() -> None:
    splitter = Splitter()
    big = replace(request(0, endpoint="/embeddings"), body={"model": "e", "input": ["x"] * (MAX_INPUTS - 1)})
    two = replace(request(1, endpoint="/embeddings"), body={"model": "e", "input": ["y", "z"]})
    assert splitter.add(big, 10, 0.0)[2] is None
    _, fill, full = splitter.add(two, 10, 0.0)
    assert full is not None and full.inputs == MAX_INPUTS - 1 and fill.inputs == 2


def test_worst_cases_add_up_and_an_unknown_one_makes_the_file_unknown() -> None:
    splitter = Splitter()
    splitter.add(request(0), 10, 0.25)
    _, fill, _ = splitter.add(request(1), 10, 0.5)
    assert fill.worst_usd == 0.75
    _, fill, _ = splitter.add(request(2), 10, None)
    assert fill.worst_usd is None


def test_speech_and_transcription_are_not_batchable() -> None:
    assert batchable(request(0))
    assert not batchable(replace(request(0), type="speech")) and not batchable(
        replace(request(0), type="transcription")
    )


def test_output_and_error_lines_read_back() -> None:
    ok = read_line(
        b'{"id": "r", "custom_id": "a", "response": {"status_code": 200, "body": {"choices": []}}, "error": null}'
    )
    assert not isinstance(ok, str) and ok.custom_id == "a" and ok.body == {"choices": []} and ok.failure is None
    refused = read_line(
        json.dumps(
            {
                "custom_id": "b",
                "response": {
                    "status_code": 400,
                    "body": {"error": {"message": "too long", "code": "context_length_exceeded", "type": "x"}},
                },
                "error": None,
            }
        ).encode()
    )
    assert not isinstance(refused, str) and refused.failure is not None
    assert refused.failure.describe() == "HTTP 400 context_length_exceeded: too long" and not refused.failure.transient
    expired = read_line(b'{"custom_id": "c", "response": null, "error": {"code": "batch_expired", "message": "late"}}')
    assert not isinstance(expired, str) and expired.failure is not None
    assert expired.failure.code == "batch_expired" and expired.failure.transient
    server = read_line(b'{"custom_id": "d", "response": {"status_code": 500, "body": "oops"}, "error": null}')
    assert not isinstance(server, str) and server.failure is not None and server.failure.transient


def test_broken_lines_say_what_is_wrong() -> None:
    assert read_line(b"{not json") == "a line is not JSON"
    assert read_line(b'["a"]') == "a line has no custom_id"
    assert read_line(b'{"custom_id": "a", "response": null, "error": null}') == (
        "a line has neither a response nor an error"
    )
