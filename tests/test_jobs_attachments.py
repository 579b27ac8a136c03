"""Job inputs: images, files and audio on chat-family and response tasks, a folder of files as
items (a glob), a CSV column of paths; each request's body carries them as the API's parts, and
its hash covers their bytes."""

from __future__ import annotations

import glob
import os
from pathlib import Path

import pytest
import yaml
from inputfiles import b64, data_url, image, pdf, png_bytes, sent, wav

from batchgpt.jobs import ItemCheck, load, read, requests, turn_request
from batchgpt.jobs import inputs as job_inputs


def write(tmp_path: Path, job: dict, name: str = "job.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(job, sort_keys=False), encoding="utf-8")
    return path


def built(path: Path | dict) -> list:
    return list(requests(load(path)))


def chat(items: list | None, **task: object) -> dict:
    listed = {} if items is None else {"items": items}
    return {"defaults": {"model": "gpt-4o"}, "tasks": [{"type": "chat", **task, **listed}]}


# ----------------------------------------------------------------------------- bodies


def test_a_chat_prompt_carries_its_image_pdf_and_recording_as_parts_after_its_text(tmp_path):
    photo, doc, voice = image(tmp_path / "a.png"), pdf(tmp_path / "doc.pdf"), wav(tmp_path / "v.wav")
    job = chat(
        [{"id": "x", "prompt": "what is this?", "images": "a.png", "files": ["doc.pdf"], "audio": "v.wav"}],
        detail="low",
        system="be brief",
    )
    (request,) = built(write(tmp_path, job))
    assert [a.kind for a in request.attachments] == ["image", "file", "audio"]
    photo_in, doc_in, voice_in = request.attachments
    assert (photo_in.mime, photo_in.width, photo_in.height, photo_in.detail) == ("image/png", 64, 48, "low")
    assert (doc_in.mime, doc_in.pages, voice_in.mime, voice_in.seconds) == ("application/pdf", 2, "audio/wav", 1.0)
    assert photo_in.source == str(photo) and photo_in.size == photo.stat().st_size
    assert sent(request)["messages"] == [
        {"role": "system", "content": "be brief"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{b64(photo)}", "detail": "low"}},
                {
                    "type": "file",
                    "file": {"filename": "doc.pdf", "file_data": f"data:application/pdf;base64,{b64(doc)}"},
                },
                {"type": "input_audio", "input_audio": {"data": b64(voice), "format": "wav"}},
            ],
        },
    ]
    assert b64(photo).encode() not in request.payload  # a payload never holds a file's bytes


def test_urls_are_sent_as_written_and_an_items_own_inputs_replace_its_tasks(tmp_path):
    image(tmp_path / "logo.png")
    inline = data_url("image/png", png_bytes((3, 2)))
    job = chat(
        [
            {"id": "own", "prompt": "p", "images": ["https://example.com/cat.jpg", inline]},
            {"id": "task", "prompt": "q"},
        ],
        images="logo.png",
    )
    own, task = built(write(tmp_path, job))
    parts = sent(own)["messages"][-1]["content"]
    assert parts[1:] == [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "auto"}},
        {"type": "image_url", "image_url": {"url": inline, "detail": "auto"}},
    ]
    assert (own.attachments[1].width, own.attachments[1].height, own.attachments[1].mime) == (3, 2, "image/png")
    assert [a.source for a in task.attachments] == [str(tmp_path / "logo.png")]


def test_a_response_input_gets_input_text_image_and_file_parts(tmp_path):
    photo, doc = image(tmp_path / "a.jpg", fmt="JPEG"), pdf(tmp_path / "doc.pdf")
    (tmp_path / "notes.md").write_text("# notes\n", encoding="utf-8")
    job = {
        "defaults": {"model": "gpt-4o"},
        "tasks": [
            {
                "type": "response",
                "detail": "high",
                "items": [
                    {
                        "id": "r",
                        "input": "summarise",
                        "images": "a.jpg",
                        "files": ["doc.pdf", "notes.md", "https://example.com/sheet.xlsx"],
                    },
                    {
                        "id": "m",
                        "input": [{"role": "user", "content": "first"}, {"role": "assistant", "content": "ok"}],
                    },
                ],
                "images": "a.jpg",
            }
        ],
    }
    first, listed = built(write(tmp_path, job))
    assert sent(first)["input"] == [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "summarise"},
                {"type": "input_image", "image_url": f"data:image/jpeg;base64,{b64(photo)}", "detail": "high"},
                {"type": "input_file", "filename": "doc.pdf", "file_data": f"data:application/pdf;base64,{b64(doc)}"},
                {
                    "type": "input_file",
                    "filename": "notes.md",
                    "file_data": f"data:text/markdown;base64,{b64(tmp_path / 'notes.md')}",
                },
                {"type": "input_file", "file_url": "https://example.com/sheet.xlsx"},
            ],
        }
    ]
    # a list of messages: the parts join its last user message
    assert sent(listed)["input"][0]["content"] == [
        {"type": "input_text", "text": "first"},
        {"type": "input_image", "image_url": f"data:image/jpeg;base64,{b64(photo)}", "detail": "high"},
    ]


def test_a_dialogue_attaches_to_its_last_user_message_and_a_conversation_to_its_first_turn(tmp_path):
    photo = image(tmp_path / "a.webp", fmt="WEBP")
    job = {
        "defaults": {"model": "gpt-4o"},
        "tasks": [
            {
                "type": "dialogue",
                "images": "a.webp",
                "items": [
                    {
                        "id": "d",
                        "messages": [
                            {"role": "user", "content": "one"},
                            {"role": "assistant", "content": "two"},
                            {"role": "user", "content": "three"},
                        ],
                    }
                ],
            },
            {
                "type": "conversation",
                "system": "s",
                "images": "a.webp",
                "items": [{"id": "c", "turns": ["see", "more"]}],
            },
        ],
    }
    dialogue, conversation = built(write(tmp_path, job))
    part = {"type": "image_url", "image_url": {"url": f"data:image/webp;base64,{b64(photo)}", "detail": "auto"}}
    messages = sent(dialogue)["messages"]
    assert messages[0]["content"] == "one" and messages[2]["content"] == [{"type": "text", "text": "three"}, part]
    # every turn repeats the first turn's message, its image with it
    first = turn_request(conversation, 1, [{"role": "system", "content": "s"}])
    second = turn_request(
        conversation,
        2,
        [{"role": "system", "content": "s"}, {"role": "user", "content": "see"}, {"role": "assistant", "content": "A"}],
    )
    seeing = {"role": "user", "content": [{"type": "text", "text": "see"}, part]}
    assert sent(first)["messages"] == [{"role": "system", "content": "s"}, seeing]
    assert sent(second)["messages"] == [
        {"role": "system", "content": "s"},
        seeing,
        {"role": "assistant", "content": "A"},
        {"role": "user", "content": "more"},
    ]
    photo.write_bytes(photo.read_bytes() + b"\0")  # the same image, other bytes: every turn is sent again
    changed = built(write(tmp_path, job))[1]
    assert turn_request(changed, 2, second.body["messages"][:3]).hash != second.hash


def test_a_text_only_job_sends_and_hashes_exactly_as_before_inputs_existed(tmp_path):
    """The hashes of requests stored by earlier versions: none is sent again after an upgrade."""
    job = {
        "defaults": {"model": "gpt-4o"},
        "tasks": [
            {"type": "chat", "system": "be brief", "items": [{"id": "c", "prompt": "hi", "temperature": 0.5}]},
            {"type": "translate", "target_lang": "fr", "items": [{"id": "t", "text": "hello"}]},
            {"type": "dialogue", "items": [{"id": "d", "messages": [{"role": "user", "content": "x"}]}]},
            {"type": "code", "language": "python", "items": [{"id": "k", "description": "sort"}]},
            {
                "type": "response",
                "instructions": "be brief",
                "items": [{"id": "r", "input": "hi"}, {"id": "r2", "input": [{"role": "user", "content": "yo"}]}],
            },
            {"type": "conversation", "system": "s", "items": [{"id": "v", "turns": ["a", "b"]}]},
        ],
    }
    found = {r.id: (r.hash, r.payload) for r in requests(load(job))}
    history = [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "A"},
    ]
    turn = turn_request(next(r for r in requests(load(job)) if r.id == "v"), 2, history)
    assert {k: h for k, (h, _) in found.items()} | {turn.id: turn.hash} == {  # as computed before issue 26
        "c": "d8d3a8033b4b9de81ec9d7339471d74b",
        "t": "faca9a31eb85e393effbd4c69e8451c2",
        "d": "87c1524cf06fe332daa60ebff9664521",
        "k": "d8e887b294f1317cb6c5cc027c95308b",
        "r": "d0850b6bbb3f7631b08ce8930a41e188",
        "r2": "6c5b8698e53d7d7e24b059cde46c63d6",
        "v": "ee0e0b2e0b4aa93614fd4b6efe181784",
        "v#2": "078de727618dbd69165addb406679639",
    }
    assert found["c"][1] == (
        b'{"model":"gpt-4o","messages":[{"role":"system","content":"be brief"},'
        b'{"role":"user","content":"hi"}],"temperature":0.5}'
    )
    assert found["r"][1] == b'{"model":"gpt-4o","input":"hi","store":false,"instructions":"be brief"}'
    assert all(not r.attachments for r in requests(load(job)))


# ----------------------------------------------------------------------------- hashes


def test_the_hash_changes_with_an_attached_files_bytes_and_with_nothing_else(tmp_path):
    photo = image(tmp_path / "a.png")
    path = write(tmp_path, chat([{"id": "x", "prompt": "p", "images": "a.png"}]))
    before = built(path)[0].hash
    photo.write_bytes(photo.read_bytes())  # written again, the same bytes: a new mtime only
    os.utime(photo, (1, 1))
    assert built(path)[0].hash == before
    image(photo, size=(64, 49))  # other bytes, the same name
    assert built(path)[0].hash != before
    after = built(path)[0].hash
    photo.rename(tmp_path / "b.png")  # the same bytes under another name: an image's part names none
    assert built(write(tmp_path, chat([{"id": "x", "prompt": "p", "images": "b.png"}])))[0].hash == after


def test_the_dry_run_reads_no_file_whole(tmp_path, monkeypatch):
    image(tmp_path / "a.png")
    big = tmp_path / "big.png"  # a valid header and 40 MB of sparse file after it
    big.write_bytes(png_bytes())
    with big.open("r+b") as handle:
        handle.truncate(40_000_000)
    job, problems = read(write(tmp_path, chat([{"id": "x", "prompt": "p", "images": ["a.png", "big.png"]}])))
    assert job is not None

    def whole(*args: object) -> str:
        raise AssertionError("a dry run read a file whole")

    monkeypatch.setattr(job_inputs, "_digest", whole)
    (request,) = requests(job, ItemCheck(problems), sendable=False)
    assert not problems.count and [a.digest for a in request.attachments] == ["", ""]
    assert request.attachments[1].size == 40_000_000 and request.attachments[1].width == 10
    with pytest.raises(AssertionError, match="whole"):
        list(requests(job, sendable=True))  # a sendable request's hash needs them


# ----------------------------------------------------------------------------- a folder of files


def test_a_glob_makes_each_file_an_item_in_path_order_attached_by_its_type(tmp_path):
    image(tmp_path / "photos" / "b.jpg", fmt="JPEG")
    image(tmp_path / "photos" / "a.png")
    pdf(tmp_path / "photos" / "c.pdf")
    (tmp_path / "photos" / "sub.png").mkdir()  # a folder the glob matches is no item
    job = {
        "defaults": {"model": "gpt-4o"},
        "tasks": [{"type": "chat", "template": "Describe {name} ({path})", "items_from": "photos/*", "detail": "low"}],
    }
    found = built(write(tmp_path, job))
    assert [r.id for r in found] == ["photos/a.png", "photos/b.jpg", "photos/c.pdf"]
    assert [(a.kind, a.mime) for r in found for a in r.attachments] == [
        ("image", "image/png"),
        ("image", "image/jpeg"),
        ("file", "application/pdf"),
    ]
    parts = sent(found[1])["messages"][0]["content"]
    assert parts[0] == {"type": "text", "text": "Describe b (photos/b.jpg)"}
    assert parts[1]["image_url"] == {
        "url": f"data:image/jpeg;base64,{b64(tmp_path / 'photos' / 'b.jpg')}",
        "detail": "low",
    }


@pytest.mark.parametrize("pattern", ["p/*.png", "p/**/*.png", "p/[ab].png"])
def test_a_glob_matches_files_as_pythons_glob_does(tmp_path, pattern):
    """The usual pattern (magic in its last part) is matched by a scan of its folder: the same
    files, hidden ones left out, as the glob module's own matching finds."""
    for name in ("a.png", "b.png", ".hidden.png", "c.txt", "deep/d.png"):
        image(tmp_path / "p" / name)
    job = {"defaults": {"model": "gpt-4o"}, "tasks": [{"type": "chat", "template": "{name}", "items_from": pattern}]}
    expected = sorted(p for p in glob.glob(pattern, root_dir=tmp_path, recursive=True) if (tmp_path / p).is_file())
    assert [r.id for r in built(write(tmp_path, job))] == expected
    assert ".hidden" not in " ".join(expected) and len(expected) >= 2


def test_a_glob_item_is_named_by_the_tasks_id_template_when_it_has_one(tmp_path):
    image(tmp_path / "p" / "x1.png")
    job = {
        "defaults": {"model": "gpt-4o"},
        "tasks": [{"type": "response", "template": "{name}", "items_from": "p/*.png", "id": "photo-{name}"}],
    }
    (request,) = built(write(tmp_path, job))
    assert request.id == "photo-x1" and sent(request)["input"][0]["content"][1]["type"] == "input_image"


# ----------------------------------------------------------------------------- a column of paths


def test_a_csv_column_names_each_rows_image_relative_to_the_job_file(tmp_path, monkeypatch):
    folder = tmp_path / "job"
    image(folder / "img" / "one.png", size=(30, 20))
    (folder / "rows.csv").write_text(
        "id,photo,question\nr1,img/one.png,what?\nr2,https://example.com/two.png,why?\n", encoding="utf-8"
    )
    path = write(folder, chat(None, template="{question}", images="{photo}", items_from="rows.csv"))
    monkeypatch.chdir(tmp_path)  # not the job's folder
    one, two = built(path)
    assert (one.attachments[0].source, one.attachments[0].width) == (str(folder / "img" / "one.png"), 30)
    assert sent(one)["messages"][0]["content"][0] == {"type": "text", "text": "what?"}
    assert two.attachments[0].source == "https://example.com/two.png"


def test_a_jsonl_field_may_hold_several_images(tmp_path):
    image(tmp_path / "a.png")
    image(tmp_path / "b.png")
    lines = tmp_path / "lines.jsonl"
    lines.write_text(
        '{"type": "chat", "model": "gpt-4o", "id": "l", "prompt": "compare", "images": ["a.png", "b.png"]}\n',
        encoding="utf-8",
    )
    (request,) = built(lines)
    assert [Path(a.source).name for a in request.attachments] == ["a.png", "b.png"]
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"id": "j", "pair": ["a.png", "b.png"], "q": "compare"}\n', encoding="utf-8")
    job = chat(None, template="{q}", images="{pair}", items_from="rows.jsonl")
    (request,) = built(write(tmp_path, job))
    assert [Path(a.source).name for a in request.attachments] == ["a.png", "b.png"]
