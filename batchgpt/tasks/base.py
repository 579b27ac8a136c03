"""What every task type shares: the TaskType interface, the exceptions an answer raises, and the
helpers that build bodies (templates, sampling parameters) and read answers (choices, lists).

A task type never does I/O; the jobs package feeds it items and the runner feeds it parsed JSON
replies. Usage is read as the provider reports it (providers/openai.py).
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from typing import Any

from batchgpt.attachments import Attachment
from batchgpt.providers.spec import MalformedReply
from batchgpt.records import Reply

__all__ = ["FailedAnswer", "MalformedReply", "TaskType"]

# Reasoning models reject `max_tokens` with 400 unsupported_parameter; they take
# `max_completion_tokens`, which also caps the hidden reasoning tokens.
_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")
_FENCE = re.compile(r"```[^\n`]*\n(.*?)(?:```|\Z)", re.DOTALL)
# A field name has an identifier's shape in any script: {question}, {单号}, {prix_unité}. CSV
# headers from a Chinese or French spreadsheet name their columns in their own language.
FIELD_NAME = r"[^\W\d]\w*"
_FIELD = re.compile(rf"^{FIELD_NAME}$")


class FailedAnswer(Exception):
    """The server answered 2xx, and the answer says the request did not succeed (a Responses API
    answer `incomplete` or `failed`): an error row with its reason, not retried, and billed for
    the usage it reports (`reply`)."""

    def __init__(self, message: str, reply: Reply):
        super().__init__(message)
        self.reply = reply


def is_reasoning_model(model: str) -> bool:
    return model.rsplit("/", 1)[-1].startswith(_REASONING_PREFIXES)


def template_fields(template: str) -> list[str]:
    """The {placeholders} of a template; raises ValueError for anything but plain field names."""
    names = []
    for _, name, spec, conv in string.Formatter().parse(template):
        if name is None:
            continue
        if not _FIELD.match(name) or spec or conv:
            raise ValueError(f"template placeholder {{{name}}} must be a plain field name like {{question}}")
        names.append(name)
    return names


def fill(template: str, item: Mapping[str, Any]) -> str:
    return template.format_map({k: "" if v is None else str(v) for k, v in item.items()})


def strip_fences(text: str) -> str:
    """The code inside the first Markdown fence, or the text itself when there is none."""
    match = _FENCE.search(text)
    return (match.group(1) if match else text).strip("\n").rstrip()


def apply_params(body: dict[str, Any], params: Mapping[str, Any], chat: bool) -> dict[str, Any]:
    for key in ("temperature", "top_p", "stop"):
        if key in params:
            body[key] = params[key]
    if "max_tokens" in params:
        use_new = chat and is_reasoning_model(body["model"])
        body["max_completion_tokens" if use_new else "max_tokens"] = params["max_tokens"]
    if params.get("stream"):
        body["stream"] = True
        # Without include_usage a streamed answer carries no token counts, and cost would be guessed.
        body["stream_options"] = {"include_usage": True}
    body.update(params.get("params") or {})
    return body


# Answers are decoded JSON, so their objects are dicts; isinstance(x, dict) is what is checked
# (a tenth of the cost of an abstract Mapping check, at thousands of answers a second).


def text_of(content: Any) -> str:
    """A message's content: text, or a list of parts whose text parts are joined (as some servers
    answer); anything else is not an answer."""
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list) and all(isinstance(p, dict) for p in content):
        texts = [p.get("text") for p in content if p.get("type", "text") in ("text", "output_text")]
        if all(isinstance(t, str) for t in texts):
            return "".join(texts)
    raise MalformedReply("choices[0].message.content is neither text nor a list of text parts")


def first_choice(data: Mapping[str, Any]) -> Mapping[str, Any]:
    try:
        choice = data["choices"][0]
    except (KeyError, IndexError, TypeError) as exc:
        raise MalformedReply(f"no choices in the answer ({type(exc).__name__})") from None
    if not isinstance(choice, dict):
        raise MalformedReply("choices[0] is not an object")
    return choice


class TaskType:
    """A task type. Subclasses set `name`, `endpoint` and `text_field` and build messages or a prompt."""

    name = ""
    endpoint = ""
    text_field = ""  # the item field a template fills
    options: tuple[str, ...] = ()  # task-level keys an item may override
    billing = "tokens"  # tokens | images | characters | minutes | free
    chat_family = True  # takes sampling parameters and the job's default model
    default_model: str | None = None  # for the other families, when the task and item name none
    pack_size = 0  # > 0: items are packed into one request's `input` list, up to this many
    file_field: str | None = None  # an item field naming a file to upload (multipart)

    def body(self, item: Mapping[str, Any], options: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def parse(self, data: Mapping[str, Any]) -> Reply:
        raise NotImplementedError

    def attach(self, body: dict[str, Any], attachments: Sequence[Attachment]) -> None:
        """Add the attachments to the body as parts of its prompt; only the chat family and the
        Responses API take them, and the jobs package attaches nothing to the others."""
        raise TypeError(f"a {self.name} task takes no attached inputs")

    def units(self, body: Mapping[str, Any]) -> float | None:
        """What a request bills when not by tokens: images, or characters (minutes need the file)."""
        return None

    def text(self, item: Mapping[str, Any], options: Mapping[str, Any]) -> str:
        template = options.get("template")
        return fill(template, item) if template else str(item[self.text_field])


def passthrough(
    body: dict[str, Any],
    options: Mapping[str, Any],
    keys: tuple[str, ...],
    params: Mapping[str, Any],
    rename: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Options sent as body fields (under the API's name), then the job's `params` as given."""
    for key in keys:
        if options.get(key) is not None:
            body[(rename or {}).get(key, key)] = options[key]
    body.update(params.get("params") or {})
    return body


def data_list(data: Mapping[str, Any], key: str = "data") -> list[Any]:
    entries = data.get(key)
    if not isinstance(entries, list) or not entries:
        raise MalformedReply(f"no `{key}` list in the answer")
    return entries
