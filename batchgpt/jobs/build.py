"""Request building: each item of an accepted job as the exact request body it sends, and its hash.

The hash names what is sent (endpoint, body, and the bytes of an uploaded file), so a resumed run
knows which results still stand.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from batchgpt import structured
from batchgpt.attachments import Attachment
from batchgpt.audio import file_minutes
from batchgpt.errors import JobError, Problem
from batchgpt.records import Request, dump
from batchgpt.schema import pointer

__all__ = ["build_request", "dump", "requests"]
from batchgpt.tasks import TASKS, Conversation

from .inputs import attachments as attachments_of
from .inputs import digest as digest_of
from .inputs import wants_inputs
from .items import ItemCheck, walk
from .job import Item, Job, Task, merge_params
from .span import WHOLE, Span


def requests(
    job: Job, check: ItemCheck | None = None, span: Span = WHOLE, *, sendable: bool = True
) -> Iterator[Request]:
    """The job's requests in input order: of a job `load` accepted, or, with `check`, of one `read`
    returned, each item checked as it comes and only the sound ones built (the caller raises the
    problems at the end). A conversation's turns take a place each (`seq`), so results list them
    in order. `span`: only the items in it. `sendable=False`: bodies only, without
    the payload and hash that sending needs (an estimate's, a tenth of its time)."""
    seq = 0
    for item in walk(job, None if check is None else check.problems, span):
        if check is not None and not check(item):
            if check.problems.full:
                check.stopped = True
                return
            continue
        checked = check.attached[1] if check is not None and check.attached[0] is item else None
        request = build_request(item, seq, sendable, checked)
        seq += max(1, len(request.turns))
        yield request


def turn_request(conversation: Request, n: int, history: list[dict[str, Any]]) -> Request:
    """Turn `n` (from 1) of a conversation: its user message after `history` (the system message,
    and the earlier turns with their answers). Its id is `<item id>#<n>`, its place in the job
    the conversation's plus n - 1."""
    body = {**conversation.body, "messages": [*history, {"role": "user", "content": conversation.turns[n - 1]}]}
    if conversation.attachments:  # the first turn's message carries them in every turn's history
        first = next(m for m in body["messages"] if m.get("role") == "user")
        body["messages"] = [dict(m, content=_first_user(conversation)) if m is first else m for m in body["messages"]]
    payload = dump(body)
    return replace(
        conversation,
        id=f"{conversation.id}#{n}",
        seq=conversation.seq + n - 1,
        body=body,
        payload=payload,
        hash=request_hash(conversation.endpoint, payload, conversation.attachments),
        turns=(),
        turn=n,
    )


def _first_user(conversation: Request) -> Any:
    return next(m["content"] for m in conversation.body["messages"] if m.get("role") == "user")


def request_hash(endpoint: str, payload: bytes, attachments: tuple[Attachment, ...] = ()) -> str:
    """What names a request's exact body: its payload, and each attached file's bytes (a
    payload holds only a marker where they go), so a changed photo is sent again. An upload's
    bytes are added to it where it is built."""
    digest = hashlib.blake2b(endpoint.encode() + b"\0" + payload, digest_size=16)
    _add_files(digest, attachments)
    return digest.hexdigest()


def _add_files(digest: Any, attachments: tuple[Attachment, ...]) -> None:
    for attachment in attachments:
        if attachment.local:
            digest.update(b"\0" + attachment.digest.encode())


def build_request(
    item: Item, seq: int, sendable: bool = True, attached: tuple[Attachment, ...] | None = None
) -> Request:
    """The request for one item, `seq` being its place in the job; without its payload and hash
    (b"" and "") unless `sendable`. `attached`: its attachments, as checking it found them."""
    task, fields = item.task, item.fields
    task_type = TASKS[task.type]
    attachments: tuple[Attachment, ...] = ()
    if "body" in fields:  # a Batch API line: its body is sent exactly as written
        body = dict(fields["body"])
        params: Mapping[str, Any] = {**task.params, **body}
        options: Mapping[str, Any] = {}
        turns: tuple[str, ...] = ()
        schema = None
    else:
        params = merge_params(task.params, fields)
        options = dict(task.options)  # with the item's own, a loop: a comprehension is a call an item
        for key in task_type.options:
            if key in fields:
                options[key] = fields[key]
        body = task_type.body(fields, options, params)
        turns = tuple(task_type.turns(fields, options)) if isinstance(task_type, Conversation) else ()
        attachments = _attachments(item, sendable, attached)
        if attachments:
            task_type.attach(body, attachments)
        schema = item_schema(task, fields)
        if schema is not None:
            name = str(fields.get("schema_name") or task.schema_name)
            body.update(structured.request_field(task_type.endpoint, name, schema))
    payload, digest = b"", None
    if sendable:
        payload = dump(body)
        digest = hashlib.blake2b(task_type.endpoint.encode() + b"\0" + payload, digest_size=16)
        _add_files(digest, attachments)
    files: tuple[tuple[str, Path], ...] = ()
    units, units_note = task_type.units(body), None
    if task_type.file_field:
        path = task.upload_path(fields[task_type.file_field])
        files = ((task_type.file_field, path),)
        if digest is not None:
            digest.update(_file_digest(path))  # a changed recording is sent again
        units, units_note = file_minutes(path)  # a bound, and a note, when its headers do not say
    return Request(
        seq=seq,
        id=item.id,
        task=task.label,
        type=task.type,
        model=str(body.get("model", "")),
        endpoint=task_type.endpoint,
        body=body,
        payload=payload,
        hash="" if digest is None else digest.hexdigest(),
        provider=task.provider,
        max_tokens=body.get("max_tokens") or body.get("max_completion_tokens") or body.get("max_output_tokens"),
        expected_output_tokens=params.get("expected_output_tokens"),
        files=files,
        units=units,
        units_note=units_note,
        pack_size=int(options.get("batch_size") or task_type.pack_size) if isinstance(body.get("input"), str) else 0,
        kept=_kept(task.keep, item),
        reask=task.reask if schema is not None else 0,  # an image's response_format is no schema
        columns=task.columns,
        turns=turns,
        attachments=attachments,
    )


def _attachments(item: Item, sendable: bool, attached: tuple[Attachment, ...] | None) -> tuple[Attachment, ...]:
    """The item's attachments, with their digests when it is to be sent. A file that went
    missing since the job was checked stops the build, as the check would have."""
    if attached is None:
        if not wants_inputs(item.task, item.fields):
            return ()
        attached, found = attachments_of(item, sendable)
        if found:
            raise JobError(
                [Problem(item.file, item.line, f"item {item.id!r}: {f.message}", pointer(f.where)) for f in found]
            )
        return attached
    return tuple(replace(a, digest=digest_of(a)) if sendable and a.local else a for a in attached)


def item_schema(task: Task, fields: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The schema an item's answer must match: its own (inline, or a .json file relative to the
    job file), else its task's."""
    own = fields.get("schema")
    if own is None:
        return task.output_schema
    found = structured.schema_file(str(task.upload_path(own))) if isinstance(own, str) else own
    return found if isinstance(found, dict) else None


def _kept(keep: tuple[str, ...] | None, item: Item) -> tuple[tuple[str, Any], ...]:
    """The item fields `keep:` copies into the result row (all but the id, for `keep: all`)."""
    if keep is None:
        return ()
    if not keep:
        return tuple((k, v) for k, v in item.fields.items() if k != "id")
    return tuple((name, item.fields.get(name)) for name in keep)


def _file_digest(path: Path) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.digest()
