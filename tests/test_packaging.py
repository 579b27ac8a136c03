"""The wheel carries the JSON Schemas, so an installed CLI (not only a checkout) can validate."""

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
    assert "batchgpt/schemas/job.schema.json" in names
    assert "batchgpt/cli.py" in names and not any(n.startswith("tests/") for n in names)
