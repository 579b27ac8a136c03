"""An item's attached inputs (`images`, `files`, `audio`, a globbed file): where the job names
them, what each one is, and whether the endpoint takes them, all before anything is sent.

A task's inputs apply to each of its items; an item's own replace its task's, key by key. A
value is a path relative to the job file, an http(s) URL, a `data:` URL, or a `{field}` template
filled from the item (a CSV column of paths; a JSONL field holding a list of them). A local file
is known by its bytes' first ones (sniff.py), measured once per file and state (`_sniffed`), and
read whole only for its digest, which a sendable request's hash covers (`digest`).

Each problem is (where, message, whether it is the task's): a task's input that is wrong for
every item is reported once, at the task (items.ItemCheck).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import os
import re
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from batchgpt.attachments import Attachment
from batchgpt.schema import JsonPath
from batchgpt.tasks import fill, template_fields
from batchgpt.words import count

from .job import Item, Task
from .problems import Problems, reason
from .sniff import DOCUMENT_TYPES, PDF, UNKNOWN, Sniffed, sniff_file, sniff_head

INPUT_KEYS = ("images", "files", "audio")
KINDS = {"images": "image", "files": "file", "audio": "audio"}
INPUT_TASKS = frozenset({"chat", "translate", "dialogue", "code", "conversation", "response"})
AUDIO_TASKS = INPUT_TASKS - {"response"}  # input_audio is a Chat Completions part only
# The API's limits on one request (facts, section 14), in decimal megabytes: the stricter reading
# of "50 MB", so what passes here passes there.
MAX_IMAGES = 500
MAX_IMAGE_BYTES = 50_000_000
MAX_FILE_BYTES = 32_000_000
MAX_PAGES = 100
_ORDER = {"image": 0, "file": 1, "audio": 2}
_IMAGES = "PNG, JPEG, WEBP or a GIF that is not animated"
_DATA_URL = re.compile(r"data:([A-Za-z0-9.+-]+/[A-Za-z0-9.+-]+)((?:;[A-Za-z0-9.+-]+=[^;,]*)*);base64,", re.ASCII)
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


@dataclass(frozen=True)
class Found:
    """A problem with an item's inputs: where (a JSON path), what, and whether the task's."""

    where: JsonPath
    message: str
    task_level: bool = False
    lacks: str | None = None  # the field the task's template names that the item lacks (gaps.py)


class _Given(NamedTuple):  # a NamedTuple: made for each source of each of a million items
    key: str  # images | files | audio | items_from (a globbed file, attached by its type)
    where: JsonPath
    source: str
    task_level: bool
    place: int | None = None  # its place in a list of sources


def wants_inputs(task: Task, fields: Mapping[str, Any]) -> bool:
    """Whether the item attaches anything (the test every text-only item pays: a few lookups)."""
    return task.items_glob is not None or any(k in fields or k in task.options for k in INPUT_KEYS)


def attachments(item: Item, sendable: bool = False) -> tuple[tuple[Attachment, ...], list[Found]]:
    """The item's attachments in their request's order (images, files, audio, each as listed; a
    globbed file first), and the problems found; `sendable`: with each local file's digest."""
    found: list[Found] = []
    attached: list[Attachment] = []
    task, fields = item.task, item.fields
    detail = str(fields.get("detail") or task.options.get("detail") or "auto")
    for given in _sources(item, found):
        made = _resolve(given, task, detail)
        if isinstance(made, str):
            found.append(Found(given.where, f"{_named(given)}: {made}", given.task_level))
        else:
            attached.append(replace(made, digest=digest(made)) if sendable and made.local else made)
    if len(attached) > 1:
        attached.sort(key=lambda a: _ORDER[a.kind])  # stable: a globbed file first of its kind
    if not found:
        found += [Found(where, message) for where, message in _over_limits(item, attached)]
    return tuple(attached), found


def checked_inputs(
    item: Item, problems: Problems, line: int | None, said: set[tuple[JsonPath, str]]
) -> tuple[Attachment, ...]:
    """The item's attachments, each problem with them reported: the item's at its line, naming
    it; its task's at the task's line, once (`said` holds those reported)."""
    attached, found = attachments(item)
    for each in found:
        if each.lacks is not None:
            problems.lacks(item, each.where, each.lacks, line)
        elif not each.task_level:
            at = problems.line_of(each.where) if item.path else line
            problems.add(f"item {item.id!r}: {each.message}", file=item.file, line=at, path=each.where)
        elif (each.where, each.message) not in said:
            said.add((each.where, each.message))
            problems.at(each.where, each.message)
    return attached


def _named(given: _Given) -> str:
    return given.key if given.place is None else f"{given.key}[{given.place}]"


def _sources(item: Item, found: list[Found]) -> Iterator[_Given]:
    task, fields = item.task, item.fields
    if task.items_glob is not None and "path" in fields:
        yield _Given("items_from", item.path, str(fields["path"]), False)
    for key in INPUT_KEYS:
        own = key in fields
        value = fields[key] if own else task.options.get(key)
        if value is None:
            continue
        base = (*item.path, key) if own else ("tasks", task.index, key)
        values = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        for n, text in enumerate(values):
            where = base if isinstance(value, str) else (*base, n)
            if isinstance(text, str):  # else the schema says what it should be
                index = None if isinstance(value, str) else n
                yield from _filled(_Given(key, where, text, not own, index), item, found)


def _filled(given: _Given, item: Item, found: list[Found]) -> Iterator[_Given]:
    """The source with its {fields} filled from the item; a field holding a list, all of them. A
    task's template filled is the item's own: said at the item's field."""
    text, fields = given.source, item.fields
    if "{" not in text:
        yield given
        return
    names = _template(text)
    if isinstance(names, str):
        found.append(Found(given.where, f"{_named(given)}: {names}", given.task_level))
        return
    missing = [name for name in names if fields.get(name) in (None, "")]
    if missing and given.task_level:  # one problem per field, at the task's template (gaps.py)
        found.extend(Found(given.where, "", True, name) for name in missing)
        return
    if missing:
        needs = ", ".join(repr(m) for m in missing)
        found.append(Found(given.where, f"{_named(given)}: {text!r} needs {needs}, which this item lacks"))
        return
    where = (*item.path, names[0]) if given.task_level else given.where
    value = fields[names[0]] if len(names) == 1 and len(text) == len(names[0]) + 2 else None  # "{field}"
    if isinstance(value, list):  # a JSONL field with several paths or URLs
        for n, each in enumerate(value):
            yield _Given(given.key, (*where, n), str(each), False, n if given.place is None else given.place)
        return
    yield _Given(given.key, where, fill(text, fields) if value is None else str(value), False, given.place)


@functools.lru_cache(maxsize=256)
def _template(text: str) -> tuple[str, ...] | str:
    """A source's {fields}, or why it is no template."""
    try:
        return tuple(template_fields(text))
    except ValueError as exc:
        return str(exc)


def _resolve(given: _Given, task: Task, detail: str) -> Attachment | str:
    """The attachment a source names, or why it cannot be sent."""
    source = given.source
    if source.startswith(("http://", "https://")):
        return _url(given, task, detail)
    if source.startswith("data:"):
        return _data_url(given, task, detail)
    path = os.path.join(_folder(str(task.base_dir)), source)  # pathlib's Path costs 10 µs a file
    try:
        status = os.stat(path)
        if stat.S_ISDIR(status.st_mode):
            return f"{source!r} is a folder, not a file"
        sniffed = _sniffed(path, status.st_size, status.st_mtime_ns, status.st_ino)
    except FileNotFoundError:
        return f"no such file {source!r} (paths are relative to the job file)"
    except OSError as exc:
        return f"cannot read {source!r}: {reason(exc)}"
    kind = _accepts(given.key, task, sniffed, source)
    if kind.startswith("!"):
        return kind[1:]
    return _attachment(kind, os.path.normpath(path), sniffed, detail, status.st_size)


def _attachment(kind: str, source: str, sniffed: Sniffed, detail: str, size: int | None) -> Attachment:
    image = sniffed.image
    return Attachment(
        kind=kind,
        source=source,
        mime=sniffed.mime,
        detail=detail if kind == "image" else None,
        size=size,
        width=image.width if image else None,
        height=image.height if image else None,
        pages=sniffed.pages,
        seconds=sniffed.seconds,
        digest="" if not source.startswith("data:") else source,
    )


def _accepts(key: str, task: Task, sniffed: Sniffed, source: str) -> str:
    """The kind the file is attached as, or "!" and why the endpoint does not take it."""
    kind = KINDS.get(key) or sniffed.kind or "file"  # a globbed file goes by its type
    what = f"{source!r} is {sniffed.what}"
    if kind == "image":
        if sniffed.kind != "image":
            return f"!{what}, not an image the API takes ({_IMAGES})" + _elsewhere(sniffed, task)
        if sniffed.image is not None and sniffed.image.animated:
            return f"!{what} that is animated: the API takes still images only"
        return kind
    if kind == "audio":
        if task.type not in AUDIO_TASKS:
            return f"!{what}: {task.type} tasks take no audio (input_audio is Chat Completions'): use a chat task"
        return kind if sniffed.kind == "audio" else f"!{what}, not a recording the API takes (WAV or MP3)"
    if sniffed.kind == "image":
        return f"!{what}: attach images under `images`"
    if task.type != "response":
        return (
            kind
            if sniffed.mime == PDF
            else f"!{what}: {task.type} tasks take PDF files only (response tasks take more)"
        )
    return kind if sniffed.mime in DOCUMENT_TYPES else f"!{what}, not a document the Responses API takes"


def _elsewhere(sniffed: Sniffed, task: Task) -> str:
    if sniffed.kind == "file":
        return ": attach documents under `files`"
    return ": attach recordings under `audio`" if sniffed.kind == "audio" and task.type in AUDIO_TASKS else ""


def _url(given: _Given, task: Task, detail: str) -> Attachment | str:
    kind = KINDS.get(given.key, "file")
    if kind == "audio":
        return "input_audio takes a recording's bytes, not a URL: download it and name the file"
    if kind == "file" and task.type != "response":
        return "Chat Completions takes no file by URL: download it and name the file, or use a response task"
    return Attachment(kind, given.source, detail=detail if kind == "image" else None, digest=given.source)


def _data_url(given: _Given, task: Task, detail: str) -> Attachment | str:
    source = given.source
    head = _DATA_URL.match(source)
    data = source[head.end() :] if head else ""
    if head is None or len(data) % 4 or not _BASE64.fullmatch(data):
        return "a malformed data: URL (it must be data:<type>;base64,<base64>)"
    try:
        sniffed = sniff_head(base64.b64decode(data[: 1 << 17]))
    except (binascii.Error, ValueError):
        return "a malformed data: URL (its base64 does not decode)"
    declared = head.group(1).lower()
    if sniffed is UNKNOWN and declared in DOCUMENT_TYPES and declared != PDF:  # text and Office files
        sniffed = Sniffed("file", declared, f"a document ({declared})")
    kind = _accepts(given.key, task, sniffed, "the data: URL")
    if kind.startswith("!"):
        return kind[1:]
    size = len(data) // 4 * 3 - len(data) + len(data.rstrip("="))
    return _attachment(kind, source, sniffed, detail, size)


def _over_limits(item: Item, attached: list[Attachment]) -> Iterator[tuple[JsonPath, str]]:
    """The API's limits on one request's inputs (its images' number and bytes, its files' bytes
    and pages), each said at the item."""
    images = image_bytes = file_bytes = pages = 0
    for each in attached:  # one loop: every item of a million-photo job pays it
        if each.kind == "image":
            images, image_bytes = images + 1, image_bytes + (each.size or 0)
        elif each.kind == "file":
            file_bytes, pages = file_bytes + (each.size or 0), pages + (each.pages or 0)
    if images > MAX_IMAGES:
        yield item.path, f"images: {images:,} images; a request takes at most {MAX_IMAGES}"
    if image_bytes > MAX_IMAGE_BYTES:
        yield item.path, f"images: {_mb(image_bytes)} of images; a request takes at most {_mb(MAX_IMAGE_BYTES)}"
    if file_bytes > MAX_FILE_BYTES:
        yield item.path, f"files: {_mb(file_bytes)} of files; a request takes at most {_mb(MAX_FILE_BYTES)}"
    if pages > MAX_PAGES:
        yield item.path, f"files: {count(pages, 'PDF page')}; a request takes at most {MAX_PAGES}"


def _mb(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"


@functools.lru_cache(maxsize=64)
def _folder(base_dir: str) -> str:
    """The job file's folder, absolute: an attachment's source is an absolute path."""
    return os.path.abspath(base_dir)


@functools.lru_cache(maxsize=4096)
def _sniffed(path: str, size: int, mtime_ns: int, inode: int) -> Sniffed:
    """A file's type and measures, once per file and state: a logo attached to every item is read
    once, and a file changed between two walks is read again."""
    return sniff_file(path)


def digest(attachment: Attachment) -> str:
    """The hash of a local file's bytes (read whole: only for a request that is to be sent)."""
    status = os.stat(attachment.source)
    return _digest(attachment.source, status.st_size, status.st_mtime_ns, status.st_ino)


@functools.lru_cache(maxsize=1024)
def _digest(path: str, size: int, mtime_ns: int, inode: int) -> str:
    hashed = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            hashed.update(chunk)
    return hashed.hexdigest()


def refused_key(task_type: str, key: str, message: str) -> str:
    """The schema's "key 'images' is not allowed here", said for what it is."""
    if key not in (*INPUT_KEYS, "detail") or not message.endswith("is not allowed here"):
        return message
    if key == "audio" and task_type in INPUT_TASKS:
        return f"audio: {task_type} tasks take no audio (input_audio is Chat Completions'): use a chat task"
    takers = ", ".join(sorted(INPUT_TASKS if key != "audio" else AUDIO_TASKS))
    return f"{key}: {task_type} tasks take no attached inputs; {takers} tasks do"
