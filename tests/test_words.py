"""Counts and commands as people read them: one helper for every count, commands that paste anywhere."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

import batchgpt
from batchgpt.words import command, count, plural


@pytest.mark.parametrize(
    ("n", "noun", "shown"),
    [
        (1, "item", "1 item"),
        (0, "item", "0 items"),
        (2000, "item", "2,000 items"),
        (1, "request", "1 request"),
        (3, "open batch", "3 open batches"),
        (2, "retry", "2 retries"),
        (2, "day", "2 days"),
        (1_000_000, "re-ask", "1,000,000 re-asks"),
        (2, "job file", "2 job files"),
    ],
)
def test_counts_separate_thousands_and_say_one_in_the_singular(n: int, noun: str, shown: str) -> None:
    assert count(n, noun) == shown


def test_an_irregular_plural_is_given() -> None:
    assert count(2, "child", "children") == "2 children" and count(1, "child", "children") == "1 child"
    assert plural("status") == "statuses"


def test_no_module_spells_a_plural_of_its_own() -> None:
    # `'s' * (n != 1)` and `'s' if n != 1` each forgot the separators or the singular somewhere:
    # every count goes through words.count.
    own = re.compile(r"""['"](e?s)['"] (\*|if) """)
    offenders = [
        f"{path.name}:{n}"
        for path in Path(batchgpt.__file__).parent.rglob("*.py")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if own.search(line)
    ]
    assert offenders == []


def test_a_command_pastes_from_any_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    line = command("export", 7, state=Path("jobs dir/.batchgpt"), base_url=None)
    assert shlex.split(line) == ["batchgpt", "export", "7", "--state", str(tmp_path / "jobs dir" / ".batchgpt")]
