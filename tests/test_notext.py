"""Bytes that are not text in a job's files (batchgpt/notext.py): a byte that is not UTF-8 or a NUL
is reported at its file, line and column (and field), never by a decoder's byte offset, and
nothing is sent (issue 24, item 16)."""

from __future__ import annotations

import pytest

from batchgpt.notext import decoded, find, key_before

CAFE = "caf\xe9".encode("latin-1")  # "café" saved as Latin-1: 0xe9 is no UTF-8
NUL = b"n\x00l"
# Each kind of file a job reads as text: its name and text, the job file naming it (None: it is the
# job), the line of the bad bytes and the field they are in.
YAML_JOB = (
    b'name: t\ndefaults: {model: gpt-4o-mini}\ntasks:\n  - type: chat\n    items:\n      - {id: a, prompt: "%s"}\n'
)
JSON_JOB = (
    b'{"name": "t", "defaults": {"model": "gpt-4o-mini"},\n'
    b' "tasks": [{"type": "chat", "items": [{"id": "a", "prompt": "%s"}]}]}\n'
)
JSONL_JOB = b'{"type": "chat", "id": "a", "prompt": "fine"}\n{"type": "chat", "id": "b", "prompt": "%s"}\n'
ROWS_JSONL = b'{"id": "a", "prompt": "fine"}\n{"id": "b", "prompt": "%s"}\n'
ROWS_CSV = b"id,prompt\na,fine\nb,%s\n"
SCHEMA = (
    b'{"type": "object", "additionalProperties": false, "required": ["a"],\n'
    b' "properties": {"a": {"type": "string", "description": "%s"}}}'
)


def _from(name: str) -> bytes:
    return b"name: t\ndefaults: {model: gpt-4o-mini}\ntasks:\n  - type: chat\n    items_from: %s\n" % name.encode()


KINDS = {
    # kind: (file name, its text, the job file (None: the file is the job), line, where on it)
    "yaml job": ("job.yaml", YAML_JOB, None, 6, "prompt"),
    "json job": ("job.json", JSON_JOB, None, 2, "prompt"),
    "jsonl job": ("job.jsonl", JSONL_JOB, None, 2, "prompt"),
    "jsonl items_from": ("rows.jsonl", ROWS_JSONL, _from("rows.jsonl"), 2, "prompt"),
    "csv items_from": ("rows.csv", ROWS_CSV, _from("rows.csv"), 3, "prompt"),
    "task schema": (
        "s.json",
        SCHEMA,
        b"name: t\ndefaults: {model: gpt-4o-mini}\ntasks:\n  - type: chat\n    schema: s.json\n"
        b"    items: [{id: a, prompt: hi}]\n",
        2,
        "description",
    ),
    "item schema": (
        "s.json",
        SCHEMA,
        b"name: t\ndefaults: {model: gpt-4o-mini}\ntasks:\n  - type: chat\n    items:\n"
        b"      - {id: a, prompt: hi, schema: s.json}\n",
        2,
        "description",
    ),
}


@pytest.mark.parametrize("bad", [CAFE, NUL], ids=["latin-1", "nul"])
@pytest.mark.parametrize("kind", KINDS)
def test_bytes_that_are_not_text_are_located_and_nothing_is_sent(cli, server, tmp_path, kind, bad):
    name, text, job, line, field = KINDS[kind]
    (tmp_path / name).write_bytes(text % bad)
    byte = b"\xe9" if bad == CAFE else b"\x00"
    on_line = (text % bad).split(b"\n")[line - 1]  # ASCII but for the bad byte: a byte a column
    where = f"at column {on_line.index(byte) + 1} (in {field!r})"
    if name.endswith(".csv"):
        where = f"in column 'prompt' (its character {bad.index(byte) + 1})"
    path = tmp_path / name
    if job is not None:
        path = tmp_path / "job.yaml"
        path.write_bytes(job)
    args = ["--model", "gpt-4o-mini"] if name == "job.jsonl" else []
    result = cli("run", str(path), *args)
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    said = "not UTF-8 text: byte 0xe9 " if bad == CAFE else "a NUL byte "
    if kind == "item schema":  # reported at the item that names the file, inside which it is located
        assert f"{path}:6: schema: cannot read s.json: line {line}: {said}{where}" in result.stderr
    else:
        assert f"{tmp_path / name}:{line}: {said}{where}" in result.stderr
    assert "position" not in result.stderr and "codec" not in result.stderr
    assert server.seen == []


def test_a_utf16_file_is_said_to_be_one(tmp_path, cli, server):
    path = tmp_path / "job.yaml"
    path.write_bytes((YAML_JOB % b"x").decode().encode("utf-16"))
    result = cli("run", str(path))
    assert result.exit_code == 2 and f"{path}:1: the file is UTF-16" in result.stderr and server.seen == []


def test_a_control_character_yaml_refuses_is_located_too(tmp_path, cli, server):
    path = tmp_path / "job.yaml"
    path.write_bytes(YAML_JOB % b"a\x01b")
    result = cli("run", str(path))
    assert result.exit_code == 2 and f"{path}:6: control character U+0001 at column 27 (in 'prompt')" in result.stderr


def test_every_bad_line_of_a_data_file_is_reported_and_the_rest_read(tmp_path):
    """A bad byte was the whole file's problem, and stopped its reading at a decoder's offset."""
    from batchgpt.jobs.rows import read_rows

    (tmp_path / "rows.jsonl").write_bytes(
        b'{"id": "a", "p": "%s"}\n{"id": "b"}\n{"id": "c", "p": "%s"}\n' % (CAFE, NUL)
    )
    rows = dict(read_rows(tmp_path / "rows.jsonl"))  # a file in another encoding is said last (rows.py)
    assert sorted(rows) == [1, 2, 3] and rows[2] == {"id": "b"}
    assert rows[1].startswith("not UTF-8 text: byte 0xe9 at column 22 (in 'p')")
    assert rows[3].startswith("a NUL byte at column 20 (in 'p')")
    (tmp_path / "rows.csv").write_bytes(b"id,p\na,%s\nb,ok\nc,%s\n" % (CAFE, NUL))
    rows = dict(read_rows(tmp_path / "rows.csv"))
    assert sorted(rows) == [2, 3, 4] and rows[3] == {"id": "b", "p": "ok"}
    assert "byte 0xe9 in column 'p'" in rows[2] and "NUL byte in column 'p'" in rows[4]


def test_columns_count_characters_and_lines_count_from_one():
    found = find(decoded("line one\n  prompt: 你好 ".encode() + CAFE))
    assert found is not None and found.line == 2 and "at column 17 (in 'prompt')" in found.message
    assert find(decoded("\ufeffall fine, 你好\n".encode())) is None


@pytest.mark.parametrize(
    "prefix,key",
    [
        ('{"a": {"b": "x', "b"),
        ('{"id": "c", "prompt": "x"}', None),  # past the object: in no field
        ('"tags": ["x", "caf', "tags"),
        ('- {id: a, prompt: "say: hi', "prompt"),  # a colon in a value is no key
        ("url: http://x", "url"),
        ("  prompt: hello, caf", "prompt"),  # YAML's plain text may hold commas
        ("      - caf", None),
    ],
)
def test_the_field_is_the_key_the_line_opens_before_the_column(prefix, key):
    assert key_before(prefix) == key
