"""Prompt tokens a request's message text does not show: function definitions (`tools`, the legacy
`functions`), a forced `tool_choice`, the answer's JSON Schema, and message parts that are not
text (files, audio, tool calls). Images are vision.py's; the text is tokens.py's.

Function definitions are counted as OpenAI's cookbook counts them (How_to_count_tokens_with_tiktoken,
`num_tokens_for_tools`; the shared API facts, section 9): each function 7 tokens (10 on gpt-3.5
and gpt-4) and its `name:description`, a properties block 3, each property 3 and its
`key:type:description`, an enum -3 and 3 a value besides its text, and 12 at the end. That is
exact for the shapes the recipe reads, on the models it was measured on. Everything else cannot be
counted exactly, so it is counted high and marked approximate: the JSON text of what the recipe
does not read (JSON spells out more than the API's rendering of a schema), a schema as its JSON
and 9 tokens (measured: openai-cookbook issue #2140), a file as inputtokens.py counts an attached one.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from .inputtokens import MAX_FILE_PAGES, PAGE_TEXT_TOKENS, pdf_tokens
from .mediainfo import pages_in
from .tokens import TOKENS_PER_MESSAGE, Count
from .vision import IMAGE_PARTS

if TYPE_CHECKING:
    from .tokens import Counter

FUNCTION_INIT = 7  # gpt-4o and gpt-4o-mini
FUNCTION_INIT_OLDER = 10  # gpt-3.5-turbo and gpt-4; models the cookbook did not measure get it too (the larger)
PROPERTIES_INIT = 3
PROPERTY_KEY = 3
ENUM_INIT = -3
ENUM_ITEM = 3
FUNCTIONS_END = 12
SCHEMA_OVERHEAD = 9
TEXT_PARTS = frozenset({"text", "input_text", "output_text"})  # tokens.py counts their text
_PLAIN_PROPERTY = frozenset({"type", "description", "enum"})
_PLAIN_PARAMETERS = frozenset({"type", "properties", "required", "additionalProperties"})
_BODY_KEYS = frozenset({"tools", "functions", "tool_choice", "function_call", "response_format", "text"})
_KEPT = 256  # schemas and tool lists whose counts are kept, by identity and by their JSON
_KEPT_CHARS = 50_000  # the longest JSON kept
ZERO = Count(0)


class Overhead:
    """Counts what a body sends besides its messages' text, with the counter's encodings."""

    def __init__(self, counter: Counter) -> None:
        self.counter = counter
        self._kept: dict[tuple[int, str], tuple[object, Count]] = {}
        self._spelled: dict[tuple[str, str], Count] = {}

    def of(self, model: str, endpoint: str, body: Mapping[str, Any]) -> Count:
        """The tokens of a chat or Responses body's tools, tool choice, schema and non-text parts
        (none in nearly every body, which is seen at a glance: a million-item job has this per item)."""
        chat = endpoint == "/chat/completions"
        if not chat and endpoint != "/responses":
            return ZERO
        messages = body.get("messages" if chat else "input")
        total = self.parts(model, messages) if isinstance(messages, list) and _unread(messages) else ZERO
        if _BODY_KEYS.isdisjoint(body):
            return total
        tools, functions = body.get("tools"), body.get("functions")
        if tools and functions:  # both lists (the API refuses that, but it is not sent yet)
            total += self.tools(model, tools, functions)
        elif tools or functions:
            total += self._kept_count(model, tools or functions, lambda: self.tools(model, tools, functions))
        choice = body.get("tool_choice", body.get("function_call"))
        if choice is not None and choice != "auto":
            total += self.choice(model, choice)
        answer = body.get("response_format") if chat else body.get("text")
        if not chat and isinstance(answer, Mapping):
            answer = answer.get("format")  # the Responses API's answer format: `text.format`
        if isinstance(answer, Mapping):
            total += self.schema(model, answer)
        return total

    def tools(self, model: str, tools: Any, functions: Any) -> Count:
        """Function definitions as the cookbook counts them; other tools as their JSON, approximate."""
        init, exact = _function_init(model)
        tokens, approximate = 0, not exact
        listed = [*(tools if isinstance(tools, list) else ()), *(functions if isinstance(functions, list) else ())]
        for odd in (v for v in (tools, functions) if v and not isinstance(v, list)):  # not a list: its JSON
            tokens, approximate = tokens + self._json(model, odd), True
        for tool in listed:
            function = _function_of(tool)
            if function is None:  # a built-in or custom tool: its JSON, at the least
                tokens, approximate = tokens + TOKENS_PER_MESSAGE + self._json(model, tool), True
                continue
            counted = self.function(model, function)
            tokens, approximate = tokens + init + counted.tokens, approximate or counted.approximate
        return Count(tokens + FUNCTIONS_END if listed else 0, approximate)

    def function(self, model: str, function: Mapping[str, Any]) -> Count:
        """One function's name, description and parameters, less the function's own 7 (or 10)."""
        name, description = function.get("name"), function.get("description")
        exact = isinstance(name, str) and isinstance(description, str)
        tokens = self._text(model, f"{name}:{_undotted(description) if isinstance(description, str) else ''}")
        parameters = function.get("parameters")
        if parameters is None:
            return Count(tokens, not exact)
        if not isinstance(parameters, Mapping) or not isinstance(parameters.get("properties", {}), Mapping):
            return Count(tokens + self._json(model, parameters), True)
        properties = parameters.get("properties") or {}
        exact &= _PLAIN_PARAMETERS.issuperset(parameters)
        extra = {k: v for k, v in parameters.items() if k not in _PLAIN_PARAMETERS}
        tokens += self._json(model, extra) if extra else 0
        if properties:
            tokens += PROPERTIES_INIT
        for key, spec in properties.items():
            counted = self.property(model, str(key), spec)
            tokens, exact = tokens + PROPERTY_KEY + counted.tokens, exact and not counted.approximate
        return Count(tokens, not exact)

    def property(self, model: str, key: str, spec: Any) -> Count:
        """`key:type:description` and its enum, as the recipe reads a flat property; anything the
        recipe does not read (nested objects, arrays, unions) as `key:` and its JSON."""
        if not _plain(spec):
            return Count(self._text(model, f"{key}:") + self._json(model, spec), True)
        tokens = self._text(model, f"{key}:{spec['type']}:{_undotted(spec.get('description', ''))}")
        enum = spec.get("enum")
        if enum is not None:
            tokens += ENUM_INIT + sum(ENUM_ITEM + self._text(model, value) for value in enum)
        return Count(tokens, "description" not in spec)

    def choice(self, model: str, choice: Any) -> Count:
        """A tool choice other than `auto`: no published count, so its JSON and a message's 3."""
        text = choice if isinstance(choice, str) else _dumps(choice)
        return Count(TOKENS_PER_MESSAGE + self._text(model, text), True)

    def schema(self, model: str, answer: Mapping[str, Any]) -> Count:
        """A `json_schema` answer format: its name, and its schema's JSON and 9 (measured with the
        schema's `required` and `additionalProperties` left out, which this leaves in: high)."""
        kind = answer.get("type")
        if kind == "json_schema":
            spec = answer.get("json_schema", answer)  # chat nests it; the Responses API does not
            spec = spec if isinstance(spec, Mapping) else {}
            schema = spec.get("schema", {})
            counted = self._kept_count(model, schema, lambda: Count(self._json(model, schema)))
            return Count(SCHEMA_OVERHEAD + self._text(model, str(spec.get("name", ""))) + counted.tokens, True)
        if kind in (None, "text"):
            return ZERO
        return Count(self._json(model, answer), True)  # json_object, or a format not known here

    def parts(self, model: str, messages: Any) -> Count:
        """The message values tokens.py does not count: non-text parts and tool calls."""
        if not isinstance(messages, list):
            return ZERO
        total = ZERO
        for message in messages:
            if not isinstance(message, Mapping):
                continue
            for key, value in message.items():
                if value is None or isinstance(value, (str, int, float)):
                    continue  # text, or nothing (tokens.py counts text and numbers)
                if key == "content" and isinstance(value, list):
                    for part in value:
                        total += self.part(model, part)
                else:  # tool_calls, function_call, audio: their JSON, at the least what is rendered
                    total += Count(self._json(model, value), True)
        return total

    def part(self, model: str, part: Any) -> Count:
        if not isinstance(part, Mapping):
            return ZERO
        kind = part.get("type")
        if kind in TEXT_PARTS or kind in IMAGE_PARTS:
            return ZERO  # tokens.py and vision.py count them
        if kind == "refusal":
            return Count(self._text(model, str(part.get("refusal") or "")))
        if kind in ("file", "input_file"):
            return Count(file_tokens(model, part), True)
        if kind == "input_audio":
            return ZERO  # audio tokens, from the recording's length, at the audio price (unitprices.heard_tokens)
        return Count(self._json(model, part), True)  # a part not known here: its JSON

    def _kept_count(self, model: str, value: object, count: Callable[[], Count]) -> Count:
        """`count()` for `value` on `model`, kept by the value's identity (and the value held, so
        that its id is not reused: a task's schema is one object in all its items), else by its
        JSON (the tools each line of a Batch API file repeats)."""
        key = (id(value), model)
        kept = self._kept.get(key)
        if kept is not None and kept[0] is value:
            return kept[1]
        spelled = (model, _dumps(value))
        counted = self._spelled.get(spelled)
        if counted is None:
            counted = count()
            if len(self._spelled) < _KEPT and len(spelled[1]) <= _KEPT_CHARS:
                self._spelled[spelled] = counted
        if len(self._kept) < _KEPT:
            self._kept[key] = (value, counted)
        return counted

    def _text(self, model: str, text: str) -> int:
        return self.counter.text(model, text).tokens

    def _json(self, model: str, value: Any) -> int:
        return self._text(model, _dumps(value))


def plain(endpoint: str, body: Mapping[str, Any]) -> bool:
    """Whether a body sends its messages' text and nothing else: a chat body without tools, schema,
    parts or images, as nearly every body is. Neither `Overhead.of` nor vision.most_in then finds
    anything to count, so a million-item dry run asks this one question an item instead of both."""
    if endpoint != "/chat/completions" or not _BODY_KEYS.isdisjoint(body):
        return False
    messages = body.get("messages")
    if type(messages) is not list:
        return False
    for message in messages:
        if type(message) is not dict:
            return False
        for value in message.values():
            if type(value) is not str:
                return False
        if message.get("type") in IMAGE_PARTS:  # a message that is itself an image part
            return False
    return True


def _unread(messages: list[Any]) -> bool:
    """Whether a message holds anything but text (a part, a tool call): most hold nothing else."""
    for message in messages:
        if isinstance(message, dict):
            for value in message.values():
                if type(value) is not str:
                    return True
    return False


def file_tokens(model: str, part: Mapping[str, Any]) -> int:
    """The most a file part can cost: a text file's bytes (a token holds at least one), a PDF's
    pages (read from it, else the most the API reads) each as a page of text and an image."""
    file = part.get("file") if part.get("type") == "file" else part
    data = file.get("file_data") if isinstance(file, Mapping) else None
    raw = _decoded(data) if isinstance(data, str) else None
    if raw is not None and not raw.startswith(b"%PDF"):
        try:
            raw.decode("utf-8")
            return len(raw)
        except UnicodeDecodeError:  # a document whose text is packed (docx): as many pages as a PDF
            return MAX_FILE_PAGES * PAGE_TEXT_TOKENS
    counted = pdf_tokens(model, (pages_in(raw) if raw is not None else None) or None, "high")
    return counted.seen + counted.read


def _decoded(data: str) -> bytes | None:
    """The bytes of a data URL (or bare base64); None when it is neither."""
    _, comma, payload = data.partition(",") if data.startswith("data:") else ("", ",", data)
    try:
        return base64.b64decode(payload, validate=False) if comma else None
    except (binascii.Error, ValueError):
        return None


def _function_init(model: str) -> tuple[int, bool]:
    """(tokens a function starts with, whether the cookbook measured them on this model)."""
    name = model.rsplit("/", 1)[-1].removeprefix("ft:")
    if name.startswith("gpt-4o"):
        return FUNCTION_INIT, True
    if name.startswith(("gpt-3.5", "gpt-35")) or name == "gpt-4" or name.startswith(("gpt-4-", "gpt-4:")):
        return FUNCTION_INIT_OLDER, True
    return FUNCTION_INIT_OLDER, False


def _function_of(tool: Any) -> Mapping[str, Any] | None:
    """A function tool's definition: chat nests it under `function`, the Responses API and the
    legacy `functions` list do not. None for any other tool."""
    if not isinstance(tool, Mapping):
        return None
    if tool.get("type") == "function":
        nested = tool.get("function")
        return nested if isinstance(nested, Mapping) else tool
    return tool if "type" not in tool and "name" in tool else None


def _plain(spec: Any) -> bool:
    """A property the cookbook's recipe reads as written: a type named by a string, a description,
    an enum of strings, and nothing else."""
    if not isinstance(spec, Mapping) or not _PLAIN_PROPERTY.issuperset(spec) or not isinstance(spec.get("type"), str):
        return False
    enum = spec.get("enum")
    return isinstance(spec.get("description", ""), str) and (
        enum is None or (isinstance(enum, list) and all(isinstance(v, str) for v in enum))
    )


def _undotted(text: str) -> str:
    return text[:-1] if text.endswith(".") else text


def _dumps(value: Any) -> str:
    """JSON as the API's clients send it: compact, non-ASCII as written (orjson: a tenth of the
    time of json.dumps, paid for each line of a file with tools)."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS, default=str).decode()
