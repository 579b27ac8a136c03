"""mediainfo: formats and sizes read from real encoders' files (Pillow's) and from their headers alone,
PDF pages counted, those in compressed object streams too."""

from __future__ import annotations

import base64
import io
import zlib
from pathlib import Path

import pytest
from PIL import Image

from batchgpt.inputtokens import PAGE_TEXT_TOKENS
from batchgpt.mediainfo import ImageInfo, image_info, pdf_pages, read_image
from batchgpt.overhead import file_tokens


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


def packed_pdf(pages: int) -> bytes:
    """A PDF 1.5 whose page objects are all in one compressed object stream, as many writers keep them."""
    kept = b"".join(b"<< /Type /Page /Parent 2 0 R >>\n" for _ in range(pages))
    stream = zlib.compress(kept)
    head = (
        "%PDF-1.5\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        f"2 0 obj << /Type /Pages /Count {pages} >> endobj\n"
        f"3 0 obj << /Type /ObjStm /N {pages} /First 0 /Filter /FlateDecode /Length {len(stream)} >>\nstream\n"
    )
    return head.encode() + stream + b"\nendstream\nendobj\n%%EOF\n"


def test_pages_packed_in_object_streams_are_counted(tmp_path: Path) -> None:
    path = tmp_path / "packed.pdf"
    path.write_bytes(packed_pdf(7))
    assert pdf_pages(path) == 7
    part = {
        "type": "file",
        "file": {"file_data": "data:application/pdf;base64," + base64.b64encode(packed_pdf(7)).decode()},
    }
    assert file_tokens("gpt-4o", part) == 7 * (PAGE_TEXT_TOKENS + 1445)  # an inline PDF, counted alike


def rchar() -> int:
    """Bytes this process has read through read(2) and the like, as the kernel counts them."""
    line = next(x for x in Path("/proc/self/io").read_text().splitlines() if x.startswith("rchar:"))
    return int(line.split()[1])


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="reads are counted by Linux's /proc")
def test_read_image_reads_headers_not_files(tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    exif = Image.Exif()
    exif[0x010E] = "x" * 60_000  # 60 KB of metadata before the frame marker
    Image.effect_noise((1500, 1000), 64).convert("RGB").save(photo, "JPEG", exif=exif.tobytes(), quality=95)
    picture = tmp_path / "picture.png"
    Image.effect_noise((800, 600), 64).save(picture, "PNG")
    for path, found in ((photo, ImageInfo("jpeg", 1500, 1000)), (picture, ImageInfo("png", 800, 600))):
        before = rchar()
        assert read_image(path) == found
        # one page, a JPEG's later segments' first bytes, and this process's read of /proc/self/io
        assert rchar() - before <= 4096 + 1024, path.name
