"""A prompt's attached inputs as message parts: Chat Completions' (`image_url`, `file`,
`input_audio`) and the Responses API's (`input_image`, `input_file`).

A local file's bytes never enter a body: its part holds `attachments.marker(i)`, `i` its place in
the request's attachments, where the base64 goes, and the sender streams the file there. A URL
goes as written. The text comes first, then the parts in the attachments' order. The jobs
package has checked each attachment against the endpoint: every one here can be sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from batchgpt.attachments import Attachment, marker

_AUDIO_FORMATS = {"audio/wav": "wav", "audio/mpeg": "mp3"}
_SUFFIXES = {"application/pdf": "pdf", "text/plain": "txt", "text/markdown": "md", "text/csv": "csv"}


def chat_content(text: str, attachments: Sequence[Attachment]) -> list[dict[str, Any]]:
    """A user message's content: its text, then a part for each attachment."""
    head = [{"type": "text", "text": text}] if text else []
    return head + [_chat_part(i, a) for i, a in enumerate(attachments)]


def response_content(text: str, attachments: Sequence[Attachment]) -> list[dict[str, Any]]:
    """A Responses API message's content: its text, then a part for each attachment."""
    head = [{"type": "input_text", "text": text}] if text else []
    return head + [_response_part(i, a) for i, a in enumerate(attachments)]


def _chat_part(index: int, attachment: Attachment) -> dict[str, Any]:
    if attachment.kind == "image":
        return {"type": "image_url", "image_url": {"url": _url(index, attachment), "detail": attachment.detail}}
    if attachment.kind == "file":
        return {"type": "file", "file": {"filename": filename(index, attachment), "file_data": _url(index, attachment)}}
    data = marker(index) if attachment.local else attachment.source.partition(",")[2]
    return {"type": "input_audio", "input_audio": {"data": data, "format": _AUDIO_FORMATS[attachment.mime]}}


def _response_part(index: int, attachment: Attachment) -> dict[str, Any]:
    if attachment.kind == "image":
        return {"type": "input_image", "image_url": _url(index, attachment), "detail": attachment.detail}
    if attachment.source.startswith(("http://", "https://")):
        return {"type": "input_file", "file_url": attachment.source}
    return {"type": "input_file", "filename": filename(index, attachment), "file_data": _url(index, attachment)}


def _url(index: int, attachment: Attachment) -> str:
    """What an `image_url` or `file_data` holds: a local file as a data: URL around its marker."""
    return f"data:{attachment.mime};base64,{marker(index)}" if attachment.local else attachment.source


def filename(index: int, attachment: Attachment) -> str:
    """The file's name as the API is told it: a local file's own; a data: URL's made up."""
    if attachment.local:
        return attachment.name
    suffix = _SUFFIXES.get(attachment.mime) or attachment.mime.rpartition("/")[2] or "bin"
    return f"attachment-{index + 1}.{suffix}"
