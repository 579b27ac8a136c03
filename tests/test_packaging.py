"""The wheel carries every module and the JSON Schemas, so an installed CLI (not only a checkout) works."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_ships_the_schemas(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob("batchgpt-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "batchgpt/schemas/job.schema.json" in names and "batchgpt/py.typed" in names
    # every module and subpackage, so a package added without telling setuptools is caught here
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "batchgpt").rglob("*.py")}
    assert modules - set(names) == set()
    assert not any(n.startswith("tests/") for n in names)
