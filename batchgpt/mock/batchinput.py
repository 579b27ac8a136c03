"""The rules a Batch API input file must keep, as the shared API facts document them: JSON lines
with a custom_id unique in the file, the batch's url and one model throughout, at most 50,000 lines
and 200 MB; a file that breaks one fails validation with `errors.data[]` naming its lines. A line
whose body is no JSON object (or one the online routes would not read) is `invalid_json_line`."""

from __future__ import annotations

import json
from typing import Any

from .reading import parse_json

MAX_LINES = 50_000
MAX_FILE_BYTES = 200 * 10**6
BATCH_ENDPOINTS = (  # the urls a batch may name
    "/v1/responses",
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/moderations",
    "/v1/images/generations",
)
Line = tuple[int, dict[str, Any], bytes]  # (line number, parsed line, the body's bytes)


def check_file(data: bytes, endpoint: str, invalid: str | None) -> tuple[list[Line], list[dict[str, Any]]]:
    """The file's lines, and the documented validation errors it has (lines holding the text
    `invalid`, when given, fail as invalid requests)."""
    lines: list[Line] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    model: str | None = None
    for number, raw in enumerate(data.splitlines(), 1):
        if not raw.strip():
            continue
        line = parse_json(raw)  # as an online body is read: UTF-8, not too deep, no lone surrogate
        body = line.get("body") if isinstance(line, dict) else None
        if not isinstance(body, dict) or not isinstance(line.get("custom_id"), str):
            errors.append(_problem("invalid_json_line", number, "This line is not parseable as valid JSON."))
            continue
        custom_id = line["custom_id"]
        if custom_id in seen:
            errors.append(_problem("duplicate_custom_id", number, f"The custom_id {custom_id} is not unique."))
        seen.add(custom_id)
        if line.get("url") != endpoint or line.get("method") != "POST":
            errors.append(_problem("url_mismatch", number, f"The url must be {endpoint}, as the batch's."))
        model = body.get("model") if model is None else model
        if body.get("model") != model:
            errors.append(_problem("model_mismatch", number, "Every line of a batch must use the same model."))
        if invalid and invalid in raw.decode("utf-8", "replace"):
            errors.append(_problem("invalid_request", number, "The body is not valid.", "body"))
        lines.append((number, line, json.dumps(body).encode()))
    if not lines and not errors:
        errors.append(_problem("empty_file", None, "The input file is empty."))
    if len(lines) > MAX_LINES:
        errors.append(_problem("too_many_tasks", None, f"A batch takes at most {MAX_LINES} requests."))
    return lines, errors


def _problem(code: str, line: int | None, message: str, param: str | None = None) -> dict[str, Any]:
    return {"code": code, "line": line, "message": message, "param": param}
