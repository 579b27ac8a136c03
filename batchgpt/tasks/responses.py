"""The Responses API's task type (`response`): a body of `input` and `instructions`, and an answer
read from its `output` messages, or an error row when it says it did not complete.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from batchgpt.attachments import Attachment
from batchgpt.providers.openai import RESPONSES_USAGE, usage_reply
from batchgpt.records import Reply

from .base import FailedAnswer, MalformedReply, TaskType
from .chat import last_user
from .parts import response_content


class Response(TaskType):
    """The Responses API: `input` as text (or a template) or a list of messages, `instructions`,
    and `store: false` unless the job says otherwise (stored responses are kept by the provider)."""

    name = "response"
    endpoint = "/responses"
    text_field = "input"
    options = ("instructions",)

    def body(self, item: Mapping[str, Any], options: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
        value = item.get("input")
        text: Any = [dict(m) for m in value] if isinstance(value, list) and not options.get("template") else None
        body: dict[str, Any] = {"model": params["model"], "input": text or self.text(item, options), "store": False}
        if options.get("instructions"):
            body["instructions"] = options["instructions"]
        for key in ("temperature", "top_p"):
            if key in params:
                body[key] = params[key]
        if "max_tokens" in params:
            body["max_output_tokens"] = params["max_tokens"]  # reasoning tokens count against it too
        if params.get("stream"):
            body["stream"] = True  # usage comes with the final event; no stream_options here
        body.update(params.get("params") or {})
        return body

    def attach(self, body: dict[str, Any], attachments: Sequence[Attachment]) -> None:
        """`input` as a user message whose content is its text and then the parts; a list of
        messages, with the parts in its last user message."""
        given = body["input"]
        messages = [{"role": "user", "content": given}] if isinstance(given, str) else given
        message = last_user(messages)
        message["content"] = response_content(message["content"], attachments)
        body["input"] = messages

    def parse(self, data: Mapping[str, Any]) -> Reply:
        status = data.get("status")
        if status not in (None, "completed"):  # incomplete, failed, cancelled; queued or in_progress (background)
            details = data.get("incomplete_details") or data.get("error") or {}
            reason = details.get("reason") or details.get("message") if isinstance(details, dict) else None
            raise FailedAnswer(f"the response is {status}: {reason or 'no reason given'}", self._usage(data, None))
        texts: list[Any] = []
        refused = False
        output = data.get("output")
        if not isinstance(output, list):
            raise MalformedReply("the answer has no `output` list")
        for entry in output:
            if isinstance(entry, dict) and entry.get("type") == "message":
                content = entry.get("content")
                if isinstance(content, str):  # some servers answer a message's content as plain text
                    texts.append(content)
                    continue
                for part in content if isinstance(content, list) else []:
                    if isinstance(part, dict) and part.get("type") in ("output_text", "refusal"):
                        refused = refused or part["type"] == "refusal"
                        texts.append(part.get("text") if part["type"] == "output_text" else part.get("refusal"))
        text = [t for t in texts if isinstance(t, str)]
        if len(text) != len(texts):
            raise MalformedReply("an output_text part has no text")
        return usage_reply(data, "".join(text), "refusal" if refused else None, RESPONSES_USAGE)

    @staticmethod
    def _usage(data: Mapping[str, Any], output: Any) -> Reply:
        return usage_reply(data, output, names=RESPONSES_USAGE)
