"""What each of the two JSON Schema engines is worth: jsonschema-rs says whether a job or a JSONL
line is valid; jsonschema (pure Python) words the errors of the rare invalid one and checks
structured answers. Timed here on the job schema: a whole job file, and JSONL lines one by one
(a 1,000,000-item job checks a million, issue 12's dry run under 10 s).

    python bench/engines.py             # 20,000 lines, the translate job 200 times
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import yaml

from batchgpt import schema

ROOT = Path(__file__).resolve().parents[1]


def lines(n: int) -> list[dict[str, Any]]:
    return [
        {"type": "chat", "id": f"i{i}", "prompt": f"Question {i}: what is {i} plus {i}?", "max_tokens": 20}
        for i in range(n)
    ]


def per_call(check: Any, instances: list[Any]) -> float:
    """Seconds per instance, one pass."""
    started = time.perf_counter()
    for instance in instances:
        check(instance)
    return (time.perf_counter() - started) / len(instances)


def paired(a: Any, b: Any, a_on: list[Any], b_on: list[Any], rounds: int = 5) -> tuple[float, float]:
    """Medians of `rounds` passes of each, in turns, so a slow second of a shared machine hits both."""
    times = [(per_call(a, a_on), per_call(b, b_on)) for _ in range(rounds)]
    return statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=20_000)
    args = parser.parse_args()
    rows = lines(args.n)
    whole = schema.fast_validator("line")
    narrowed, unnarrowed = paired(lambda row: schema.valid(row, "line"), whole.is_valid, rows, rows)
    print(
        f"a JSONL line on jsonschema-rs: the line schema narrowed to its type {narrowed * 1e6:.1f} µs, "
        f"the whole line schema {unnarrowed * 1e6:.1f} µs ({unnarrowed / narrowed:.1f}x)"
    )
    python_line = jsonschema.Draft202012Validator(schema._subschema("line"))
    fast, slow = paired(
        lambda row: schema.valid(row, "line"), python_line.is_valid, rows, rows[: max(1, args.n // 100)]
    )
    print(
        f"a JSONL line: jsonschema-rs {fast * 1e6:.1f} µs, jsonschema {slow * 1e6:.0f} µs ({slow / fast:.0f}x); "
        f"for 1,000,000 lines {fast * 1e6:.1f} s against {slow * 1e6:.0f} s"
    )
    job = yaml.safe_load((ROOT / "jobs" / "translate.yaml").read_text("utf-8"))
    python_job = jsonschema.Draft202012Validator(schema.job_schema())
    fast, slow = paired(lambda doc: schema.valid(doc), python_job.is_valid, [job] * 200, [job] * 10)
    print(f"the translate job: jsonschema-rs {fast * 1e3:.2f} ms, jsonschema {slow * 1e3:.1f} ms ({slow / fast:.0f}x)")


if __name__ == "__main__":
    main()
