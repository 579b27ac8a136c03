"""Which requests the mock refuses as the real API does: the 400 `invalid_request_error` each kind
of request gets for a body it would not take (a missing model, an empty input, a size an image
model does not make, a parameter the model no longer accepts)."""

from __future__ import annotations

from typing import Any

from batchgpt.tokens import Counter

from .errors import error_body

IMAGE_SIZES = {"dall-e-2": {"256x256", "512x512", "1024x1024"}, "dall-e-3": {"1024x1024", "1792x1024", "1024x1792"}}
GPT_IMAGE_SIZES = {"1024x1024", "1536x1024", "1024x1536", "auto"}


def _bad(message: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return error_body(message, "invalid_request_error", code, param)


def invalid(kind: str, body: dict[str, Any], counter: Counter) -> dict[str, Any] | None:
    """The 400 the real API gives for this body, or None."""
    if kind == "transcriptions":  # a form: the upload is checked first
        return _invalid_upload(body)
    if not body.get("model"):
        return _bad("you must provide a model parameter", "model")
    if kind == "chat":
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _bad("'messages' must contain at least one message", "messages")
        if "max_tokens" in body and str(body["model"]).startswith(("o1", "o3", "o4", "gpt-5")):
            return _bad(
                "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
                "'max_completion_tokens' instead.",
                "max_tokens",
                "unsupported_parameter",
            )
    elif kind == "completion" and "prompt" not in body:
        return _bad("you must provide a prompt parameter", "prompt")
    elif kind == "responses" and not isinstance(body.get("input"), (str, list)):
        return _bad("Missing required parameter: 'input'.", "input", "missing_required_parameter")
    elif kind == "embeddings":
        return _invalid_embeddings(body, counter)
    elif kind == "moderations" and not isinstance(body.get("input"), (str, list)):
        return _bad("'input' is a required property", "input")
    elif kind == "images":
        return _invalid_image(body)
    elif kind == "speech":
        if not body.get("voice"):
            return _bad("'voice' is a required property", "voice")
        if not isinstance(body.get("input"), str) or len(body["input"]) > 4096:
            return _bad("'input' must be a string of at most 4096 characters", "input")
    return None


def _invalid_upload(body: dict[str, Any]) -> dict[str, Any] | None:
    if "_file" not in body:
        return _bad("'file' is a required property", "file")
    if not body.get("model"):
        return _bad("'model' is a required property", "model")
    return None


def _invalid_embeddings(body: dict[str, Any], counter: Counter) -> dict[str, Any] | None:
    inputs = body.get("input")
    inputs = [inputs] if isinstance(inputs, str) else inputs
    if not isinstance(inputs, list) or not inputs or not all(isinstance(i, str) and i for i in inputs):
        return _bad("'input' cannot be an empty string or list", "input")
    if len(inputs) > 2048:
        return _bad("'input' must have at most 2048 items", "input")
    counts = [counter.text(body["model"], text).tokens for text in inputs]
    if max(counts) > 8192:
        return _bad("This model's maximum context length is 8192 tokens", "input", "context_length_exceeded")
    if sum(counts) > 300_000:
        return _bad("Requested 300001 tokens, max 300000 tokens per request", "input", "max_tokens_per_request")
    return None


def _invalid_image(body: dict[str, Any]) -> dict[str, Any] | None:
    model = str(body["model"])
    size = body.get("size")
    allowed = IMAGE_SIZES.get(model, GPT_IMAGE_SIZES if model.startswith("gpt-image") else None)
    if size is not None and allowed is not None and size not in allowed:
        return _bad(f"'{size}' is not one of {sorted(allowed)} - 'size'", "size")
    if model == "dall-e-3" and int(body.get("n") or 1) != 1:
        return _bad("You must provide n=1 for this model.", "n")
    return None
