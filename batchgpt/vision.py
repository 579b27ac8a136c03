"""Image inputs: the prompt tokens the image parts of a request's messages cost.

Chat messages may carry `image_url` parts and Responses input `input_image` parts (a Batch API
line's body passes them through as written). tiktoken counts none of them, yet the API bills each
at the model's text input price, by one of two formulas (the shared API facts, section 14):
- tiles (gpt-4o, gpt-4.1, gpt-4.5, o1, o3, gpt-5): `detail: low` costs the base alone; otherwise
  the image is scaled to fit 2048x2048, then its shortest side down to 768, and each 512 px tile
  costs `per_tile` more: at most 8 tiles (768x2048);
- patches (gpt-4.1-mini, gpt-4.1-nano, o4-mini, gpt-5-mini, gpt-5-nano): 32 px patches, at most
  1536, times the model's multiplier, rounded up; `detail` changes nothing. (An image of more
  patches is scaled down until it fits in 1536 and billed its patches then: 1536 is the bill or
  above it.)
`image_tokens` gives the count for a known size: what the dry run counts for an attached image
(inputtokens.py, from its header) and the test server bills. An image part already in a body (a Batch
API line's) is not read: it counts the most its model can count one, and is said approximate.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Iterator, Mapping
from typing import Any

MAX_TILES = 8  # 768x2048 after scaling: 2 x 4 tiles of 512 px
MAX_PATCHES = 1536
# model prefix, longest first: ("tile", base, per tile) or ("patch", multiplier, 0)
FORMULAS: tuple[tuple[str, tuple[str, float, float]], ...] = (
    ("gpt-4o-mini", ("tile", 2833, 5667)),
    ("gpt-4.1-mini", ("patch", 1.62, 0)),
    ("gpt-4.1-nano", ("patch", 2.46, 0)),
    ("gpt-5-mini", ("patch", 1.62, 0)),
    ("gpt-5-nano", ("patch", 2.46, 0)),
    ("o4-mini", ("patch", 1.72, 0)),
    ("computer-use-preview", ("tile", 65, 129)),
    ("chatgpt-4o", ("tile", 85, 170)),
    ("gpt-4o", ("tile", 85, 170)),
    ("gpt-4.1", ("tile", 85, 170)),
    ("gpt-4.5", ("tile", 85, 170)),
    ("gpt-5", ("tile", 70, 140)),
    ("o1", ("tile", 75, 150)),
    ("o3", ("tile", 75, 150)),
)
# A model not listed (a local or relayed one): the most any listed formula counts an image,
# gpt-4o-mini's aside (its counts are inflated to match its low price), so 1536 x 2.46.
UNKNOWN = ("patch", 2.46, 0.0)
IMAGE_PARTS = {"image_url", "input_image"}  # chat's and the Responses API's


def formula(model: str) -> tuple[str, float, float]:
    name = model.rsplit("/", 1)[-1].removeprefix("ft:")
    return next((f for prefix, f in FORMULAS if name.startswith(prefix)), UNKNOWN)


def most_tokens(model: str, detail: str | None) -> int:
    """The most one image part can cost on `model`, whatever its size."""
    kind, a, b = formula(model)
    if kind == "patch":
        return math.ceil(MAX_PATCHES * a)
    return int(a if detail == "low" else a + MAX_TILES * b)


def image_tokens(model: str, width: int, height: int, detail: str | None) -> int:
    """What one image of `width` x `height` costs on `model` (`auto` counts as high)."""
    kind, a, b = formula(model)
    if kind == "patch":
        return math.ceil(min(math.ceil(width / 32) * math.ceil(height / 32), MAX_PATCHES) * a)
    if detail == "low":
        return int(a)
    w, h = float(width), float(height)
    fit = min(1.0, 2048 / max(w, h))
    w, h = w * fit, h * fit
    short = min(1.0, 768 / min(w, h))
    w, h = w * short, h * short
    return int(a + math.ceil(w / 512) * math.ceil(h / 512) * b)


def image_parts(endpoint: str, body: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The image parts of a body's messages: chat's `messages`, the Responses API's `input`."""
    key = {"/chat/completions": "messages", "/responses": "input"}.get(endpoint)
    items = body.get(key) if key else None
    if not isinstance(items, list):
        return
    for item in items:
        if type(item) is dict:  # a decoded message: a str content holds no part (most do)
            content = item.get("content")
            if type(content) is str and item.get("type") not in IMAGE_PARTS:
                continue
        elif not isinstance(item, Mapping):
            continue
        content = item.get("content")
        for part in content if isinstance(content, list) else (item,):
            if isinstance(part, Mapping) and part.get("type") in IMAGE_PARTS:
                yield part


def detail_of(part: Mapping[str, Any]) -> str | None:
    image = part.get("image_url")
    detail = image.get("detail") if isinstance(image, Mapping) else part.get("detail")
    return detail if isinstance(detail, str) else None


def url_of(part: Mapping[str, Any]) -> str:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, Mapping) else image
    return url if isinstance(url, str) else ""


def most_in(model: str, endpoint: str, body: Mapping[str, Any]) -> int:
    """The most the image parts of a request can cost: each at its model's most."""
    return sum(most_tokens(model, detail_of(part)) for part in image_parts(endpoint, body))


def png_size(url: str) -> tuple[int, int] | None:
    """The width and height of a PNG data URL, from its header; None for anything else."""
    prefix = "data:image/png;base64,"
    if not url.startswith(prefix):
        return None
    try:
        head = base64.b64decode(url[len(prefix) : len(prefix) + 44])
    except (binascii.Error, ValueError):
        return None
    if head[:8] != b"\x89PNG\r\n\x1a\n" or len(head) < 24:
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
