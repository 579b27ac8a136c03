"""Job inputs checked before anything is sent: each local file exists and can be read, is a type
its endpoint takes, the request fits the API's limits, a data: URL is well formed; each problem
named by file, line, item and field."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest
from audiofiles import mp3
from inputfiles import animated_gif, data_url, image, pdf, png_bytes, wav
from PIL import Image
from test_jobs import problems, write

from batchgpt.jobs import load, requests


def sparse(path: Path, head: bytes, size: int) -> Path:
    """A file of `size` bytes that starts with `head`: its size is real, its bytes mostly holes."""
    path.write_bytes(head)
    with path.open("r+b") as handle:
        handle.truncate(size)
    return path


def chat_job(tmp_path: Path, item: str, task: str = "") -> Path:
    return write(tmp_path, f"defaults: {{model: gpt-4o}}\ntasks:\n  - type: chat\n{task}    items:\n      - {item}\n")


# ----------------------------------------------------------------------------- files


def test_a_missing_file_or_a_folder_is_named_at_its_item_and_field(tmp_path):
    (tmp_path / "photos").mkdir()
    image(tmp_path / "a.png")
    job = chat_job(tmp_path, "{id: a, prompt: p, images: [nope.png, photos, a.png/b.png]}")
    assert problems(job) == [
        f"{job}:5: item 'a': images[0]: no such file 'nope.png' (paths are relative to the job file)"
        " (at /tasks/0/items/0/images/0)",
        f"{job}:5: item 'a': images[1]: 'photos' is a folder, not a file (at /tasks/0/items/0/images/1)",
        f"{job}:5: item 'a': images[2]: cannot read 'a.png/b.png': Not a directory (at /tasks/0/items/0/images/2)",
    ]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_a_file_that_cannot_be_read_is_named(tmp_path):
    locked = image(tmp_path / "a.png")
    locked.chmod(0)
    job = chat_job(tmp_path, "{id: a, prompt: p, images: a.png}")
    assert problems(job) == [
        f"{job}:5: item 'a': images: cannot read 'a.png': Permission denied (at /tasks/0/items/0/images)"
    ]


def test_a_tasks_missing_file_is_said_once_at_the_task(tmp_path):
    job = write(
        tmp_path,
        "defaults: {model: gpt-4o}\ntasks:\n  - type: chat\n    images: logo.png\n"
        "    items: [{prompt: a}, {prompt: b}, {prompt: c}]\n",
    )
    assert problems(job) == [
        f"{job}:4: images: no such file 'logo.png' (paths are relative to the job file) (at /tasks/0/images)"
    ]


def test_what_a_file_is_comes_from_its_bytes_not_its_name(tmp_path):
    image(tmp_path / "really-a-png.jpg")
    pdf(tmp_path / "scan.png")
    job = chat_job(tmp_path, "{id: a, prompt: p, images: [really-a-png.jpg, scan.png]}")
    assert problems(job) == [
        f"{job}:5: item 'a': images[1]: 'scan.png' is a PDF, not an image the API takes (PNG, JPEG, WEBP or a GIF "
        "that is not animated): attach documents under `files` (at /tasks/0/items/0/images/1)"
    ]
    pdf(tmp_path / "scan.png").unlink()
    ok = chat_job(tmp_path, "{id: a, prompt: p, images: really-a-png.jpg}")
    (request,) = requests(load(ok))
    assert request.attachments[0].mime == "image/png"


def test_a_jpeg_whose_metadata_outgrows_the_head_read_first_is_still_measured(tmp_path):
    exif = Image.Exif()
    exif[0x010E] = "x" * 30_000  # an image description: the frame's size follows 30 KB of it
    image(tmp_path / "a.jpg", size=(123, 45), fmt="JPEG", exif=exif)
    (request,) = requests(load(chat_job(tmp_path, "{id: a, prompt: p, images: a.jpg}")))
    assert (request.attachments[0].mime, request.attachments[0].width, request.attachments[0].height) == (
        "image/jpeg",
        123,
        45,
    )


def test_an_animated_gif_is_refused_and_a_still_one_taken(tmp_path):
    animated_gif(tmp_path / "moving.gif")
    image(tmp_path / "still.gif", fmt="GIF")
    job = chat_job(tmp_path, "{id: a, prompt: p, images: [still.gif, moving.gif]}")
    assert problems(job) == [
        f"{job}:5: item 'a': images[1]: 'moving.gif' is a GIF image that is animated: the API takes still images"
        " only (at /tasks/0/items/0/images/1)"
    ]


def test_chat_takes_pdfs_only_and_no_file_by_url(tmp_path):
    (tmp_path / "notes.txt").write_text("hello", encoding="utf-8")
    job = chat_job(
        tmp_path,
        "{id: a, prompt: p, files: notes.txt}\n      - {id: b, prompt: q}",
        task="    files: https://x.org/a.pdf\n",
    )
    assert problems(job) == [  # the task's files are the second item's: the first has its own
        f"{job}:4: files: Chat Completions takes no file by URL: download it and name the file, or use a response"
        " task (at /tasks/0/files)",
        f"{job}:6: item 'a': files: 'notes.txt' is a text file: chat tasks take PDF files only (response tasks take"
        " more) (at /tasks/0/items/0/files)",
    ]


def test_response_files_take_documents_and_refuse_the_rest(tmp_path):
    docx = io.BytesIO()
    with zipfile.ZipFile(docx, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    (tmp_path / "letter.docx").write_bytes(docx.getvalue())
    with zipfile.ZipFile(tmp_path / "bundle.zip", "w") as archive:
        archive.writestr("a.txt", "a")
    (tmp_path / "blob.bin").write_bytes(bytes(range(256)))
    job = write(
        tmp_path,
        "defaults: {model: gpt-4o}\ntasks:\n  - type: response\n    items:\n"
        "      - {id: ok, input: p, files: [letter.docx]}\n"
        "      - {id: bad, input: p, files: [bundle.zip, blob.bin]}\n",
    )
    assert problems(job) == [
        f"{job}:6: item 'bad': files[0]: 'bundle.zip' is a ZIP archive, not a document the Responses API takes"
        " (at /tasks/0/items/1/files/0)",
        f"{job}:6: item 'bad': files[1]: 'blob.bin' is a file of a type no endpoint takes, not a document the"
        " Responses API takes (at /tasks/0/items/1/files/1)",
    ]
    write(tmp_path, job.read_text(encoding="utf-8").rsplit("      - {id: bad", 1)[0])
    (request,) = requests(load(job))
    assert request.attachments[0].mime == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


# ----------------------------------------------------------------------------- audio


def test_audio_is_wav_or_mp3_a_file_and_chat_only(tmp_path):
    wav(tmp_path / "a.wav")
    (tmp_path / "b.mp3").write_bytes(mp3(40))
    image(tmp_path / "c.png")
    job = chat_job(tmp_path, "{id: a, prompt: p, audio: [a.wav, b.mp3, c.png, 'https://example.com/d.mp3']}")
    assert problems(job) == [
        f"{job}:5: item 'a': audio[2]: 'c.png' is a PNG image, not a recording the API takes (WAV or MP3)"
        " (at /tasks/0/items/0/audio/2)",
        f"{job}:5: item 'a': audio[3]: input_audio takes a recording's bytes, not a URL: download it and name the"
        " file (at /tasks/0/items/0/audio/3)",
    ]
    ok = chat_job(tmp_path, "{id: a, prompt: p, audio: [a.wav, b.mp3]}")
    (request,) = requests(load(ok))
    assert [(a.mime, round(a.seconds or 0, 2)) for a in request.attachments] == [
        ("audio/wav", 1.0),
        ("audio/mpeg", round(40 * 1152 / 44100, 2)),
    ]
    assert [p["input_audio"]["format"] for p in request.body["messages"][0]["content"][1:]] == ["wav", "mp3"]


# ----------------------------------------------------------------------------- task types


def test_inputs_on_a_task_type_that_takes_none_are_refused_at_their_key(tmp_path):
    job = write(
        tmp_path,
        "tasks:\n  - type: embedding\n    images: a.png\n    items: [{text: x}]\n"
        "  - type: image\n    items: [{prompt: x, files: b.pdf}]\n"
        "  - type: response\n    model: gpt-4o\n    audio: a.wav\n    items: [{input: x}]\n",
    )
    takers = "chat, code, conversation, dialogue, response, translate"
    assert problems(job) == [
        f"{job}:3: images: embedding tasks take no attached inputs; {takers} tasks do (at /tasks/0/images)",
        f"{job}:6: files: image tasks take no attached inputs; {takers} tasks do (at /tasks/1/items/0/files)",
        f"{job}:9: audio: response tasks take no audio (input_audio is Chat Completions'): use a chat task"
        " (at /tasks/2/audio)",
    ]


def test_a_jsonl_line_or_a_csv_row_with_inputs_for_a_type_that_takes_none_is_refused(tmp_path):
    lines = tmp_path / "lines.jsonl"
    lines.write_text(
        '{"type": "chat", "model": "m", "prompt": "p"}\n{"type": "moderation", "text": "t", "images": "a.png"}\n'
    )
    takers = "chat, code, conversation, dialogue, response, translate"
    assert problems(lines) == [
        f"{lines}:2: images: moderation tasks take no attached inputs; {takers} tasks do (at /images)"
    ]
    rows = tmp_path / "rows.csv"
    rows.write_text("text,images\nhello,a.png\n", encoding="utf-8")
    job = write(tmp_path, "tasks:\n  - {type: embedding, items_from: rows.csv}\n")
    assert problems(job) == [
        f"{rows}:2: images: embedding tasks take no attached inputs; {takers} tasks do (at /images)"
    ]


# ----------------------------------------------------------------------------- limits


def test_a_request_holds_at_most_500_images_and_50_mb_of_them(tmp_path):
    image(tmp_path / "a.png")
    many = "[" + ", ".join(["a.png"] * 501) + "]"
    job = chat_job(tmp_path, f"{{id: many, prompt: p, images: {many}}}")
    assert problems(job) == [
        f"{job}:5: item 'many': images: 501 images; a request takes at most 500 (at /tasks/0/items/0)"
    ]
    sparse(tmp_path / "big1.png", png_bytes(), 26_000_000)
    sparse(tmp_path / "big2.png", png_bytes(), 26_000_000)
    job = chat_job(tmp_path, "{id: big, prompt: p, images: [big1.png, big2.png]}")
    assert problems(job) == [
        f"{job}:5: item 'big': images: 52.0 MB of images; a request takes at most 50.0 MB (at /tasks/0/items/0)"
    ]
    job = chat_job(tmp_path, "{id: fits, prompt: p, images: big1.png}")
    assert len(list(requests(load(job)))) == 1


def test_a_request_holds_at_most_32_mb_and_100_pages_of_files(tmp_path):
    sparse(tmp_path / "big.pdf", b"%PDF-1.4\n", 33_000_000)
    pdf(tmp_path / "long.pdf", pages=60)
    job = chat_job(tmp_path, "{id: big, prompt: p, files: big.pdf}")
    assert problems(job) == [
        f"{job}:5: item 'big': files: 33.0 MB of files; a request takes at most 32.0 MB (at /tasks/0/items/0)"
    ]
    job = chat_job(tmp_path, "{id: long, prompt: p, files: [long.pdf, long.pdf]}")
    assert problems(job) == [
        f"{job}:5: item 'long': files: 120 PDF pages; a request takes at most 100 (at /tasks/0/items/0)"
    ]


# ----------------------------------------------------------------------------- data: URLs


@pytest.mark.parametrize(
    "url",
    [
        "data:image/png;base64,iVBOR*w0KGgo=",  # not base64
        "data:image/png;base64,iVBORw0KGgo",  # cut short
        "data:image/png,iVBORw0KGgo=",  # not said to be base64
        "data:;base64,iVBORw0KGgo=",  # no type
    ],
)
def test_a_malformed_data_url_is_named(tmp_path, url):
    job = chat_job(tmp_path, f"{{id: a, prompt: p, images: '{url}'}}")
    assert problems(job) == [
        f"{job}:5: item 'a': images: a malformed data: URL (it must be data:<type>;base64,<base64>)"
        " (at /tasks/0/items/0/images)"
    ]


def test_a_data_url_is_what_its_bytes_are(tmp_path):
    pdf_inline = data_url("image/png", b"%PDF-1.4\n")
    job = chat_job(tmp_path, f"{{id: a, prompt: p, images: '{pdf_inline}'}}")
    assert problems(job) == [
        f"{job}:5: item 'a': images: 'the data: URL' is a PDF, not an image the API takes (PNG, JPEG, WEBP or a GIF"
        " that is not animated): attach documents under `files` (at /tasks/0/items/0/images)"
    ]
    voice = data_url("audio/wav", wav(tmp_path / "v.wav").read_bytes())
    (request,) = requests(load(chat_job(tmp_path, f"{{id: a, prompt: p, audio: '{voice}'}}")))
    part = request.body["messages"][0]["content"][1]
    assert part == {"type": "input_audio", "input_audio": {"data": voice.split(",", 1)[1], "format": "wav"}}


# ----------------------------------------------------------------------------- templates and globs


def test_a_row_whose_template_field_is_empty_is_named_at_the_template(tmp_path):
    image(tmp_path / "a.png")
    rows = tmp_path / "rows.csv"
    rows.write_text("id,photo,q\nr1,a.png,what\nr2,,why\nr3,missing.png,how\n", encoding="utf-8")
    job = write(
        tmp_path,
        "defaults: {model: gpt-4o}\ntasks:\n"
        "  - {type: chat, template: '{q}', images: '{photo}', items_from: rows.csv}\n",
    )
    assert problems(job) == [
        f"{job}:3: field `photo` empty in 1 of 3 rows of rows.csv, at line 3 (at /tasks/0/images)",
        f"{rows}:4: item 'r3': images: no such file 'missing.png' (paths are relative to the job file) (at /photo)",
    ]


def test_a_glob_that_matches_nothing_or_cannot_make_prompts_is_refused_at_its_line(tmp_path):
    image(tmp_path / "p" / "a.png")
    job = write(
        tmp_path,
        "defaults: {model: gpt-4o}\ntasks:\n"
        "  - {type: chat, template: '{name}', items_from: 'nothing/*.png'}\n"
        "  - {type: chat, items_from: 'p/*.png'}\n"
        "  - {type: embedding, items_from: 'p/*.png'}\n"
        "  - {type: chat, items_from: 'p/*.txt[', template: x}\n"
        "  - {type: chat, items_from: rows.txt}\n",
    )
    found = problems(job)
    assert found[:3] == [
        f"{job}:3: items_from: 'nothing/*.png' matches no file (in {tmp_path}) (at /tasks/0/items_from)",
        f"{job}:4: items_from: a glob makes items of `path` and `name` only: set the task's `template`"
        ' ("Describe {name}") (at /tasks/1/items_from)',
        f"{job}:5: items_from: a glob attaches each file, and embedding tasks take no attached inputs; name a"
        " .csv, .jsonl or .parquet file (at /tasks/2/items_from)",
    ]
    assert found[3].startswith(f"{job}:6: items_from: 'p/*.txt[' matches no file")
    assert (
        found[4].startswith(f"{job}:7: ") and "rows.txt" in found[4] and found[4].endswith("(at /tasks/4/items_from)")
    )


def test_a_globbed_file_of_a_type_the_endpoint_refuses_is_named_by_its_path(tmp_path):
    image(tmp_path / "p" / "a.png")
    animated_gif(tmp_path / "p" / "b.gif")
    job = write(
        tmp_path, "defaults: {model: gpt-4o}\ntasks:\n  - {type: chat, template: '{name}', items_from: 'p/*'}\n"
    )
    assert problems(job) == [
        f"{job}:3: item 'p/b.gif': items_from: 'p/b.gif' is a GIF image that is animated: the API takes still"
        " images only (at /tasks/0/items_from)"
    ]


# ----------------------------------------------------------------------------- nothing sent


def test_nothing_is_sent_when_one_items_input_is_wrong(cli, server, tmp_path):
    image(tmp_path / "a.png")
    job = write(
        tmp_path,
        "defaults: {model: gpt-4o-mini}\ntasks:\n  - type: chat\n    items:\n"
        "      - {id: ok, prompt: p, images: a.png}\n      - {id: bad, prompt: p, images: gone.png}\n",
    )
    result = cli("run", str(job))
    assert result.exit_code == 2
    assert f"{job}:6: item 'bad': images: no such file 'gone.png'" in result.output
    assert server.seen == []
    validated = cli("validate", str(job))
    assert validated.exit_code == 2 and "item 'bad': images: no such file" in validated.output
