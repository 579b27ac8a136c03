"""Reading back what a run wrote, for the end-to-end CLI tests: its results and report files, and
its JSON log lines."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any


def read_results(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def read_report(path: Path) -> dict[str, dict[str, str]]:
    return {(row["task"], row["model"]): row for row in read_results(path)}


def json_lines(stderr: str) -> list[dict[str, Any]]:
    """Every line on stderr as JSON, each with its time (a line that is not JSON fails here)."""
    records = [json.loads(line) for line in stderr.splitlines()]
    assert records and all(isinstance(r["time"], float) and r["event"] for r in records), records
    return records
