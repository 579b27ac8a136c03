"""The kinds of request the mock answers: the POST paths that name them (ENDPOINTS) and each
kind's answer to a valid request (REPLIES, `reply`). The answers themselves are chat.py's (chat,
completions, Responses) and answers.py's (embeddings, moderations, images, audio); which bodies
are refused is validate.py's. Pure functions of a request body and a token counter: the server
adds the transport, faults.py the faults and limits.py the rate limits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from batchgpt.tokens import Counter

from .answers import embeddings, images, moderations, speech, transcription
from .chat import Reply, completion, response

# POST path (under /v1, and under Azure's /openai/deployments/{deployment}): the kind of request,
# which picks its validation, its token count and its answer (REPLIES)
ENDPOINTS = {
    "/chat/completions": "chat",
    "/completions": "completion",
    "/responses": "responses",
    "/embeddings": "embeddings",
    "/moderations": "moderations",
    "/images/generations": "images",
    "/audio/speech": "speech",
    "/audio/transcriptions": "transcriptions",
}


def kind_of(url: str) -> str:
    """The kind of request a batch line's url names (/v1/chat/completions, or Azure's /chat/completions)."""
    return ENDPOINTS[url.removeprefix("/v1")]


def _transcription_reply(body: dict[str, Any]) -> Reply:
    filename, data = body["_file"]
    answer, content_type = transcription({k: v for k, v in body.items() if k != "_file"}, filename, data)
    return Reply(answer, content_type)


Answer = Callable[[dict[str, Any], bytes, Counter, "str | None"], Reply]
# kind: its answer to a valid request (body, raw bytes, counter, the answer fault or None)
REPLIES: dict[str, Answer] = {
    "chat": lambda body, raw, counter, fault: completion(body, raw, counter, True, fault),
    "completion": lambda body, raw, counter, fault: completion(body, raw, counter, False, fault),
    "responses": lambda body, raw, counter, fault: response(body, raw, counter, fault),
    "embeddings": lambda body, raw, counter, fault: Reply(embeddings(body, counter)),
    "moderations": lambda body, raw, counter, fault: Reply(moderations(body)),
    "images": lambda body, raw, counter, fault: Reply(images(body, counter)),
    "speech": lambda body, raw, counter, fault: Reply(*speech(body)),
    "transcriptions": lambda body, raw, counter, fault: _transcription_reply(body),
}


def reply(kind: str, body: dict[str, Any], raw: bytes, counter: Counter, fault: str | None = None) -> Reply:
    """What the API answers a valid request of `kind`; `fault` is an answer fault, or None."""
    return REPLIES[kind](body, raw, counter, fault)
