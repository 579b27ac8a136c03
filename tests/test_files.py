"""Atomic writes of output files: exclusive temporaries, cleanup, clear errors, pre-flight checks."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from batchgpt import files
from batchgpt.errors import OutputError


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_write_is_whole_or_not_at_all_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "r.csv"
    with files.atomic_write(target) as handle:
        handle.write("old")
    with pytest.raises(RuntimeError):
        with files.atomic_write(target) as handle:
            handle.write("half")
            raise RuntimeError("the rows stopped coming")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["r.csv"]


def test_outputs_get_the_permissions_of_an_ordinary_file(tmp_path):
    files.write_bytes(tmp_path / "a.png", b"x")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "a.png").stat().st_mode) == 0o666 & ~umask


def test_the_temporary_is_never_a_planted_symlink(tmp_path, monkeypatch):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    folder = tmp_path / "out"
    folder.mkdir()
    planted = ".planted.tmp"
    (folder / planted).symlink_to(victim)
    names = iter([planted, ".fresh.tmp"])  # the first name drawn is the one an attacker guessed
    monkeypatch.setattr(files, "temporary_name", lambda target, pid=None: next(names))
    with files.atomic_write(folder / "r.csv") as handle:
        handle.write("results")
    assert victim.read_text() == "precious" and (folder / "r.csv").read_text() == "results"
    assert not (folder / "r.csv").is_symlink() and (folder / planted).is_symlink()


def test_temporaries_left_by_a_killed_run_are_removed_and_nothing_else(tmp_path):
    dead, alive = dead_pid(), os.getpid()
    ours_dead = [files.temporary_name(tmp_path / "r.csv", pid=dead), f".r.csv.{dead}.tmp"]
    kept = [
        files.temporary_name(tmp_path / "r.csv", pid=alive),
        f".r.csv.{alive}.tmp",
        f".other.csv.{dead}.tmp",
        "notes.tmp",
        ".batchgpt-notes",
        "r.csv.bak",
        f".batchgpt-x-{dead}-zz.tmp",
    ]
    for name in ours_dead + kept:
        (tmp_path / name).write_text("x")
    files.check_writable(tmp_path / "r.csv")
    assert sorted(os.listdir(tmp_path)) == sorted(kept)


def test_a_temporary_made_on_another_host_is_left_alone(tmp_path, monkeypatch):
    other = files.temporary_name(tmp_path / "r.csv", pid=dead_pid())
    (tmp_path / other).write_text("x")
    monkeypatch.setattr(files, "HOST", "ffffffff" if files.HOST != "ffffffff" else "00000000")
    files.check_writable(tmp_path / "r.csv")
    assert os.listdir(tmp_path) == [other]


def test_a_full_disk_names_the_output_not_the_temporary(tmp_path):
    target = tmp_path / "r.csv"
    target.write_text("old")
    with pytest.raises(OutputError) as caught:
        with files.atomic_write(target) as handle:
            handle.write("part")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert str(caught.value) == f"cannot write {target}: No space left on device"
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["r.csv"]


def test_a_temporary_that_cannot_be_made_is_reported_as_the_output(tmp_path, monkeypatch):
    def refuse(path: Path) -> tuple[int, Path]:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path.parent / ".batchgpt-x.tmp"))

    monkeypatch.setattr(files, "create_temporary", refuse)
    with pytest.raises(OutputError, match=f"^cannot write {tmp_path / 'r.csv'}: Permission denied") as caught:
        files.write_bytes(tmp_path / "r.csv", b"x")
    assert ".tmp" not in str(caught.value)


def test_pre_flight_finds_a_folder_a_blocked_parent_and_a_read_only_folder(tmp_path):
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(OutputError, match=f"cannot write {tmp_path / 'dir.csv'}: it is a folder"):
        files.check_writable(tmp_path / "dir.csv")
    (tmp_path / "blocker").write_text("a file where a folder should be")
    with pytest.raises(OutputError, match=f"cannot write {tmp_path / 'blocker' / 'sub' / 'r.csv'}: its folder"):
        files.check_writable(tmp_path / "blocker" / "sub" / "r.csv")
    files.check_writable(tmp_path / "new" / "deeper" / "r.csv")  # a missing folder that can be made is fine
    assert (tmp_path / "new" / "deeper").is_dir() and os.listdir(tmp_path / "new" / "deeper") == []
    read_only = read_only_folder(tmp_path)
    with pytest.raises(OutputError, match=f"cannot write {read_only / 'r.csv'}: ") as caught:
        files.check_writable(read_only / "r.csv")
    assert ".tmp" not in str(caught.value) and ".batchgpt-" not in str(caught.value)


def read_only_folder(tmp_path: Path) -> Path:
    """A folder this process cannot write: chmod works unless we are root, who cannot write /sys."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    if not _refuses(Path("/sys")):
        pytest.skip("no folder here refuses root")
    return Path("/sys")


def _refuses(folder: Path) -> bool:
    try:
        (folder / ".batchgpt-probe").touch()
    except OSError:
        return True
    (folder / ".batchgpt-probe").unlink()
    return False
