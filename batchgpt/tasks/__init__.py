"""Task types: for each, the endpoint it calls, the request body it builds and how its answer is
read, one family to a module (chat.py, responses.py, embeddings.py, images.py, audio.py) on the
interface and helpers of base.py. `TASKS` names them all.

A task type never does I/O; the jobs package feeds it items and the runner feeds it parsed JSON replies.
"""

from __future__ import annotations

from .audio import Speech, Transcription
from .base import (
    FailedAnswer,
    MalformedReply,
    TaskType,
    apply_params,
    fill,
    is_reasoning_model,
    strip_fences,
    template_fields,
)
from .chat import Chat, ChatType, Code, Completion, Conversation, Dialogue, Translate
from .embeddings import Embedding, Moderation
from .images import Image
from .responses import Response

__all__ = [
    "BATCH_URLS",
    "TASKS",
    "Chat",
    "ChatType",
    "Code",
    "Completion",
    "Conversation",
    "Dialogue",
    "Embedding",
    "FailedAnswer",
    "Image",
    "MalformedReply",
    "Moderation",
    "Response",
    "Speech",
    "TaskType",
    "Transcription",
    "Translate",
    "apply_params",
    "fill",
    "is_reasoning_model",
    "strip_fences",
    "template_fields",
]

TASKS: dict[str, TaskType] = {
    task_type.name: task_type
    for task_type in (
        Translate(),
        Chat(),
        Completion(),
        Response(),
        Dialogue(),
        Conversation(),
        Code(),
        Embedding(),
        Image(),
        Moderation(),
        Speech(),
        Transcription(),
    )
}

# Batch API lines name an endpoint, not a type; their bodies are sent as given.
BATCH_URLS: dict[str, str] = {
    "/v1/chat/completions": "chat",
    "/v1/completions": "completion",
    "/v1/responses": "response",
    "/v1/embeddings": "embedding",
    "/v1/moderations": "moderation",
}
