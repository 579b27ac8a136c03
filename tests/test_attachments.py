"""attachments: a marked payload becomes the body with each file's base64, of the length said."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import orjson
import pytest

from batchgpt.attachments import Attachment, Changed, marker, sent_size
from batchgpt.encoded import Encodings


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, (3 << 18) - 1, 3 << 18, (3 << 18) + 1, 2_000_001])
def test_the_body_is_the_payload_with_each_files_base64_and_its_length_is_known(tmp_path: Path, size: int) -> None:
    photo, audio = tmp_path / "a.png", tmp_path / "b.wav"
    photo.write_bytes(bytes(range(256)) * (size // 256) + b"\x07" * (size % 256))
    audio.write_bytes(b"RIFF-and-more")
    body = {
        "messages": [
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64," + marker(0)}}],
            },
            {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": marker(1), "format": "wav"}}]},
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]},
        ]
    }
    attached = [
        Attachment("image", str(photo), "image/png", size=photo.stat().st_size),
        Attachment("audio", str(audio), "audio/wav", size=audio.stat().st_size),
        Attachment("image", "https://x/y.png"),
    ]
    for dump in (orjson.dumps, lambda b: json.dumps(b).encode()):  # both encoders escape NUL alike
        payload = dump(body)
        sent = b"".join(Encodings().body(payload, attached).chunks())
        assert len(sent) == sent_size(payload, attached)
        decoded = json.loads(sent)["messages"]
        assert (
            decoded[0]["content"][0]["image_url"]["url"]
            == "data:image/png;base64," + base64.b64encode(photo.read_bytes()).decode()
        )
        assert decoded[1]["content"][0]["input_audio"]["data"] == base64.b64encode(b"RIFF-and-more").decode()
        assert decoded[2]["content"][0]["image_url"]["url"] == "https://x/y.png"


def test_a_payload_without_markers_is_sent_as_it_is() -> None:
    payload = orjson.dumps({"prompt": "batchgpt:0 \\u0000 is text"})
    assert b"".join(Encodings().body(payload, ()).chunks()) == payload and sent_size(payload, ()) == len(payload)


def test_where_an_attachment_is() -> None:
    assert Attachment("image", "/a/b/cat.jpg").local and Attachment("image", "/a/b/cat.jpg").name == "cat.jpg"
    assert not Attachment("image", "data:image/png;base64,AAAA").local
    assert not Attachment("file", "https://example.com/doc.pdf").local
    assert Attachment("image", "https://x/y.png", size=10).encoded_size() == 0
    assert Attachment("image", "/p", size=10).encoded_size() == 16


@pytest.mark.parametrize("now", [b"", b"x" * 10, b"x" * 11, b"x" * ((3 << 18) + 5)])
def test_a_file_not_its_checked_size_is_changed_before_the_body_ends(tmp_path: Path, now: bytes) -> None:
    photo = tmp_path / "a.png"
    photo.write_bytes(now)
    payload = orjson.dumps({"data": marker(0), "after": "the end"})
    attached = [Attachment("image", str(photo), "image/png", size=12)]
    sent = []
    with pytest.raises(Changed, match="a.png: changed since it was checked"):
        sent.extend(Encodings().body(payload, attached).chunks())
    assert b"the end" not in b"".join(sent)  # stopped before the body's end
    photo.unlink()
    with pytest.raises(Changed, match="gone since it was checked"):
        list(Encodings().body(payload, attached).chunks())
