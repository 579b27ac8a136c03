"""The mock server takes images, files and audio in chat messages and Responses input (issue 26):
it answers from their bytes (`[image 1024x1024 sha256:…]`), so a test sees they arrived, bills
them as bill.py documents (checked here against counts worked by hand), and refuses what the API
refuses (the shared API facts, section 14), online and in the Batch API alike."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from audiofiles import mp3
from conftest import SECRET
from test_mock_batch import call, submit

from batchgpt.mock import Config, MockServer, silent_wav

PIL = pytest.importorskip("PIL.Image")
QUESTION = {"type": "text", "text": "What is this?"}


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    mock = MockServer(Config(api_key=SECRET)).start()
    yield mock
    mock.stop()


def picture(width: int, height: int, kind: str = "PNG", **options: Any) -> bytes:
    buffer = io.BytesIO()
    PIL.new("RGB", (width, height), (30, 120, 200)).save(buffer, kind, **options)
    return buffer.getvalue()


def animated_gif() -> bytes:
    frames = [PIL.new("RGB", (20, 20), (k * 80, 0, 0)) for k in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], loop=0)
    return buffer.getvalue()


def pdf(pages: int) -> bytes:
    buffer = io.BytesIO()
    sheets = [PIL.new("RGB", (85, 110), (k * 40 % 256, 90, 90)) for k in range(pages)]
    sheets[0].save(buffer, "PDF", save_all=True, append_images=sheets[1:])
    return buffer.getvalue()


def lines_of(server: MockServer, file_id: str) -> list[dict[str, Any]]:
    status, content = call(server, "GET", f"/files/{file_id}/content")  # one line reads as JSON
    assert status == 200
    return [content] if isinstance(content, dict) else [json.loads(x) for x in content.splitlines()]


def url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def image(address: str, detail: str | None = None) -> dict[str, Any]:
    inner = {"url": address, **({"detail": detail} if detail else {})}
    return {"type": "image_url", "image_url": inner}


def document(data: bytes, mime: str = "application/pdf") -> dict[str, Any]:
    return {"type": "file", "file": {"filename": "a.pdf", "file_data": url(data, mime)}}


def audio(data: bytes, kind: str = "wav") -> dict[str, Any]:
    return {"type": "input_audio", "input_audio": {"data": base64.b64encode(data).decode(), "format": kind}}


def chat(server: MockServer, parts: list[Any], model: str = "gpt-4o") -> tuple[int, dict[str, Any]]:
    body = {"model": model, "messages": [{"role": "user", "content": [QUESTION, *parts]}]}
    return call(server, "POST", "/chat/completions", body)  # type: ignore[no-any-return]


def answered(server: MockServer, parts: list[Any], model: str = "gpt-4o") -> tuple[str, int, dict[str, Any]]:
    """(the answer's text, the prompt tokens the parts added to the question's, its usage)."""
    status, answer = chat(server, parts, model)
    assert status == 200, answer
    alone = chat(server, [], model)[1]["usage"]["prompt_tokens"]
    usage = answer["usage"]
    return answer["choices"][0]["message"]["content"], usage["prompt_tokens"] - alone, usage


# ----------------------------------------------------------------------------------- images


def test_an_image_is_described_by_its_size_and_hash_and_billed_by_the_formula(server):
    photo = picture(1024, 1024)
    text, added, _ = answered(server, [image(url(photo, "image/png"), "high")])
    assert text == f"Echo: What is this? [image 1024x1024 sha256:{sha(photo)}]"
    assert added == 765  # 768x768 after scaling: 4 tiles of 170, and 85 (the facts' worked example)
    assert answered(server, [image(url(photo, "image/png"), "low")])[1] == 85
    assert answered(server, [image(url(photo, "image/png"), "auto")])[1] == 765


@pytest.mark.parametrize(
    ("kind", "width", "height", "mime", "model", "tokens"),
    [
        ("JPEG", 2048, 4096, "image/jpeg", "gpt-4o", 1105),  # 768x1536: 6 tiles (the facts' example)
        ("GIF", 512, 512, "image/gif", "gpt-4o", 255),  # one tile, not scaled up
        ("WEBP", 1000, 500, "image/webp", "gpt-4.1-mini", 830),  # 32 x 16 patches x 1.62 = 829.44
        ("PNG", 1024, 1024, "image/png", "gpt-5", 630),  # 4 tiles of 140, and 70
        ("JPEG", 4000, 3000, "image/jpeg", "gpt-4.1-nano", 3779),  # past 1,536 patches: 1,536 x 2.46
    ],
)
def test_every_format_is_read_from_its_bytes(server, kind, width, height, mime, model, tokens):
    photo = picture(width, height, kind)
    text, added, _ = answered(server, [image(url(photo, mime))], model)
    assert f"[image {width}x{height} sha256:{sha(photo)}]" in text and added == tokens


def test_an_image_behind_a_url_is_not_fetched_and_counts_as_1024_square(server):
    text, added, _ = answered(server, [image("https://example.com/cat.png", "high")])
    assert text == "Echo: What is this? [image url https://example.com/cat.png]" and added == 765
    assert answered(server, [image("https://example.com/cat.png", "low")])[1] == 85


def test_several_images_are_each_described_and_billed(server):
    small, large = picture(512, 512), picture(2048, 4096, "JPEG")
    parts = [image(url(small, "image/png")), image(url(large, "image/jpeg"), "low")]
    text, added, _ = answered(server, parts)
    assert text.endswith(f"[image 512x512 sha256:{sha(small)}] [image 2048x4096 sha256:{sha(large)}]")
    assert added == 255 + 85


# -------------------------------------------------------------------------------- PDFs, audio


def test_a_pdf_is_billed_per_page_as_text_and_a_page_image(server):
    pages = pdf(3)
    text, added, _ = answered(server, [document(pages)])
    assert text == f"Echo: What is this? [pdf 3 pages sha256:{sha(pages)}]"
    assert added == 3 * (500 + 765)  # a page: 500 tokens of text, 816x1056 at high: 4 tiles
    # on a patch model a page's image is 26 x 33 patches x 1.62 = 1389.96
    assert answered(server, [document(pdf(1))], "gpt-4.1-mini")[1] == 500 + 1390


@pytest.mark.parametrize(
    ("recording", "said", "tokens"),
    [
        (silent_wav(2.5), "audio 2.5 s", 25),
        (mp3(100), "audio 2.6 s", 27),  # 100 frames of 1,152 samples at 44.1 kHz: 2.612 s
    ],
)
def test_audio_is_heard_at_ten_tokens_a_second(server, recording, said, tokens):
    kind = "wav" if recording[:4] == b"RIFF" else "mp3"
    text, added, usage = answered(server, [audio(recording, kind)], "gpt-4o-audio-preview")
    assert text == f"Echo: What is this? [{said} sha256:{sha(recording)}]"
    assert added == tokens == usage["prompt_tokens_details"]["audio_tokens"]


# ------------------------------------------------------------------------------ Responses API


def responses(server: MockServer, parts: list[Any], model: str = "gpt-4o") -> dict[str, Any]:
    content = [{"type": "input_text", "text": "Read this"}, *parts]
    status, answer = call(
        server, "POST", "/responses", {"model": model, "input": [{"role": "user", "content": content}]}
    )
    assert status == 200, answer
    return answer  # type: ignore[no-any-return]


def test_the_responses_api_takes_images_files_and_urls(server):
    photo, pages, notes = picture(1024, 1024), pdf(2), b"milk, eggs, flour\n" * 10
    parts = [
        {"type": "input_image", "image_url": url(photo, "image/png"), "detail": "low"},
        {"type": "input_file", "filename": "a.pdf", "file_data": url(pages, "application/pdf"), "detail": "low"},
        {"type": "input_file", "filename": "notes.txt", "file_data": url(notes, "text/plain")},
        {"type": "input_file", "file_url": "https://example.com/contract.pdf"},
    ]
    answer = responses(server, parts)
    said = answer["output"][0]["content"][0]["text"]
    assert said == (
        f"Echo: Read this [image 1024x1024 sha256:{sha(photo)}] [pdf 2 pages sha256:{sha(pages)}] "
        f"[file text/plain 180 bytes sha256:{sha(notes)}] [file url https://example.com/contract.pdf]"
    )
    alone = responses(server, [])["usage"]["input_tokens"]
    # the image low (85); two pages with low page images (500 + 85 each); 180 bytes of text at 4 a
    # token (45); the URL's PDF as one page at high (500 + 765)
    assert answer["usage"]["input_tokens"] - alone == 85 + 2 * 585 + 45 + 1265


def test_the_batch_api_answers_and_bills_media_inline(server):
    photo = picture(1024, 1024)
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": [QUESTION, image(url(photo, "image/png"))]}]}
    batch = submit(server, [{"custom_id": "p", "method": "POST", "url": "/v1/chat/completions", "body": body}])
    done = call(server, "GET", f"/batches/{batch['id']}")[1]
    [line] = lines_of(server, done["output_file_id"])
    answer = line["response"]["body"]
    assert answer["choices"][0]["message"]["content"] == f"Echo: What is this? [image 1024x1024 sha256:{sha(photo)}]"
    assert answer["usage"]["prompt_tokens"] == chat(server, [])[1]["usage"]["prompt_tokens"] + 765


def test_what_the_server_bills_is_what_its_answers_say(server):
    server.billed.clear()
    usage = answered(server, [image(url(picture(64, 64), "image/png"))])[2]
    assert server.billed[0]["usage"] == usage


# ---------------------------------------------------------------------------------- refusals


def error_of(status: int, answer: dict[str, Any]) -> dict[str, Any]:
    assert status == 400 and set(answer) == {"error"}, answer
    return answer["error"]  # type: ignore[no-any-return]


AT = "messages[0].content[1]"


@pytest.mark.parametrize(
    ("part", "param", "code", "words"),
    [
        (image("data:image/png;base64,!!!not base64!!!"), f"{AT}.image_url.url", "invalid_value", "invalid base64"),
        (image("data:image/png;base64,"), f"{AT}.image_url.url", "invalid_value", "empty base64"),
        (image("/home/me/cat.png"), f"{AT}.image_url.url", "invalid_value", "without the 'data:' prefix"),
        (image(url(b"%PDF-1.4", "application/pdf")), f"{AT}.image_url.url", "invalid_value", "'application/pdf'"),
        (image(url(b"GIF89a", "image/gif")), None, "invalid_image_format", "unsupported image"),
        (image(url(b"\x00" * 100, "image/png")), None, "invalid_image_format", "unsupported image"),
        (image("https://example.com/a.png", "ultra"), f"{AT}.image_url.detail", "invalid_value", "'ultra'"),
        (document(b"%PDF-1.4", "text/plain"), f"{AT}.file.file_data", "invalid_value", "application/pdf MIME"),
        (document(b"plain words"), f"{AT}.file.file_data", "invalid_value", "no PDF"),
        (
            {"type": "file", "file": {"file_url": "https://example.com/a.pdf"}},
            f"{AT}.file.file_url",
            "unknown_parameter",
            "Unknown",
        ),
        (
            {"type": "file", "file": {"filename": "a.pdf"}},
            f"{AT}.file.file_data",
            "missing_required_parameter",
            "Missing",
        ),
        (
            {"type": "input_audio", "input_audio": {"data": "@@@", "format": "wav"}},
            f"{AT}.input_audio.data",
            "invalid_value",
            "base64",
        ),
        (audio(silent_wav(1), "flac"), f"{AT}.input_audio.format", "invalid_value", "'flac'"),
        (audio(b"no sound in here at all"), f"{AT}.input_audio.data", "invalid_value", "could not be decoded"),
    ],
)
def test_media_the_api_refuses_is_a_400_naming_it(server, part, param, code, words):
    error = error_of(*chat(server, [part]))
    assert (error["param"], error["code"], error["type"]) == (param, code, "invalid_request_error")
    assert words in error["message"]


def test_an_animated_gif_is_refused(server):
    error = error_of(*chat(server, [image(url(animated_gif(), "image/gif"))]))
    assert error["code"] == "invalid_image_format"


def test_the_per_request_limits_hold(server):
    dot = image(url(picture(1, 1), "image/png"))
    assert chat(server, [dot] * 500)[0] == 200
    error = error_of(*chat(server, [dot] * 501))
    assert error["param"] == "messages" and "500" in error["message"]
    pages = document(pdf(51))
    error = error_of(*chat(server, [pages, pages]))  # 102 pages
    assert error["param"] == "messages" and "100 pages" in error["message"]


def test_the_responses_api_refuses_chat_parts_and_bad_file_data(server):
    status, answer = call(
        server, "POST", "/responses", {"model": "gpt-4o", "input": [{"role": "user", "content": [QUESTION]}]}
    )
    assert error_of(status, answer)["param"] == "input[0].content[0].type"
    bad = {"type": "input_file", "filename": "a.txt", "file_data": "data:text/plain;base64,@@"}
    status, answer = call(
        server, "POST", "/responses", {"model": "gpt-4o", "input": [{"role": "user", "content": [bad]}]}
    )
    error = error_of(status, answer)
    assert error["param"] == "input[0].content[0].file_data" and "invalid base64" in error["message"]


def test_a_batch_line_with_a_broken_image_fails_alone_with_its_400(server):
    broken = {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": [QUESTION, image("data:image/png;base64,@@")]}],
    }
    good = {"model": "gpt-4o", "messages": [{"role": "user", "content": "fine"}]}
    lines = [
        {"custom_id": "bad", "method": "POST", "url": "/v1/chat/completions", "body": broken},
        {"custom_id": "ok", "method": "POST", "url": "/v1/chat/completions", "body": good},
    ]
    done = call(server, "GET", f"/batches/{submit(server, lines)['id']}")[1]
    assert done["request_counts"] == {"total": 2, "completed": 1, "failed": 1}
    [failed] = lines_of(server, done["error_file_id"])
    assert failed["custom_id"] == "bad" and failed["response"]["status_code"] == 400
    assert failed["response"]["body"]["error"]["param"] == "messages[0].content[1].image_url.url"


def test_a_big_image_is_decoded_once_per_request(server, monkeypatch):
    from batchgpt.mock import inputs

    decoded: list[int] = []
    real = inputs._base64
    monkeypatch.setattr(inputs, "_base64", lambda text: decoded.append(len(text)) or real(text))
    photo = picture(300, 200)
    assert chat(server, [image(url(photo, "image/png"))])[0] == 200
    assert len(decoded) == 1  # validated, charged against the limits, billed and described: one decoding
