"""Task types: for each, the endpoint it calls, the request body it builds and how its answer is read.

A task type never does I/O; jobs.py feeds it items and the runner feeds it parsed JSON replies.
"""
from __future__ import annotations

import re
import string
from typing import Any, Callable, Mapping

from .records import Reply

# Reasoning models reject `max_tokens` with 400 unsupported_parameter; they take
# `max_completion_tokens`, which also caps the hidden reasoning tokens.
_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")
_FENCE = re.compile(r"```[^\n`]*\n(.*?)(?:```|\Z)", re.DOTALL)
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class MalformedReply(Exception):
    """The server answered 2xx with a body that is not the documented shape; worth a retry."""


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


def _usage_reply(data: Mapping[str, Any], output: Any) -> Reply:
    usage = data.get("usage") or {}
    if not isinstance(usage, Mapping):
        raise MalformedReply("usage is not an object")
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return Reply(
        output=output,
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        cached_tokens=prompt_details.get("cached_tokens") or 0,
        reasoning_tokens=completion_details.get("reasoning_tokens") or 0,
        ttft_s=data.get("_ttft_s"),
    )


def _first_choice(data: Mapping[str, Any]) -> Mapping[str, Any]:
    try:
        choice = data["choices"][0]
    except (KeyError, IndexError, TypeError) as exc:
        raise MalformedReply(f"no choices in the answer ({type(exc).__name__})") from None
    if not isinstance(choice, Mapping):
        raise MalformedReply("choices[0] is not an object")
    return choice


class TaskKind:
    """A task type. Subclasses set `name`, `endpoint` and `text_field` and build messages or a prompt."""

    name = ""
    endpoint = ""
    text_field = ""  # the item field a template fills
    options: tuple[str, ...] = ()  # task-level keys an item may override

    def body(self, item: Mapping[str, Any], options: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def parse(self, data: Mapping[str, Any]) -> Reply:
        raise NotImplementedError

    def text(self, item: Mapping[str, Any], options: Mapping[str, Any]) -> str:
        template = options.get("template")
        return fill(template, item) if template else str(item[self.text_field])


class ChatKind(TaskKind):
    endpoint = "/chat/completions"
    options = ("system",)

    def messages(self, item: Mapping[str, Any], options: Mapping[str, Any]) -> list[dict[str, str]]:
        system = options.get("system")
        head = [{"role": "system", "content": system}] if system else []
        return head + [{"role": "user", "content": self.text(item, options)}]

    def body(self, item, options, params):
        body = {"model": params["model"], "messages": self.messages(item, options)}
        return apply_params(body, params, chat=True)

    def parse(self, data):
        message = _first_choice(data).get("message")
        if not isinstance(message, Mapping):
            raise MalformedReply("choices[0].message is missing")
        content = message.get("content")
        if content is None and message.get("refusal"):
            content = message["refusal"]
        return _usage_reply(data, self.clean(content or ""))

    def clean(self, content: str) -> str:
        return content


class Chat(ChatKind):
    name = "chat"
    text_field = "prompt"


class Translate(ChatKind):
    name = "translate"
    text_field = "text"
    options = ("source_lang", "target_lang")

    def messages(self, item, options):
        source = options.get("source_lang")
        direction = f"from {source} into {options['target_lang']}" if source else f"into {options['target_lang']}"
        system = (
            f"You are a professional translator. Translate the user's text {direction}. "
            "Reply with the translation only: no quotes, notes or explanations. "
            "Keep line breaks, placeholders and markup as they are."
        )
        return [{"role": "system", "content": system}, {"role": "user", "content": self.text(item, options)}]

    def clean(self, content):
        return content.strip()


class Dialogue(ChatKind):
    name = "dialogue"

    def messages(self, item, options):
        system = options.get("system")
        head = [{"role": "system", "content": system}] if system else []
        return head + [dict(m) for m in item["messages"]]


class Code(ChatKind):
    name = "code"
    text_field = "description"
    options = ("language",)

    def messages(self, item, options):
        language = options.get("language")
        what = f"{language} code" if language else "code"
        system = (
            f"You are an expert programmer. Reply with only the {what} that does what the user asks: "
            "no explanations and no Markdown fences."
        )
        return [{"role": "system", "content": system}, {"role": "user", "content": self.text(item, options)}]

    def clean(self, content):
        return strip_fences(content)


class Completion(TaskKind):
    name = "completion"
    endpoint = "/completions"
    text_field = "prompt"

    def body(self, item, options, params):
        body = {"model": params["model"], "prompt": self.text(item, options)}
        return apply_params(body, params, chat=False)

    def parse(self, data):
        text = _first_choice(data).get("text")
        if not isinstance(text, str):
            raise MalformedReply("choices[0].text is missing")
        return _usage_reply(data, text)


TASKS: dict[str, TaskKind] = {kind.name: kind for kind in (Translate(), Chat(), Completion(), Dialogue(), Code())}

# Batch API lines name an endpoint, not a type; their bodies are sent as given.
BATCH_URLS: dict[str, str] = {"/v1/chat/completions": "chat", "/v1/completions": "completion"}

Parser = Callable[[Mapping[str, Any]], Reply]
