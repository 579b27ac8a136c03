"""items_from files not in UTF-8 (issue 28, item 5): a GBK CSV from Excel on Chinese Windows is one
located problem that names the encoding tried and the one it reads as; `items_from: {path: ...,
encoding: gbk}` reads it, to the same items and requests as the file saved as UTF-8."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batchgpt.errors import JobError, Problem
from batchgpt.jobs import load, requests
from batchgpt.jobs.rows import read_rows

ROWS = [("1", "你好吗"), ("2", "今天天气怎么样？"), ("3", "hello"), ("4", "请把这句话翻译成英文。")]
CSV = "id,question\n" + "".join(f"{i},{q}\n" for i, q in ROWS)
JSONL = "".join(json.dumps({"id": i, "prompt": q}, ensure_ascii=False) + "\n" for i, q in ROWS)


def job_file(tmp_path: Path, items_from: str, template: bool = True) -> Path:
    path = tmp_path / "job.yaml"
    task = '{type: chat, template: "{question}", items_from: %s}' if template else "{type: chat, items_from: %s}"
    path.write_text("defaults: {model: gpt-4o-mini}\ntasks:\n  - " + task % items_from + "\n", encoding="utf-8")
    return path


def problems(path: Path) -> list[Problem]:
    with pytest.raises(JobError) as caught:
        load(path)
    return caught.value.problems


# ----------------------------------------------------------------------------- reading rows (rows.py)


@pytest.mark.parametrize("name,text", [("q.csv", CSV), ("q.jsonl", JSONL)])
@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-16", "utf-8", "utf-8-sig"])
def test_a_file_in_the_encoding_given_reads_as_the_same_file_in_utf8(tmp_path, name, text, encoding):
    (tmp_path / "utf8").mkdir()
    (tmp_path / "utf8" / name).write_bytes(text.encode())
    (tmp_path / name).write_bytes(text.encode(encoding))
    assert list(read_rows(tmp_path / name, encoding)) == list(read_rows(tmp_path / "utf8" / name))


def test_a_bom_utf8_file_reads_as_is(tmp_path):
    (tmp_path / "q.csv").write_bytes(CSV.encode("utf-8-sig"))
    rows = list(read_rows(tmp_path / "q.csv"))
    assert rows[0] == (2, {"id": "1", "question": "你好吗"}) and len(rows) == 4


def test_a_gbk_file_read_as_utf8_is_one_problem_at_its_first_bad_row(tmp_path):
    (tmp_path / "q.csv").write_bytes(CSV.encode("gbk"))
    rows = dict(read_rows(tmp_path / "q.csv", None, "data/q.csv"))
    assert rows[4] == {"id": "3", "question": "hello"}  # ASCII reads the same: the rest is still read
    assert sorted(rows) == [2, 4]
    assert rows[2] == (
        "not UTF-8 text: byte 0xc4 in column 'question' (its character 1), as are 2 more rows; the file was read "
        "as UTF-8 (items_from gives no encoding), and it reads as GBK/GB18030: "
        "set `items_from: {path: data/q.csv, encoding: gbk}`"
    )


def test_a_gbk_header_is_said_at_line_one_and_ends_the_reading(tmp_path):
    (tmp_path / "q.csv").write_bytes("编号,问题\n1,你好\n".encode("gbk"))
    [(line, message)] = list(read_rows(tmp_path / "q.csv"))
    assert line == 1 and message.startswith("not UTF-8 text: byte 0xb1 in the header, column 1 (its character 1);")
    assert message.endswith("encoding: gbk}`")


def test_a_byte_the_given_encoding_lacks_is_said_at_each_row(tmp_path):
    (tmp_path / "q.csv").write_bytes(b"id,q\n1,ok\n2,\x80x\n3,\x80y\n")
    rows = dict(read_rows(tmp_path / "q.csv", "gbk", "q.csv"))
    assert rows[2] == {"id": "1", "q": "ok"}
    said = "not gbk text: byte 0x80 in column 'q' (its character 1); is the file in gbk, as items_from says?"
    assert rows[3] == rows[4] == said


def test_a_stray_byte_in_a_utf8_file_is_said_at_its_row_with_both_ways_out(tmp_path):
    (tmp_path / "q.csv").write_bytes(CSV.encode() + b"5,caf\xe9\n")
    rows = dict(read_rows(tmp_path / "q.csv", None, "q.csv"))
    assert rows[6] == (
        "not UTF-8 text: byte 0xe9 in column 'question' (its character 4); save the file as UTF-8, "
        "or give its encoding: `items_from: {path: q.csv, encoding: ...}`"
    )


# ----------------------------------------------------------------------------- the job (definition.py, schema)


def test_items_from_with_an_encoding_gives_the_same_requests_as_utf8(tmp_path):
    """The request hash names what is sent: an item read from GBK is the item read from UTF-8,
    so a rerun after the file is saved in another encoding pays for nothing again."""
    (tmp_path / "q.csv").write_bytes(CSV.encode("gbk"))
    (tmp_path / "u.csv").write_bytes(CSV.encode())
    gbk = [r.hash for r in requests(load(job_file(tmp_path, "{path: q.csv, encoding: gbk}")))]
    utf8 = [r.hash for r in requests(load(job_file(tmp_path, "u.csv")))]
    assert gbk == utf8 and len(gbk) == 4


@pytest.mark.parametrize(
    "items_from,line,where,said",
    [
        ("{path: q.csv, encoding: gkb}", 3, "/tasks/0/items_from/encoding", "unknown encoding 'gkb' (did you mean"),
        ("{path: q.csv, encoding: rot13}", 3, "/tasks/0/items_from/encoding", "'rot13' is not a text encoding"),
        ("{path: q.parquet, encoding: gbk}", 3, "/tasks/0/items_from/encoding", "a Parquet file's text is UTF-8"),
        ("{path: q.csv, encodng: gbk}", 3, "/tasks/0/items_from/encodng", "unknown key 'encodng' (did you mean"),
        ("{encoding: gbk}", 3, "/tasks/0/items_from", "missing required key 'path'"),
        ("{path: q.txt}", 3, "/tasks/0/items_from/path", "'q.txt' is no .csv, .jsonl or .parquet file"),
        ("q.txt", 3, "/tasks/0/items_from", "'q.txt' is no .csv, .jsonl or .parquet file or glob"),
        ("5", 3, "/tasks/0/items_from", "items_from: name a file (data.csv), or give {path: data.csv"),
    ],
)
def test_a_bad_items_from_is_an_error_at_its_line_and_field(tmp_path, items_from, line, where, said):
    (tmp_path / "q.csv").write_bytes(CSV.encode())
    found = problems(job_file(tmp_path, items_from))
    assert len(found) == 1, found
    assert found[0].line == line and found[0].pointer == where and said in found[0].message


def test_a_glob_with_an_encoding_is_refused(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text(
        "defaults: {model: gpt-4o}\ntasks:\n  - type: chat\n    template: 'Describe {name}'\n"
        "    items_from: {path: 'docs/*.csv', encoding: gbk}\n",
        encoding="utf-8",
    )
    [found] = problems(path)
    assert (
        found.pointer == "/tasks/0/items_from/encoding" and "a glob's files are attached as they are" in found.message
    )


# ----------------------------------------------------------------------------- through the command line


def test_a_gbk_csv_is_refused_naming_the_file_line_and_encoding_and_nothing_is_sent(cli, server, tmp_path):
    (tmp_path / "q.csv").write_bytes(CSV.encode("gbk"))
    path = job_file(tmp_path, "q.csv")
    for command in (("validate",), ("run", "--dry-run"), ("run",)):
        result = cli(command[0], str(path), *command[1:])
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        output = result.output + (result.stderr or "")
        assert f"{tmp_path / 'q.csv'}:2: not UTF-8 text: byte 0xc4 in column 'question' (its character 1)" in output
        assert "read as UTF-8" in output and "set `items_from: {path: q.csv, encoding: gbk}`" in output
        assert "codec" not in output and "position" not in output
    assert server.seen == []


def test_a_gbk_csv_with_its_encoding_runs_and_pays_nothing_again_once_saved_as_utf8(cli, server, tmp_path):
    (tmp_path / "q.csv").write_bytes(CSV.encode("gbk"))
    path = job_file(tmp_path, "{path: q.csv, encoding: gbk}")
    dry = cli("run", str(path), "--dry-run")
    assert dry.exit_code == 0 and "4 items" in dry.output + dry.stderr and server.seen == []
    assert cli("run", str(path)).exit_code == 0
    assert sorted(r.body["messages"][0]["content"] for r in server.seen) == sorted(q for _, q in ROWS)
    (tmp_path / "q.csv").write_bytes(CSV.encode())  # the same file, saved as UTF-8
    job_file(tmp_path, "q.csv")
    again = cli("run", str(path))
    assert again.exit_code == 0 and len(server.seen) == 4  # every answer is the one already bought


def test_a_cp1252_jsonl_file_is_read_with_its_encoding(cli, server, tmp_path):
    (tmp_path / "q.jsonl").write_bytes('{"id": "a", "prompt": "Café crème"}\n'.encode("cp1252"))
    refused = cli("validate", str(job_file(tmp_path, "q.jsonl", template=False)))
    assert refused.exit_code == 2
    assert "it reads as Windows-1252 (Latin-1): set `items_from: {path: q.jsonl, encoding: cp1252}`" in (
        refused.output + (refused.stderr or "")
    )
    result = cli("run", str(job_file(tmp_path, "{path: q.jsonl, encoding: cp1252}", template=False)))
    assert result.exit_code == 0, result.output
    assert server.seen[0].body["messages"][0]["content"] == "Café crème"


def test_an_attached_text_file_not_in_utf8_says_what_it_reads_as(tmp_path):
    """A globbed .txt in GBK was 'a file of a type no endpoint takes' (jobs/sniff.py)."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_bytes("你好，世界。今天天气很好。".encode("gbk"))
    (tmp_path / "docs" / "b.txt").write_bytes("你好，世界。".encode())
    path = tmp_path / "job.yaml"
    path.write_text(
        "defaults: {model: gpt-4o}\ntasks:\n  - {type: response, template: 'Sum up {name}', items_from: docs/*.txt}\n",
        encoding="utf-8",
    )
    [found] = problems(path)
    assert "'docs/a.txt' is text not in UTF-8 (it reads as GBK/GB18030; save it as UTF-8)" in found.message
