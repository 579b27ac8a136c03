"""Media files: one file per item id, named readably, never another item's file."""

from __future__ import annotations

import os
from pathlib import Path

from batchgpt.media import MediaWriter


def test_ids_that_look_alike_get_files_of_their_own(tmp_path):
    writer = MediaWriter(tmp_path / "media")
    items = {"a/b": b"slash", "a_b": b"underscore", "a b": b"space", "猫": b"cat", "犬": b"dog", "A_B": b"upper"}
    paths = {ident: Path(writer.save(ident, (("mp3", data),))) for ident, data in items.items()}
    assert len({p.name.lower() for p in paths.values()}) == len(items)  # distinct even where case is ignored
    for ident, data in items.items():
        assert paths[ident].read_bytes() == data
        assert paths[ident].parent == tmp_path / "media" and paths[ident].suffix == ".mp3"
    assert paths["a/b"].name.startswith("a_b-") and paths["a b"].name.startswith("a_b-")  # still readable
    assert sorted(os.listdir(tmp_path / "media")) == sorted(p.name for p in paths.values())


def test_a_rerun_of_the_same_item_overwrites_its_own_file(tmp_path):
    writer = MediaWriter(tmp_path)
    first = writer.save("cat:1", (("png", b"first"),))
    again = MediaWriter(tmp_path).save("cat:1", (("png", b"second"),))
    assert again == first and Path(first).read_bytes() == b"second"
    assert os.listdir(tmp_path) == [Path(first).name]


def test_several_files_of_one_item_never_meet_another_items_names(tmp_path):
    writer = MediaWriter(tmp_path)
    several = writer.save("x", (("png", b"1"), ("png", b"2")))
    assert isinstance(several, list) and len(set(several)) == 2
    alone = {writer.save(ident, (("png", b"o"),)) for ident in ("x-1", "x-2", "x_1", "x")}
    assert not alone & set(several) and len(alone) == 4
    assert [Path(p).read_bytes() for p in several] == [b"1", b"2"]


def test_long_ids_and_odd_suffixes_stay_inside_the_folder(tmp_path):
    writer = MediaWriter(tmp_path / "media")
    long_name = Path(writer.save("x" * 1000, (("png", b"long"),)))
    assert len(long_name.name.encode()) <= 120 and long_name.read_bytes() == b"long"
    odd = Path(writer.save("..", (("../../escape", b"odd"),)))  # the suffix comes from the server's answer
    assert odd.parent == tmp_path / "media" and not odd.name.startswith(".")
    assert not (tmp_path / "escape").exists()
