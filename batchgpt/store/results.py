"""A run's results as stored, read for export: its items in input order, the fields they keep as
columns, and its rows per task, model and mode. Sums are SQLite's, streamed over the rows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from batchgpt.records import GROUP_COLUMNS, RESULT_COLUMNS

from .aside import rows_of
from .encoding import decode_output
from .session import Session


class Results:
    def __init__(self, session: Session):
        self._session = session

    def _rows(self, job: str, run_id: int) -> str:
        return rows_of(self._session, job, run_id)

    def stored_results(self, job: str, run_id: int, batch: int = 5000) -> Iterator[tuple[Any, ...]]:
        """The run's items in input order, streamed, as stored: RESULT_COLUMNS (`output` as stored,
        `details` as JSON text), then how `output` is stored (TEXT, JSON or VECTOR), then the kept
        item fields and the answer's fields, each a JSON object's text or None."""
        self._session.commit()
        cursor = self._session.execute(
            f"SELECT {', '.join(RESULT_COLUMNS)}, output_json, kept, fields FROM {self._rows(job, run_id)} "
            "WHERE job = ? AND run_id = ? ORDER BY seq",
            (job, run_id),
        )
        while rows := cursor.fetchmany(batch):
            yield from rows

    def results(self, job: str, run_id: int) -> Iterator[dict[str, Any]]:
        """The run's items in input order, streamed, as records: `output` and `details` decoded, and
        `kept` the item fields and the answer's fields together."""
        names = RESULT_COLUMNS + ("output_json", "kept", "fields")
        for row in self.stored_results(job, run_id):
            record = dict(zip(names, row, strict=True))
            record["output"] = decode_output(record["output"], record.pop("output_json"))
            if record["details"] is not None:
                record["details"] = json.loads(record["details"])
            kept = json.loads(record["kept"]) if record["kept"] else {}
            fields = record.pop("fields")
            record["kept"] = {**kept, **json.loads(fields)} if fields else kept
            yield record

    def kept_columns(self, job: str, run_id: int) -> list[tuple[str, str]]:
        """The columns after the results': a structured answer's fields (`columns: true`), then
        the item fields kept (`keep:`), each group in the order its names first appear, each with
        the kind its values share: integer, real, text, boolean, or mixed (for JSON text). The
        groups never interleave, whichever item answered first or in which run."""
        self._session.commit()
        rows = [
            (group, *row)
            for group, column in enumerate(("fields", "kept"))
            for row in self._session.execute(
                f"""SELECT field.key, field.type, MIN(items.seq), MIN(field.id)
                    FROM {self._rows(job, run_id)} AS items, json_each(items.{column}) AS field
                    WHERE items.job = ? AND items.run_id = ? AND items.{column} IS NOT NULL
                    GROUP BY field.key, field.type""",
                (job, run_id),
            ).fetchall()
        ]
        kinds: dict[str, set[str]] = {}
        first: dict[str, tuple[int, int, int]] = {}
        for group, key, kind, seq, place in rows:
            kinds.setdefault(key, set()).add(kind)
            first[key] = min(first.get(key, (group, seq, place)), (group, seq, place))
        return [(key, _column_kind(kinds[key])) for key in sorted(kinds, key=first.__getitem__)]

    def groups(self, job: str, run_id: int) -> list[dict[str, Any]]:
        """One row per task, model and mode (online or batch: two prices) in input order. A cost is
        None (unknown), never 0, when any answered item of the group has no cost: no price, or no
        usage in the answer."""
        self._session.commit()
        rows = self._session.execute(
            f"""SELECT task, model, mode, COUNT(*), SUM(status = 'ok'), SUM(status = 'error'),
                      SUM(status = 'skipped'), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0),
                      CASE WHEN SUM(status = 'ok' AND cost_usd IS NULL) > 0 THEN NULL
                           ELSE COALESCE(SUM(cost_usd), 0) END,
                      CASE WHEN SUM(answered >= (SELECT started FROM runs WHERE id = ?)
                                   AND status = 'ok' AND cost_usd IS NULL) > 0
                           THEN NULL
                           ELSE COALESCE(SUM(CASE WHEN answered >= (SELECT started FROM runs WHERE id = ?)
                                                  THEN cost_usd END), 0) END
               FROM {self._rows(job, run_id)} WHERE job = ? AND run_id = ? GROUP BY task, model, mode
               ORDER BY MIN(seq)""",
            (run_id, run_id, job, run_id),
        ).fetchall()
        return [dict(zip(GROUP_COLUMNS, row, strict=True)) for row in rows]

    def answered_before(self, job: str, run_id: int, since: float) -> int:
        """Items of the run answered (ok or failed) before `since`: by earlier runs."""
        self._session.commit()
        row = self._session.execute(
            f"SELECT COUNT(*) FROM {self._rows(job, run_id)} WHERE job = ? AND run_id = ? "
            "AND status IN ('ok', 'error') AND answered < ?",
            (job, run_id, since),
        ).fetchone()
        return int(row[0])


def _column_kind(kinds: set[str]) -> str:
    """One column's kind from the JSON types of its values (nulls fit any)."""
    kinds = kinds - {"null"}
    if kinds <= {"integer"}:
        return "integer" if kinds else "text"
    if kinds <= {"integer", "real"}:
        return "real"
    if kinds <= {"true", "false"}:
        return "boolean"
    if kinds == {"text"}:
        return "text"
    return "mixed"
