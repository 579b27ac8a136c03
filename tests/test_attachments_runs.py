"""Whole runs of items with attached files against the mock server, online and in batch mode. The
job side (images: in a job file) is another part's: here the job's requests gain image parts and
their attachments on the way out of jobs.requests, as that part will build them. Batch input lines
carry the files inline as data URLs, written a chunk at a time; files split by the API's byte limit
as well as its line limit, and a line too large for any file fails its item alone."""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import os
import tracemalloc
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import SECRET, chat_job, faults
from PIL import Image

from batchgpt import jobs
from batchgpt.attachments import Attachment, marker
from batchgpt.batch import EXIT_SUBMITTED, submit
from batchgpt.batch import files as batchfiles
from batchgpt.encoded import Body, Encodings
from batchgpt.mediainfo import image_info
from batchgpt.mock import MockServer
from batchgpt.records import Request, dump

MB = 10**6


def noise(path: Path, size: int) -> Path:
    """A file of `size` bytes that starts as a real PNG does (its content is the sender's no matter)."""
    header = Path(path).with_suffix(".head.png")
    Image.new("RGB", (8, 8)).save(header, format="PNG")
    head = header.read_bytes()
    path.write_bytes(head + os.urandom(max(0, size - len(head))))
    return path


def attach(request: Request, paths: list[Path], sizes: dict[Path, int] | None = None) -> Request:
    """The request with each file as an image part of its user message (a data URL holding its
    marker), as the job side builds one; `sizes` overrides what the job's check saw."""
    body = dict(request.body)
    said = body["messages"][-1]["content"]
    parts: list[dict[str, Any]] = [{"type": "text", "text": said}]
    parts += [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{marker(n)}"}} for n in range(len(paths))
    ]
    body["messages"] = [*body["messages"][:-1], {"role": "user", "content": parts}]
    attached = tuple(
        Attachment("image", str(p), "image/png", size=(sizes or {}).get(p, p.stat().st_size)) for p in paths
    )
    return replace(request, body=body, payload=dump(body), attachments=attached)


class Chosen(dict[str, list[Path]]):
    """Item id -> the files its request attaches; `sizes`: a file's size as the job's check saw it,
    where it differs from the file's now."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: dict[Path, int] = {}


@pytest.fixture
def images(monkeypatch: pytest.MonkeyPatch) -> Chosen:
    """The files each test's items attach, added to the job's requests as they are built."""
    chosen = Chosen()
    original = jobs.requests

    def requests(job: Any, *args: Any, **kwargs: Any) -> Iterator[Request]:
        for request in original(job, *args, **kwargs):
            paths = chosen.get(request.id)
            yield attach(request, paths, chosen.sizes) if paths else request

    monkeypatch.setattr(jobs, "requests", requests)
    return chosen


def rows(tmp_path: Path) -> dict[str, dict[str, str]]:
    with (tmp_path / "out" / "t.csv").open(encoding="utf-8", newline="") as handle:
        return {row["id"]: row for row in csv.DictReader(handle)}


def described(path: Path) -> str:
    """How the mock describes an image it received: its size, read from the bytes, and their hash."""
    info = image_info(path.read_bytes())
    assert info is not None
    return f"[image {info.width}x{info.height} sha256:{hashlib.sha256(path.read_bytes()).hexdigest()[:12]}]"


def data_url(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


# ---------------------------------------------------------------- online


def test_an_online_run_sends_each_attempt_whole_and_retries_as_ever(cli, server, write_job, tmp_path, images):
    photo = noise(tmp_path / "p.png", 300_000)
    images.update(p0=[photo], p1=[photo])
    faults(server, "500:first=1")  # each body's first attempt fails: each is sent twice
    path = write_job(chat_job(["one", "two"], limits={"concurrency": 1, "timeout": 10, "max_retries": 2}))
    result = cli("run", str(path))
    assert result.exit_code == 0, result.output
    sent = [s for s in server.seen if s.path.endswith("/chat/completions")]
    assert len(sent) == 4
    for seen in sent:
        assert seen.body["messages"][-1]["content"][1]["image_url"]["url"] == data_url(photo)
        assert SECRET not in json.dumps(seen.body)
    found = rows(tmp_path)
    seen = described(photo)  # the mock tells what arrived: the image's size and its bytes' hash
    assert [(r["status"], r["attempts"], r["output"]) for r in found.values()] == [
        ("ok", "2", f"Echo: one {seen}"),
        ("ok", "2", f"Echo: two {seen}"),
    ]


def test_an_online_item_whose_file_changed_fails_at_once_and_the_rest_are_sent(
    cli, server, write_job, tmp_path, images
):
    photo, other = noise(tmp_path / "p.png", 5_000), noise(tmp_path / "q.png", 5_000)
    images.update(p0=[photo], p1=[other])
    images.sizes[photo] = 4_000  # what the job's check saw
    path = write_job(chat_job(["one", "two"], limits={"concurrency": 1, "timeout": 10, "max_retries": 3}))
    result = cli("run", str(path))
    assert result.exit_code != 0
    found = rows(tmp_path)
    assert found["p0"]["status"] == "error" and found["p0"]["attempts"] == "1"  # not retried
    assert str(photo) in found["p0"]["error"] and "changed since it was checked" in found["p0"]["error"]
    assert found["p1"]["status"] == "ok"
    assert len([s for s in server.seen if s.path.endswith("/chat/completions")]) == 1


# ---------------------------------------------------------------- batch mode


def uploads(server: MockServer) -> list[list[dict[str, Any]]]:
    found = [f for f in server.batch.files.values() if f.purpose == "batch"]
    return [[json.loads(line) for line in f.data.splitlines()] for f in found]


def test_batch_lines_carry_files_inline_and_files_split_by_bytes(cli, server, write_job, tmp_path, images, monkeypatch):
    monkeypatch.setattr(batchfiles, "MAX_BYTES", 3 * MB)  # the API's 200 MB, made small
    photos = [noise(tmp_path / f"p{n}.png", MB) for n in range(5)]  # lines of 1.33 MB: two a file
    huge = noise(tmp_path / "huge.png", 3 * MB)  # a line of 4 MB: past any file
    images.update({f"p{n}": [photos[n]] for n in range(5)}, p5=[huge])
    path = write_job(chat_job([f"say {n}" for n in range(6)], mode="batch"))
    server.config.batch_delay = 3600
    result = cli("run", str(path))
    assert result.exit_code == EXIT_SUBMITTED, result.output
    files = uploads(server)
    assert [[line["custom_id"] for line in lines] for lines in files] == [["p0", "p1"], ["p2", "p3"], ["p4"]]
    for lines in files:
        for line in lines:
            n = int(line["custom_id"][1:])
            assert line["body"]["messages"][-1]["content"][1]["image_url"]["url"] == data_url(photos[n])
    assert all(len(f.data) <= 3 * MB for f in server.batch.files.values())
    assert SECRET.encode() not in b"".join(f.data for f in server.batch.files.values())
    assert not list((tmp_path / ".batchgpt").rglob("*.jsonl"))  # the files written were removed once sent
    assert "p5: its line in a batch input file would be 4.0 MB" in result.output
    assert "limit of 3 MB a file" in result.output and "1 failed" in result.output


def test_a_line_too_large_for_any_file_is_an_error_row_naming_the_item_and_the_limit(
    cli, server, write_job, tmp_path, images, monkeypatch
):
    monkeypatch.setattr(batchfiles, "MAX_BYTES", 2 * MB)
    small, huge = noise(tmp_path / "s.png", 10_000), noise(tmp_path / "h.png", 2 * MB)
    images.update(p0=[small], p1=[huge])
    path = write_job(chat_job(["fits", "too big"], mode="batch"))
    first = cli("run", str(path))
    assert first.exit_code == EXIT_SUBMITTED, first.output
    assert [[line["custom_id"] for line in lines] for lines in uploads(server)] == [["p0"]]
    for batch in server.batch.batches.values():
        batch.created -= 3600
    collected = cli("run", str(path))
    found = rows(tmp_path)
    assert found["p0"]["status"] == "ok" and found["p0"]["output"] == f"Echo: fits {described(small)}"
    error = found["p1"]["error"]
    assert found["p1"]["status"] == "error" and "2.7 MB" in error and "limit of 2 MB a file" in error, error
    assert collected.exit_code != 0  # an item failed, and the run says so
    again = cli("run", str(path))  # a failure of the item, not of the run: no rerun sends it
    assert len(uploads(server)) == 1, again.output


def test_the_dry_run_plans_files_by_bytes_with_attachments_inline(cli, write_job, tmp_path, images, monkeypatch):
    monkeypatch.setattr(batchfiles, "MAX_BYTES", 3 * MB)
    photos = [noise(tmp_path / f"p{n}.png", MB) for n in range(4)]
    images.update({f"p{n}": [photos[n]] for n in range(4)}, p4=[noise(tmp_path / "huge.png", 3 * MB)])
    path = write_job(chat_job([f"say {n}" for n in range(5)], mode="batch"))
    result = cli("run", str(path), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "2 files for the Batch API" in result.output
    assert "p4: its line in a batch input file would be 4.0 MB" in result.output


class CutOne(Encodings):
    """Encodings that cut item p1's file in half just after it is checked: changed mid-line."""

    def body(self, payload: bytes, attachments: Any, item: str = "") -> Body:
        body = super().body(payload, attachments, item)
        if item == "p1":
            path = Path(attachments[0].source)
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        return body


def test_a_file_that_changes_while_its_line_is_written_takes_the_line_back(
    cli, server, write_job, tmp_path, images, monkeypatch
):
    monkeypatch.setattr(submit, "Encodings", CutOne)
    photos = [noise(tmp_path / f"p{n}.png", 2 * MB) for n in range(3)]  # several chunks: cut part way
    images.update({f"p{n}": [photos[n]] for n in range(3)})
    path = write_job(chat_job(["a", "b", "c"], mode="batch"))
    server.config.batch_delay = 3600
    result = cli("run", str(path))
    assert result.exit_code == EXIT_SUBMITTED, result.output
    [lines] = uploads(server)  # every line whole JSON (json.loads above), the cut one gone
    assert [line["custom_id"] for line in lines] == ["p0", "p2"]
    assert lines[1]["body"]["messages"][-1]["content"][1]["image_url"]["url"] == data_url(photos[2])
    assert "p1" in result.output and "changed since it was checked" in result.output


def test_a_line_is_written_in_memory_bounded_by_a_few_chunks(tmp_path: Path) -> None:
    big = noise(tmp_path / "big.png", 20 * MB)
    payload = dump({"custom_id": "a", "body": {"url": f"data:image/png;base64,{marker(0)}"}}) + b"\n"
    attached = (Attachment("image", str(big), "image/png", size=20 * MB),)
    part = submit._PartFile(tmp_path / "part.jsonl")
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        part.write(Encodings().body(payload, attached, "a"))
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    written = part.close().read_bytes()
    assert written == b"".join(Encodings().body(payload, attached).chunks())
    assert peak < 4 * 2**20, f"{peak / 2**20:.1f} MiB"  # the line is 26.7 MB
