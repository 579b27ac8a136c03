"""How the mock reads a request's body, bounded as the API bounds it: a JSON object (the POST
endpoints, batch creation) or a multipart form with its upload (transcriptions, files).

Past its size cap a body is answered 413 with the API's words for it (`Maximum content size limit
(N) exceeded (M bytes read)`, type `server_error`, as the API answers an upload past 25 MiB); the
rest of it is read and dropped, up to DRAIN bytes, so that the client, still writing, hears the
answer instead of a reset. Anything that is no JSON object is a 400 `invalid_request_error`: bytes
that are not UTF-8, broken JSON, NaN or Infinity, a number too long for Python to read, nesting
deeper than MAX_DEPTH, or a string holding half of a surrogate pair (the mock could count no
token of it). The facts leave the JSON cap, the depth and the surrogates open: see the
constants. Nothing here reads more than the cap into memory.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import http_exceptions, web

from .errors import error_body

# A JSON body's cap. The facts give none for JSON; they allow 50 MB of images in one request,
# which base64 makes about 67 MB, so the cap leaves room for that and the text around it.
MAX_JSON_BYTES = 100 * 2**20
MAX_AUDIO_BYTES = 25 * 2**20  # an upload to /audio/transcriptions (facts, section 8: 26214400)
MAX_FILE_BYTES = 512 * 10**6  # any file uploaded to /files (facts, section 10)
# Nesting deeper than this is refused (the facts are silent). Strict schemas nest at most 10
# levels, a few JSON levels each; the mock walks bodies recursively and must stay within Python's stack.
MAX_DEPTH = 128
DRAIN = 64 * 2**20  # bytes of an oversized body read and dropped before answering 413
# what reading a body raises when its bytes cannot be decoded (a broken gzip body, a bad chunk)
UNREADABLE = (http_exceptions.HttpProcessingError, web.RequestPayloadError)
PARSE_ERROR = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
    "your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not "
    "valid JSON.)"
)


def bad_request(message: str, param: str | None = None, code: str | None = None) -> web.Response:
    return web.json_response(error_body(message, "invalid_request_error", code, param), status=400)


def too_large(limit: int, read: int) -> web.Response:
    message = f"Maximum content size limit ({limit}) exceeded ({read} bytes read)"
    return web.json_response(error_body(message, "server_error", None), status=413)


async def read_json(request: web.Request, limit: int) -> tuple[dict[str, Any], bytes] | web.Response:
    """The body as a JSON object and its bytes; or the 413 past `limit`, or the 400 for a body
    that is no JSON object."""
    raw = await read_bounded(request, limit)
    if isinstance(raw, web.Response):
        return raw
    body = parse_json(raw)
    if isinstance(body, str):
        return bad_request(body)
    if not isinstance(body, dict):
        return bad_request(f"{PARSE_ERROR} The body must be a JSON object, not {kind_name(body)}.")
    return body, raw


async def read_bounded(request: web.Request, limit: int) -> bytes | web.Response:
    """The body's bytes, or the 413 once more than `limit` arrive (or a 400 when they cannot be
    decoded, as a broken gzip body)."""
    body = bytearray()
    try:
        async for chunk in request.content.iter_any():
            body += chunk
            if len(body) > limit:
                return too_large(limit, len(body) + await _drain(request))
    except UNREADABLE as exc:
        return bad_request(f"{PARSE_ERROR} ({' '.join(str(exc).split())})")
    return bytes(body)


async def _drain(request: web.Request) -> int:
    """Read and drop what is left of a body, up to DRAIN bytes; how many were read."""
    dropped = 0
    try:
        async for chunk in request.content.iter_any():
            dropped += len(chunk)
            if dropped > DRAIN:
                break
    except UNREADABLE:
        pass  # a broken rest changes nothing: the answer is the 413
    return dropped


def parse_json(raw: bytes) -> Any:
    """The parsed body, or (a str) the message of the 400 that refuses it."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"{PARSE_ERROR} (The body is not UTF-8: byte {exc.start} is 0x{raw[exc.start]:02x}.)"
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        return f"{PARSE_ERROR} (It is nested more than {MAX_DEPTH} levels deep.)"
    except ValueError as exc:  # JSONDecodeError, NaN and Infinity, a number of over 4300 digits
        return f"{PARSE_ERROR} ({exc})"
    problem = ill_formed(value)
    return f"{PARSE_ERROR} ({problem})" if problem else value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def ill_formed(value: Any) -> str | None:
    """What makes a parsed value one the mock refuses (too deep, or a string holding half a
    surrogate pair), or None. Walked without recursion, so that no depth can overflow it."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if not _encodable(item):
                return "A string holds an unpaired surrogate, which is no Unicode character."
        elif isinstance(item, (dict, list)):
            if depth > MAX_DEPTH:
                return f"It is nested more than {MAX_DEPTH} levels deep."
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def kind_name(value: Any) -> str:
    """A JSON value's kind as the API's messages name it: 'a string', 'an array', ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


async def read_form(request: web.Request, limit: int) -> dict[str, Any] | web.Response:
    """A multipart form's fields as a dict, its upload (the field `file`) as (filename, bytes)
    under `_file`; or the 413 past `limit`, or the 400 for a form that cannot be read."""
    try:
        form = await request.clone(client_max_size=limit).post()
    except web.HTTPRequestEntityTooLarge:
        read = request.content.total_bytes
        return too_large(limit, read + await _drain(request))
    # a broken form: no boundary, a part without a name, an unknown charset, too many fields, ...
    except (ValueError, LookupError, AssertionError, web.HTTPException, *UNREADABLE) as exc:
        return bad_request(f"The multipart form could not be read: {exc}")
    fields: dict[str, Any] = {}
    for key, value in form.items():
        if isinstance(value, web.FileField):
            size = value.file.seek(0, 2)  # as decoded: a part's own Content-Encoding may inflate it
            if size > limit:
                return too_large(limit, size)
            if key == "file" and "_file" not in fields:
                value.file.seek(0)
                fields["_file"] = (value.filename, value.file.read())
        elif not key.startswith("_"):  # a form's own `_file` text must not pass for the upload
            try:  # a field sent with a content type other than text/* arrives as bytes
                fields[key] = value if isinstance(value, str) else bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                return bad_request(f"The form field '{key[:64]}' is not UTF-8 text.", key[:64])
    return fields
