"""mediainfo: formats and sizes read from real encoders' files (Pillow's), PDF pages counted."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from batchgpt.mediainfo import ImageInfo, image_info, pdf_pages, read_image


def encoded(fmt: str, size: tuple[int, int], **options: object) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 90)).save(out, fmt, **options)
    return out.getvalue()


@pytest.mark.parametrize(
    ("fmt", "name", "options"),
    [
        ("PNG", "png", {}),
        ("JPEG", "jpeg", {}),
        ("JPEG", "jpeg", {"progressive": True}),
        ("GIF", "gif", {}),
        ("WEBP", "webp", {"lossless": False}),
        ("WEBP", "webp", {"lossless": True}),
    ],
)
@pytest.mark.parametrize("size", [(1, 1), (1024, 1024), (1023, 77), (2049, 1531)])
def test_each_format_is_read_at_its_size(
    fmt: str, name: str, options: dict[str, object], size: tuple[int, int]
) -> None:
    assert image_info(encoded(fmt, size, **options)) == ImageInfo(name, *size)


def test_a_jpeg_with_metadata_larger_than_the_head_is_read_from_the_file(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x010E] = "x" * 60_000  # ImageDescription: 60 KB of APP1 before the frame marker
    out = io.BytesIO()
    Image.new("RGB", (640, 480)).save(out, "JPEG", exif=exif.tobytes(), icc_profile=b"\0" * 30_000)
    path = tmp_path / "big-exif.jpg"
    path.write_bytes(out.getvalue())
    assert image_info(path.read_bytes()[: 1 << 16]) is None  # the head alone cannot say
    assert read_image(path) == ImageInfo("jpeg", 640, 480)


def test_an_animated_gif_is_told_from_a_still_one() -> None:
    frames = [Image.new("RGB", (32, 16), colour) for colour in ("red", "blue")]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], loop=0, duration=100)
    assert image_info(out.getvalue()) == ImageInfo("gif", 32, 16, animated=True)
    assert image_info(encoded("GIF", (32, 16))) == ImageInfo("gif", 32, 16, animated=False)


@pytest.mark.parametrize(
    "data", [b"", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"\xff\xd8\xff", b"BM" + b"\0" * 60, b"%PDF-1.7"]
)
def test_what_is_no_image_or_is_cut_short_is_none(data: bytes) -> None:
    assert image_info(data) is None


def test_pdf_pages_are_counted_by_page_objects_not_the_page_tree(tmp_path: Path) -> None:
    path = tmp_path / "three.pdf"
    Image.new("RGB", (100, 100)).save(path, "PDF", save_all=True, append_images=[Image.new("RGB", (100, 100))] * 2)
    assert pdf_pages(path) == 3
    (tmp_path / "not.pdf").write_bytes(b"hello")
    assert pdf_pages(tmp_path / "not.pdf") is None
