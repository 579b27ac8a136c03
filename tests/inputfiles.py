"""Attachments as real encoders write them (Pillow's images, the wave module's WAV), and the
bodies requests carry with each attached file's base64 in place, for the tests of job inputs."""

from __future__ import annotations

import base64
import io
import json
import wave
from pathlib import Path
from typing import Any

from PIL import Image

from batchgpt.encoded import Encodings
from batchgpt.records import Request


def image(path: Path, size: tuple[int, int] = (64, 48), fmt: str = "PNG", **options: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (200, 30, 30)).save(path, fmt, **options)
    return path


def animated_gif(path: Path) -> Path:
    frames = [Image.new("RGB", (8, 8), colour) for colour in ("red", "blue")]
    frames[0].save(path, "GIF", save_all=True, append_images=frames[1:], loop=0)
    return path


def pdf(path: Path, pages: int = 2) -> Path:
    objects = b"".join(b"%d 0 obj << /Type /Page >> endobj\n" % n for n in range(1, pages + 1))
    path.write_bytes(b"%PDF-1.4\n" + objects + b"%%EOF\n")
    return path


def wav(path: Path, seconds: float = 1.0) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\0\0" * int(8000 * seconds))
    return path


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def sent(request: Request) -> Any:
    """The body as the sender streams it: each marker replaced by its file's base64."""
    return json.loads(b"".join(Encodings().body(request.payload, request.attachments).chunks()))


def data_url(mime: str, raw: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(raw).decode()}"


def png_bytes(size: tuple[int, int] = (10, 10)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "white").save(out, "PNG")
    return out.getvalue()
