"""Which requests the mock refuses as the real API does, and with what: `refusal` gives the status
and error body for a body the API would not take, or None.

In the API's order: the body's fields and shapes (fields.py, shapes.py: 400 with `param`), its
images, files and audio (inputs.py), then whether the model exists (404 `model_not_found`, only
when the server is told its models), then what the model makes of the request (a parameter it
no longer accepts, a size it does not make, more tokens than it embeds). Kinds whose model the
API defaults (moderations, images) take a body without one, and `with_defaults` fills it in for
the answer.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from batchgpt.tokens import Counter

from .answers import EMBEDDING_DIMENSIONS
from .errors import error_body
from .fields import Problem, bad, check, check_fields, integer, invalid_value, number, text
from .inputs import read
from .shapes import check_shapes, inputs

IMAGE_SIZES = {"dall-e-2": {"256x256", "512x512", "1024x1024"}, "dall-e-3": {"1024x1024", "1792x1024", "1024x1792"}}
GPT_IMAGE_SIZES = {"1024x1024", "1536x1024", "1024x1536", "auto"}
PROMPT_LENGTHS = {"dall-e-2": 1000, "dall-e-3": 4000}  # GPT image models: 32,000 (facts, section 7)
DEFAULT_MODELS = {"moderations": "omni-moderation-latest", "images": "dall-e-2"}
AUDIO_TYPES = ("flac", "mp3", "mp4", "mpeg", "mpga", "m4a", "ogg", "wav", "webm")  # facts, section 8
TRANSCRIPTION_FORMATS = ("json", "text", "srt", "verbose_json", "vtt", "diarized_json")
Refusal = tuple[int, Problem]


def refusal(kind: str, body: dict[str, Any], counter: Counter, models: Collection[str] | None = None) -> Refusal | None:
    """(status, error body) the real API gives this body, or None; `models`: the models that
    exist (None: any model does)."""
    if kind == "transcriptions":  # a form: the upload is checked first
        problem = _invalid_upload(body)
    else:
        problem = (
            _invalid_model(kind, body) or check_fields(kind, body) or check_shapes(kind, body) or _media(kind, body)
        )
    if problem:
        return 400, problem
    model = body.get("model") or DEFAULT_MODELS.get(kind)
    if models is not None and model not in models:
        message = f"The model `{model}` does not exist or you do not have access to it."
        return 404, error_body(message, "invalid_request_error", "model_not_found")
    problem = _unsupported(kind, body, str(model), counter)
    return (400, problem) if problem else None


def with_defaults(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """The body with the model the API takes when it names none (for the kinds that have one)."""
    if kind in DEFAULT_MODELS and body.get("model") is None:
        return {**body, "model": DEFAULT_MODELS[kind]}
    return body


def _media(kind: str, body: dict[str, Any]) -> Problem | None:
    """The 400 for an image, file or audio part the API would not take (inputs.py)."""
    found = read(kind, body)
    return found if not isinstance(found, list) else None


def _invalid_model(kind: str, body: dict[str, Any]) -> Problem | None:
    model = body.get("model")
    if model is None and kind in DEFAULT_MODELS:
        return None
    if model is None or model == "":
        return bad("you must provide a model parameter", "model")
    return check(text(required=True), "model", model)


def _unsupported(kind: str, body: dict[str, Any], model: str, counter: Counter) -> Problem | None:
    """What this model makes of a well-formed request."""
    if kind == "chat" and body.get("max_tokens") is not None and model.startswith(("o1", "o3", "o4", "gpt-5")):
        return bad(
            "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
            "'max_completion_tokens' instead.",
            "max_tokens",
            "unsupported_parameter",
        )
    if kind == "embeddings":
        return _invalid_embeddings(body, model, counter)
    if kind == "images":
        return _invalid_image(body, model)
    return None


def _invalid_upload(body: dict[str, Any]) -> Problem | None:
    if "_file" not in body:
        return bad("Missing required parameter: 'file'.", "file", "missing_required_parameter")
    if not body.get("model"):
        return bad("Missing required parameter: 'model'.", "model", "missing_required_parameter")
    filename = str(body["_file"][0] or "")
    if filename.rpartition(".")[2].lower() not in AUDIO_TYPES:
        return bad(f"Invalid file format. Supported formats: {list(AUDIO_TYPES)}", "file", "invalid_value")
    fmt = body.get("response_format")
    if fmt is not None and fmt not in TRANSCRIPTION_FORMATS:
        return invalid_value("response_format", fmt, TRANSCRIPTION_FORMATS)
    if "temperature" in body:  # a form's values are text: the API reads the number in it
        try:
            temperature = float(body["temperature"])
        except ValueError:
            return bad(
                f"Invalid type for 'temperature': expected a number, but got '{str(body['temperature'])[:50]}'.",
                "temperature",
                "invalid_type",
            )
        return check(number(0, 1), "temperature", temperature)
    return None


def _invalid_embeddings(body: dict[str, Any], model: str, counter: Counter) -> Problem | None:
    """At most 8192 tokens an input and 300,000 in all (facts, section 5); counting stops at the
    first that breaks them, so an oversized request costs no more than that to refuse."""
    dimensions = EMBEDDING_DIMENSIONS.get(model, 1536)
    problem = check(integer(1, dimensions), "dimensions", body.get("dimensions"))
    if problem:
        return problem
    total = 0
    for item in inputs(body):
        tokens = len(item) if isinstance(item, list) else counter.text(model, item).tokens
        if tokens > 8192:
            return bad(
                f"This model's maximum context length is 8192 tokens, however you requested {tokens} tokens "
                "in your prompt. Please reduce your prompt.",
                "input",
                "context_length_exceeded",
            )
        total += tokens
        if total > 300_000:
            return bad(f"Requested {total} tokens, max 300000 tokens per request", "input", "max_tokens_per_request")
    return None


def _invalid_image(body: dict[str, Any], model: str) -> Problem | None:
    size = body.get("size")
    allowed = IMAGE_SIZES.get(model, GPT_IMAGE_SIZES if model.startswith("gpt-image") else None)
    if size is not None and allowed is not None and size not in allowed:
        return bad(f"'{size[:50]}' is not one of {sorted(allowed)} - 'size'", "size")
    if model == "dall-e-3" and (body.get("n") or 1) != 1:
        return bad("You must provide n=1 for this model.", "n")
    longest = PROMPT_LENGTHS.get(model, 32_000)
    return check(text(longest), "prompt", body["prompt"])
