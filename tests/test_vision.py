"""Image inputs: the API's two formulas, worked as the facts work them, and each image part found."""

from __future__ import annotations

import base64
import struct
import zlib

from batchgpt.vision import image_parts, image_tokens, most_in, most_tokens, png_size


def png(width: int, height: int) -> str:
    """A real (black, greyscale) PNG of that size, as a data URL."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = zlib.compress(b"\0" * ((width + 1) * height))
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    data += chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    return "data:image/png;base64," + base64.b64encode(data).decode()


def test_the_tile_formula_as_the_facts_work_it():
    assert image_tokens("gpt-4o", 1024, 1024, "high") == 765
    assert image_tokens("gpt-4o", 512, 512, "high") == 255  # not scaled up
    assert image_tokens("gpt-4o", 2048, 4096, None) == 1105  # auto counts as high
    assert image_tokens("gpt-4o", 2048, 4096, "low") == 85


def test_the_patch_formula_caps_at_1536_patches_and_ignores_detail():
    assert image_tokens("gpt-4.1-mini", 1024, 1024, "low") == 1659  # 1024 patches x 1.62
    assert image_tokens("gpt-4.1-mini", 4096, 4096, "high") == 2489  # 1536 x 1.62


def test_the_most_an_image_can_cost_is_above_every_size():
    for model in ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "o3", "gpt-5", "gpt-4.1-nano", "o4-mini"):
        sizes = [(w, h) for w in (100, 512, 768, 1024, 1600, 2048, 4096, 8000) for h in (100, 768, 2048, 6000)]
        assert most_tokens(model, "high") == max(image_tokens(model, w, h, "high") for w, h in sizes), model
    assert most_tokens("gpt-4o", "low") == 85 and most_tokens("gpt-4o", None) == 85 + 8 * 170
    assert most_tokens("some-local-llava", None) == 3779  # an unknown model: counted high


def test_image_parts_are_found_in_chat_messages_and_responses_input():
    url = png(640, 480)
    chat = {
        "messages": [
            {"role": "system", "content": "Describe."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what?"},
                    {"type": "image_url", "image_url": {"url": url, "detail": "low"}},
                ],
            },
        ]
    }
    assert [p["type"] for p in image_parts("/chat/completions", chat)] == ["image_url"]
    assert most_in("gpt-4o", "/chat/completions", chat) == 85
    responses = {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": url}]}]}
    assert most_in("gpt-4o", "/responses", responses) == 1445
    assert most_in("gpt-4o", "/embeddings", {"input": "x"}) == 0
    assert png_size(url) == (640, 480) and png_size("https://example.com/a.png") is None


def test_a_body_said_plain_has_no_overhead_and_no_image_and_any_other_is_counted_as_before():
    from batchgpt.overhead import ZERO, Overhead, plain
    from batchgpt.tokens import Counter

    overhead, chat = Overhead(Counter()), "/chat/completions"
    text = {
        "model": "gpt-4o",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    }
    assert plain(chat, text) and overhead.of("gpt-4o", chat, text) == ZERO and most_in("gpt-4o", chat, text) == 0
    bodies = [  # each sends something besides its messages' text, so the bound asks both counts
        {**text, "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "u"}}]}]},
        {**text, "messages": [{"type": "image_url", "image_url": "u"}]},  # a message that is an image part
        {**text, "tools": [{"type": "function", "function": {"name": "f"}}]},
        {**text, "response_format": {"type": "json_object"}},
        {**text, "messages": [{"role": "assistant", "content": None, "tool_calls": []}]},
        {**text, "messages": ["not an object"]},
    ]
    for body in bodies:
        assert not plain(chat, body), body
        assert overhead.of("gpt-4o", chat, body) != ZERO or most_in("gpt-4o", chat, body) > 0 or body is bodies[-1]
    assert not plain("/responses", {"model": "gpt-4o", "input": "Hi"})
