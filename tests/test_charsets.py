"""Which encoding a data file that is not UTF-8 reads as (batchgpt/jobs/charsets.py), and which
names `encoding:` takes (issue 28, item 5)."""

from __future__ import annotations

import codecs

import pytest

from batchgpt.jobs.charsets import SAMPLE, advice, encoding_problem, guess

CHINESE = "id,question\n1,你好吗\n2,今天天气怎么样？\n3,请把这句话翻译成英文。\n"


def names(sample: bytes) -> list[str]:
    return [g.name for g in guess(sample)]


@pytest.mark.parametrize(
    "text,encoding,first",
    [
        (CHINESE, "gbk", "gbk"),  # Excel on Chinese Windows
        ("id,q\n1,今天天氣怎麼樣\n2,請問火車站在哪裡\n", "big5", "big5"),
        ("id,q\n1,こんにちは、元気ですか\n2,駅はどこですか\n", "shift_jis", "shift_jis"),
        ("id,q\n1,Où est la gare?\n2,Café crème, s'il vous plaît\n", "cp1252", "cp1252"),
        ("id,q\n1,Müller\n", "cp1252", "cp1252"),
        ("id,q\n1,你好\n", "utf-16", "utf-16"),
    ],
)
def test_a_file_not_in_utf8_reads_as_its_encoding_first(text, encoding, first):
    assert names(text.encode(encoding))[0] == first


def test_a_chinese_sample_is_not_taken_for_latin_text_or_korean():
    # GBK's bytes decode in Windows-1252 too (as "ÄãºÃ"), but in runs, where accented letters stand alone
    assert names((CHINESE * 20).encode("gbk")) == ["gbk"]


def test_a_sample_too_short_to_tell_names_every_encoding_it_reads_as():
    found = names("id,q\n1,你好\n".encode("gbk"))
    assert found[0] == "gbk" and len(found) > 1
    assert advice(guess("id,q\n1,你好\n".encode("gbk")), "data/q.csv").startswith(
        "it reads as GBK/GB18030: set `items_from: {path: data/q.csv, encoding: gbk}` (or "
    )


def test_gb18030_is_named_when_only_it_decodes_the_file():
    text = ("id,q\n" + "1,今天天气很好。\n" * 40 + "2,€\n").encode(
        "gb18030"
    )  # € is A2E3 in GB18030, which GBK leaves undefined
    assert names(text)[0] == "gb18030"


@pytest.mark.parametrize(
    "sample",
    [
        CHINESE.encode(),  # UTF-8
        CHINESE.encode() + b"4,caf\xe9\n",  # mostly UTF-8: a stray byte is no other encoding
        b"id,q\n1,\x81\x81\x81\n",  # no encoding's text
        "id,q\n1,Привет мир\n".encode("cp1251"),  # not one the guess knows
    ],
)
def test_no_guess_for_utf8_a_stray_byte_or_an_unknown_encoding(sample):
    assert guess(sample) == []


def test_a_sample_cut_inside_a_character_still_reads():
    data = ("id,q\n" + "1,今天天气怎么样\n" * 30_000).encode("gbk")
    assert len(data) > SAMPLE and names(data[: SAMPLE - 1])[0] == "gbk"


@pytest.mark.parametrize(
    "name,said",
    [
        ("gkb", "unknown encoding 'gkb' (did you mean 'gbk'?)"),
        ("shift-jsi", "unknown encoding 'shift-jsi' (did you mean 'shift_jis'?)"),
        ("klingon", "unknown encoding 'klingon' (such as utf-8, gbk, gb18030, big5, shift_jis, cp1252)"),
        ("rot13", "'rot13' is not a text encoding (such as utf-8, gbk, gb18030, big5, shift_jis, cp1252)"),
    ],
)
def test_an_encoding_python_lacks_is_named_with_the_nearest_it_has(name, said):
    assert encoding_problem(name) == said


@pytest.mark.parametrize("name", ["gbk", "GBK", "gb18030", "cp936", "utf-8", "UTF8", "utf-8-sig", "utf-16", "latin-1"])
def test_encodings_python_has_are_taken(name):
    assert encoding_problem(name) is None and codecs.lookup(name)
