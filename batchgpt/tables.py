"""Exporting a run: its results file and its report, from the store to the disk, in one direction.

The exporter asks the store for the run's rows and sums (plain queries: Store.stored_results,
results, kept_columns, groups), shapes them into the tables a person reads (the results' cells,
the report's rows with their totals and what the costs leave out), and hands them to the file
writers (tablefiles.py), which know nothing of the store. The writers' names are importable from
here as before.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import OutputError
from .records import GROUP_COLUMNS
from .records import RESULT_COLUMNS as RECORD_COLUMNS
from .store import VECTOR, Store, decode_output
from .tablefiles import RESULT_COLUMNS, dataframe, parquet_rows, text_output, write_cells, write_results, write_table
from .words import command, count

__all__ = [
    "REPORT_COLUMNS",
    "RESULT_COLUMNS",
    "dataframe",
    "export",
    "parquet_rows",
    "report_rows",
    "unpriced_rows",
    "write_results",
    "write_table",
]

# the store's sums, total tokens, and what the costs leave out
REPORT_COLUMNS = [*GROUP_COLUMNS[:-2], "total_tokens", *GROUP_COLUMNS[-2:], "notes"]
_OUTPUT, _DETAILS, _KIND = RECORD_COLUMNS.index("output"), RECORD_COLUMNS.index("details"), len(RECORD_COLUMNS)
_TASK, _MODEL, _MODE = RECORD_COLUMNS.index("task"), RECORD_COLUMNS.index("model"), RECORD_COLUMNS.index("mode")
_COST, _STATUS = RECORD_COLUMNS.index("cost_usd"), RECORD_COLUMNS.index("status")


def export(
    store: Store, job: str, run_id: int, results: Path, report_path: Path, bom: bool = False
) -> list[dict[str, Any]]:
    """Write a run's results and report from the store (atomically, so never half a file), and
    return the report's groups (store.groups). Its HTML page follows once the run is finished
    (htmlreport.write_beside). `bom`: CSV files begin with a byte-order mark (output.bom)."""
    try:
        kept = store.kept_columns(job, run_id)
        if results.suffix.lower() == ".csv" and not kept:
            write_cells(results, stored_cells(job, store.stored_results(job, run_id)), bom)
        else:
            write_results(results, store.results(job, run_id), job, kept, bom)
        groups = store.groups(job, run_id)
        unpriced = unpriced_rows(store, job, run_id) if any(g["cost_usd"] is None for g in groups) else None
        write_table(report_path, report_rows(groups, unpriced), REPORT_COLUMNS, bom)
        return groups
    except OutputError as exc:  # it names the file that failed, results or report
        run = store.run(run_id)  # named as people name it: the job's run N
        again = command("export", job, "--run", run.number if run else run_id, state=store.directory)
        raise OutputError(
            f"{exc}. The answers are safe in the store: `{again} --out PATH` writes them elsewhere"
        ) from None


def stored_cells(job: str, rows: Iterable[tuple[Any, ...]]) -> Iterator[list[Any]]:
    """The results CSV's cells straight from the store's rows (Store.stored_results), a third of
    the cost of records: what write_results writes for a run without kept fields, byte for byte.
    The store keeps a structure as the JSON text tablefiles.text_output makes of it, `details`
    too, and its typed columns give back ints and floats (NaN is stored as NULL), so only a
    vector, and `details` that are a string, need decoding."""
    for row in rows:
        cells = [job, *row[:_KIND]]
        if row[_KIND] == VECTOR:
            cells[_OUTPUT + 1] = text_output(decode_output(row[_OUTPUT], VECTOR))
        details = row[_DETAILS]
        if details is not None and details.startswith('"'):  # a string: written as itself, not as JSON
            cells[_DETAILS + 1] = json.loads(details)
        yield cells


Unpriced = Mapping[tuple[str, str, str], tuple[int, float]]  # (task, model, mode): (rows, priced USD)


def report_rows(groups: Sequence[Mapping[str, Any]], unpriced: Unpriced | None = None) -> list[dict[str, Any]]:
    """The per-task-and-model rows with total_tokens, and a TOTAL row. A group with answers of
    no known cost shows the cost of its priced rows, from `unpriced` (unpriced_rows), and says
    how many are left out; the TOTAL adds up what is known and names what is not: '+ 3 rows
    unpriced: model-x'."""
    rows = [
        {**g, "total_tokens": (g["prompt_tokens"] or 0) + (g["completion_tokens"] or 0), "notes": ""} for g in groups
    ]
    left: dict[str, int] = {}  # model: answers of no known cost (0: how many is not known)
    for row in rows:
        if row.get("cost_usd") is None:
            found = (unpriced or {}).get((row["task"], row["model"], row.get("mode", "online")))
            missing, priced = found if found is not None else (0, None)
            row["cost_usd"] = priced if priced or missing < row["succeeded"] else None  # none priced: unknown
            left[row["model"]] = left.get(row["model"], 0) + missing
            row["notes"] = f"+ {count(missing, 'row')} unpriced" if missing else "unpriced rows"
    total: dict[str, Any] = {"task": "TOTAL", "model": "", "mode": ""}
    for column in ("requests", "succeeded", "failed", "skipped", "prompt_tokens", "completion_tokens", "total_tokens"):
        total[column] = sum(r[column] or 0 for r in rows)
    for column in ("cost_usd", "cost_usd_this_run"):
        costs = [r[column] for r in rows if r.get(column) is not None]
        total[column] = sum(costs) if costs or not left else None
        for row in rows + [total]:
            row[column] = None if row.get(column) is None else round(row[column], 10)
    total["notes"] = _left_out(left)
    return rows + [total]


def _left_out(left: Mapping[str, int]) -> str:
    if not left:
        return ""
    models = ", ".join(sorted(left))
    rows = sum(left.values())
    return f"+ {count(rows, 'row')} unpriced: {models}" if all(left.values()) else f"+ unpriced rows: {models}"


def unpriced_rows(store: Store, job: str, run_id: int) -> dict[tuple[str, str, str], tuple[int, float]]:
    """For each task, model and mode: its answers of no known cost, and what its priced rows cost
    (the store's sum leaves the group's cost unknown). Walks the rows: only when some are unpriced."""
    found: dict[tuple[str, str, str], tuple[int, float]] = {}
    for row in store.stored_results(job, run_id):
        key = (row[_TASK], row[_MODEL], row[_MODE])
        missing, priced = found.get(key, (0, 0.0))
        cost = row[_COST]
        found[key] = (missing + (cost is None and row[_STATUS] == "ok"), priced + (cost or 0.0))
    return found
