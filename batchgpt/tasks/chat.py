"""The chat-like task types: chat, translate, dialogue, code and conversation (Chat Completions),
and completion (the legacy /completions).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from batchgpt.attachments import Attachment
from batchgpt.providers.openai import usage_reply
from batchgpt.records import Reply

from .base import FIELD_NAME, MalformedReply, TaskType, apply_params, first_choice, strip_fences, text_of
from .parts import chat_content


class ChatType(TaskType):
    endpoint = "/chat/completions"
    options: tuple[str, ...] = ("system",)

    def messages(self, item: Mapping[str, Any], options: Mapping[str, Any]) -> list[dict[str, str]]:
        system = options.get("system")
        head = [{"role": "system", "content": system}] if system else []
        return head + [{"role": "user", "content": self.text(item, options)}]

    def body(self, item: Mapping[str, Any], options: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
        body = {"model": params["model"], "messages": self.messages(item, options)}
        return apply_params(body, params, chat=True)

    def attach(self, body: dict[str, Any], attachments: Sequence[Attachment]) -> None:
        """The parts go with the last user message (a conversation's first turn, whose history
        later turns repeat); a dialogue without one gets one of its own."""
        message = last_user(body["messages"])
        message["content"] = chat_content(message["content"], attachments)

    def parse(self, data: Mapping[str, Any]) -> Reply:
        choice = first_choice(data)
        message = choice.get("message")
        if not isinstance(message, dict):
            raise MalformedReply("choices[0].message is missing")
        content = message.get("content")
        stop = "length" if choice.get("finish_reason") == "length" else None
        if content is None and message.get("refusal"):
            content, stop = message["refusal"], "refusal"
        return usage_reply(data, self.clean(text_of(content)), stop)

    def clean(self, content: str) -> str:
        return content


class Chat(ChatType):
    name = "chat"
    text_field = "prompt"


class Translate(ChatType):
    name = "translate"
    text_field = "text"
    options = ("source_lang", "target_lang")

    def messages(self, item: Mapping[str, Any], options: Mapping[str, Any]) -> list[dict[str, str]]:
        source = options.get("source_lang")
        direction = f"from {source} into {options['target_lang']}" if source else f"into {options['target_lang']}"
        system = (
            f"You are a professional translator. Translate the user's text {direction}. "
            "Reply with the translation only: no quotes, notes or explanations. "
            "Keep line breaks, placeholders and markup as they are."
        )
        return [{"role": "system", "content": system}, {"role": "user", "content": self.text(item, options)}]

    def clean(self, content: str) -> str:
        return content.strip()


class Dialogue(ChatType):
    name = "dialogue"

    def messages(self, item: Mapping[str, Any], options: Mapping[str, Any]) -> list[dict[str, str]]:
        system = options.get("system")
        head = [{"role": "system", "content": system}] if system else []
        return head + [dict(m) for m in item["messages"]]


class Code(ChatType):
    name = "code"
    text_field = "description"
    options = ("language",)

    def messages(self, item: Mapping[str, Any], options: Mapping[str, Any]) -> list[dict[str, str]]:
        language = options.get("language")
        what = f"{language} code" if language else "code"
        system = (
            f"You are an expert programmer. Reply with only the {what} that does what the user asks: "
            "no explanations and no Markdown fences."
        )
        return [{"role": "system", "content": system}, {"role": "user", "content": self.text(item, options)}]

    def clean(self, content: str) -> str:
        return strip_fences(content)


class Conversation(ChatType):
    """A chained conversation: the item's (or the task's) `turns` are user messages sent in order,
    each with the whole history, the earlier answers included. The body built here is the first
    turn's; the engine sends the others as the answers come (records.Request.turns)."""

    name = "conversation"
    text_field = ""
    options = ("system", "turns")

    def turns(self, item: Mapping[str, Any], options: Mapping[str, Any]) -> list[str]:
        """The user messages, each {field} naming one of the item's fields filled in."""
        return [_FIELD_REF.sub(lambda m: _field(item, m), str(turn)) for turn in options.get("turns") or ()]

    def messages(self, item: Mapping[str, Any], options: Mapping[str, Any]) -> list[dict[str, str]]:
        system = options.get("system")
        head = [{"role": "system", "content": system}] if system else []
        return head + [{"role": "user", "content": self.turns(item, options)[0]}]


def last_user(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The last user message, or a new one with no text at the end when there is none."""
    users = [n for n, message in enumerate(messages) if message.get("role") == "user"]
    if users:
        return messages[users[-1]]
    messages.append({"role": "user", "content": ""})
    return messages[-1]


_FIELD_REF = re.compile(rf"\{{({FIELD_NAME})\}}")


def _field(item: Mapping[str, Any], match: re.Match[str]) -> str:
    """A placeholder's value from the item, or the placeholder itself when the item has no such field."""
    name = match.group(1)
    return match.group(0) if name not in item else "" if item[name] is None else str(item[name])


class Completion(TaskType):
    name = "completion"
    endpoint = "/completions"
    text_field = "prompt"

    def body(self, item: Mapping[str, Any], options: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
        body = {"model": params["model"], "prompt": self.text(item, options)}
        return apply_params(body, params, chat=False)

    def parse(self, data: Mapping[str, Any]) -> Reply:
        text = first_choice(data).get("text")
        if not isinstance(text, str):
            raise MalformedReply("choices[0].text is missing")
        return usage_reply(data, text)
