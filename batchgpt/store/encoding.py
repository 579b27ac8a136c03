"""How an item's values are kept in their columns: its output (items.output_json says which kind)
and the item fields a task keeps, as a JSON object's text."""

from __future__ import annotations

import array
import json
from typing import Any

from batchgpt.records import Request

# How `output` is stored (items.output_json): text as is, JSON for structures, and a vector (an
# embedding) as packed float32, a quarter of its JSON size and exact for what the API returns.
TEXT, JSON, VECTOR = 0, 1, 2


def encode(output: Any) -> tuple[Any, int]:
    if output is None or isinstance(output, str):
        return output, TEXT
    if isinstance(output, list) and output and all(isinstance(v, float) for v in output):
        return array.array("f", output).tobytes(), VECTOR
    return json.dumps(output, ensure_ascii=False), JSON


def decode_output(value: Any, kind: int) -> Any:
    """An answer's output as stored (with its kind: TEXT, JSON or VECTOR) as the answer had it."""
    if value is None or kind == TEXT:
        return value
    if kind == VECTOR:
        return array.array("f", value).tolist()
    return json.loads(value)


def kept_json(request: Request) -> str | None:
    return json.dumps(dict(request.kept), ensure_ascii=False, default=str) if request.kept else None
