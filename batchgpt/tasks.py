"""Task types: for each, the endpoint it calls, the request body it builds and how its answer is read.

A task type never does I/O; the jobs package feeds it items and the runner feeds it parsed JSON replies.
"""

from __future__ import annotations

import array
import base64
import binascii
import re
import string
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from . import audio
from .records import PLAIN, Billed, Reply

# Reasoning models reject `max_tokens` with 400 unsupported_parameter; they take
# `max_completion_tokens`, which also caps the hidden reasoning tokens.
_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")
_FENCE = re.compile(r"```[^\n`]*\n(.*?)(?:```|\Z)", re.DOTALL)
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class MalformedReply(Exception):
    """The server answered 2xx with a body that is not the documented shape; worth a retry."""


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


def _usage(data: Mapping[str, Any]) -> dict[str, Any]:
    usage = data.get("usage") or {}
    if not isinstance(usage, dict):
        raise MalformedReply("usage is not an object")
    return usage


def _count(usage: Mapping[str, Any], name: str, where: str = "usage") -> int | None:
    """A token count from the answer: a whole number, not negative, or absent (None). Anything else
    (a string, -8000) is a malformed answer, never a cost."""
    value = usage.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedReply(f"{where}.{name} is {value!r}, not a token count")
    return value


def _details(usage: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    details = usage.get(name) or {}
    if not isinstance(details, dict):
        raise MalformedReply(f"usage.{name} is not an object")
    return details


CHAT_USAGE = ("prompt_tokens", "completion_tokens")
RESPONSES_USAGE = ("input_tokens", "output_tokens")  # the Responses API's names for the same counts


def _usage_reply(
    data: Mapping[str, Any], output: Any, stop: str | None = None, names: tuple[str, str] = CHAT_USAGE
) -> Reply:
    """A reply with the usage the answer reports: prompt and completion tokens (under `names`),
    the cached and reasoning tokens in their `_details`, and the kinds billed apart (billed_of)."""
    usage = _usage(data)
    prompt, completion = names
    prompt_details = _details(usage, f"{prompt}_details")
    return Reply(
        output=output,
        stop=stop,
        prompt_tokens=_count(usage, prompt),
        completion_tokens=_count(usage, completion),
        cached_tokens=_count(prompt_details, "cached_tokens", f"{prompt}_details") or 0,
        reasoning_tokens=_count(_details(usage, f"{completion}_details"), "reasoning_tokens", f"{completion}_details")
        or 0,
        billed=billed_of(data, usage, names),
    )


def billed_of(data: Mapping[str, Any], usage: Mapping[str, Any], names: tuple[str, str] = CHAT_USAGE) -> Billed:
    """The kinds of token an answer's usage details tell apart, each billed at its own price:
    cache writes (relays pass them on from providers that bill them), audio and image tokens in
    and out; and the service tier the answer says served it."""
    prompt, completion = (f"{name}_details" for name in names)
    asked, answered = _details(usage, prompt), _details(usage, completion)
    tier = data.get("service_tier")
    billed = Billed(
        cache_write=_count(asked, "cache_write_tokens", prompt) or 0,
        audio_in=_count(asked, "audio_tokens", prompt) or 0,
        audio_out=_count(answered, "audio_tokens", completion) or 0,
        image_in=_count(asked, "image_tokens", prompt) or 0,
        image_out=_count(answered, "image_tokens", completion) or 0,
        tier=tier if isinstance(tier, str) and tier else None,
    )
    return PLAIN if billed == PLAIN else billed


def _text_of(content: Any) -> str:
    """A message's content: text, or a list of parts whose text parts are joined (as some servers
    answer); anything else is not an answer."""
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list) and all(isinstance(p, dict) for p in content):
        texts = [p.get("text") for p in content if p.get("type", "text") in ("text", "output_text")]
        if all(isinstance(t, str) for t in texts):
            return "".join(texts)
    raise MalformedReply("choices[0].message.content is neither text nor a list of text parts")


def _first_choice(data: Mapping[str, Any]) -> Mapping[str, Any]:
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

    def units(self, body: Mapping[str, Any]) -> float | None:
        """What a request bills when not by tokens: images, or characters (minutes need the file)."""
        return None

    def text(self, item: Mapping[str, Any], options: Mapping[str, Any]) -> str:
        template = options.get("template")
        return fill(template, item) if template else str(item[self.text_field])


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

    def parse(self, data: Mapping[str, Any]) -> Reply:
        choice = _first_choice(data)
        message = choice.get("message")
        if not isinstance(message, dict):
            raise MalformedReply("choices[0].message is missing")
        content = message.get("content")
        stop = "length" if choice.get("finish_reason") == "length" else None
        if content is None and message.get("refusal"):
            content, stop = message["refusal"], "refusal"
        return _usage_reply(data, self.clean(_text_of(content)), stop)

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


_FIELD_REF = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


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
        text = _first_choice(data).get("text")
        if not isinstance(text, str):
            raise MalformedReply("choices[0].text is missing")
        return _usage_reply(data, text)


def _passthrough(
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


def _data_list(data: Mapping[str, Any], key: str = "data") -> list[Any]:
    entries = data.get(key)
    if not isinstance(entries, list) or not entries:
        raise MalformedReply(f"no `{key}` list in the answer")
    return entries


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
        return _usage_reply(data, "".join(text), "refusal" if refused else None, RESPONSES_USAGE)

    @staticmethod
    def _usage(data: Mapping[str, Any], output: Any) -> Reply:
        return _usage_reply(data, output, names=RESPONSES_USAGE)


class Embedding(TaskType):
    name = "embedding"
    endpoint = "/embeddings"
    text_field = "text"
    options = ("dimensions",)
    chat_family = False
    default_model = "text-embedding-3-small"
    # The API takes up to 2048 inputs and 300,000 tokens a request; 256 vectors keep an answer a
    # few MB. A task's `batch_size` changes it.
    pack_size = 256

    def body(self, item: Mapping[str, Any], options: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
        # base64, as the official SDK asks: a quarter of the bytes of a JSON float list.
        body = {"model": params["model"], "input": self.text(item, options), "encoding_format": "base64"}
        return _passthrough(body, options, ("dimensions",), params)

    def parse(self, data: Mapping[str, Any]) -> Reply:
        vectors = []
        entries = _data_list(data)
        if not all(isinstance(e, dict) and isinstance(e.get("index", 0), int) for e in entries):
            raise MalformedReply("an embedding entry has no whole-number index")
        for entry in sorted(entries, key=lambda e: e.get("index", 0)):
            vector = entry.get("embedding")
            if isinstance(vector, str):
                try:
                    vector = array.array("f", base64.b64decode(vector)).tolist()
                except (ValueError, binascii.Error):
                    raise MalformedReply("an embedding is not valid base64") from None
            if not isinstance(vector, list):
                raise MalformedReply("an embedding is missing")
            vectors.append(vector)
        return Reply(output=vectors, prompt_tokens=_count(_usage(data), "prompt_tokens"), completion_tokens=0)


class Moderation(TaskType):
    name = "moderation"
    endpoint = "/moderations"
    text_field = "text"
    billing = "free"
    chat_family = False
    default_model = "omni-moderation-latest"
    pack_size = 32  # the API's documented limit is not known; 32 texts a request is conservative

    def body(self, item: Mapping[str, Any], options: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
        return _passthrough({"model": params["model"], "input": self.text(item, options)}, options, (), params)

    def parse(self, data: Mapping[str, Any]) -> Reply:
        outputs, details = [], []
        for result in _data_list(data, "results"):
            if not isinstance(result, dict) or not isinstance(result.get("categories"), dict):
                raise MalformedReply("a moderation result has no categories")
            flagged_as = sorted(name for name, on in result["categories"].items() if on)
            outputs.append(f"flagged: {', '.join(flagged_as)}" if result.get("flagged") else "not flagged")
            details.append(
                {
                    "flagged": bool(result.get("flagged")),
                    "categories": flagged_as,
                    "scores": result.get("category_scores") or {},
                }
            )
        return Reply(output=outputs, details=details)


class Image(TaskType):
    name = "image"
    endpoint = "/images/generations"
    text_field = "prompt"
    options = ("size", "quality", "style", "n", "response_format")
    billing = "images"
    chat_family = False

    def body(self, item: Mapping[str, Any], options: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
        body = {"model": params["model"], "prompt": self.text(item, options)}
        return _passthrough(body, options, self.options, params)

    def units(self, body: Mapping[str, Any]) -> float | None:
        return float(body.get("n") or 1)

    def parse(self, data: Mapping[str, Any]) -> Reply:
        media, urls, revised = [], [], []
        suffix = str(data.get("output_format") or "png")
        for entry in _data_list(data):
            if not isinstance(entry, dict):
                raise MalformedReply("an image entry is not an object")
            if entry.get("b64_json"):
                if not isinstance(entry["b64_json"], str):
                    raise MalformedReply("an image's b64_json is not text")
                try:
                    media.append((suffix, base64.b64decode(entry["b64_json"])))
                except (ValueError, binascii.Error):
                    raise MalformedReply("an image is not valid base64") from None
            elif entry.get("url"):
                urls.append(entry["url"])
            else:
                raise MalformedReply("an image entry has neither url nor b64_json")
            if entry.get("revised_prompt"):
                revised.append(entry["revised_prompt"])
        usage = _usage(data)
        output = (urls[0] if len(urls) == 1 else urls) if urls else None
        completion = _count(usage, "output_tokens")
        billed = billed_of(data, usage, RESPONSES_USAGE)
        if not billed.image_out:  # an image model's output is the image, unless its details say more
            billed = replace(billed, image_out=completion or 0)
        return Reply(
            output=output,
            media=tuple(media),
            units=float(len(media) + len(urls)),
            prompt_tokens=_count(usage, "input_tokens"),
            completion_tokens=completion,
            details={"revised_prompt": revised} if revised else None,
            billed=billed,
        )


class Speech(TaskType):
    name = "speech"
    endpoint = "/audio/speech"
    text_field = "text"
    options = ("voice", "format", "speed")
    billing = "characters"
    chat_family = False
    default_model = "tts-1"

    def body(self, item: Mapping[str, Any], options: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
        body = {"model": params["model"], "input": self.text(item, options), "voice": options.get("voice") or "alloy"}
        return _passthrough(body, options, ("format", "speed"), params, rename={"format": "response_format"})

    def units(self, body: Mapping[str, Any]) -> float | None:
        return float(len(body["input"]))

    def parse(self, data: Mapping[str, Any]) -> Reply:
        audio_bytes = data.get("_binary")
        if not isinstance(audio_bytes, bytes) or not audio_bytes:
            raise MalformedReply("the answer holds no audio")
        content_type = str(data.get("_content_type", "")).split(";")[0].strip()
        suffix = _AUDIO_SUFFIXES.get(content_type, "mp3")
        seconds = audio.seconds_of(audio_bytes)  # what models billed by audio tokens bill
        billed = PLAIN if seconds is None else Billed(audio_seconds=seconds)
        return Reply(output=None, media=((suffix, audio_bytes),), billed=billed)


_AUDIO_SUFFIXES = {
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/opus": "opus",
    "audio/ogg": "opus",
    "audio/aac": "aac",
    "audio/flac": "flac",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/pcm": "pcm",
    "audio/l16": "pcm",
}


class Transcription(TaskType):
    name = "transcription"
    endpoint = "/audio/transcriptions"
    options = ("language", "prompt", "response_format")
    billing = "minutes"
    chat_family = False
    default_model = "whisper-1"
    file_field = "file"

    def body(self, item: Mapping[str, Any], options: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
        return _passthrough({"model": params["model"]}, options, self.options, params)

    def parse(self, data: Mapping[str, Any]) -> Reply:
        text = data.get("text")
        if not isinstance(text, str):
            raise MalformedReply("the transcription has no text")
        usage = _usage(data)
        duration = data.get("duration")
        if duration is None and usage.get("type") == "duration":  # whisper's usage: the seconds billed
            duration = usage.get("seconds")
        if duration is not None and (
            isinstance(duration, bool) or not isinstance(duration, (int, float)) or not 0 <= duration < float("inf")
        ):
            raise MalformedReply(f"duration is {duration!r}, not a length in seconds")
        details = {k: data[k] for k in ("language", "duration") if k in data} or None
        prompt = _count(usage, "input_tokens")
        # gpt-4o-transcribe's usage names its details `input_token_details`; what they do not tell
        # apart is audio, the dearer kind
        told = _details(usage, "input_token_details") or _details(usage, "input_tokens_details")
        heard = _count(told, "audio_tokens", "usage.input_token_details")
        return Reply(
            output=text,
            units=None if duration is None else float(duration) / 60,
            prompt_tokens=prompt,
            completion_tokens=_count(usage, "output_tokens"),
            details=details,
            billed=Billed(audio_in=(prompt or 0) if heard is None else heard) if prompt else PLAIN,
        )


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
