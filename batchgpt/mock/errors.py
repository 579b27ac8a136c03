"""The error body every failing answer of the mock carries, shaped as the API's (see the shared
API facts): `{"error": {"message", "type", "param", "code"}}`."""

from __future__ import annotations

from typing import Any


def error_body(message: str, type_: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}
