"""What the HTML run report shows, as SQLite adds it up: the run's answers over time, its errors
grouped by kind, its retried requests grouped by what happened to them, and its slowest answers.
Every sum is SQLite's, streamed over the rows; Python only sees what the page shows, a few hundred
rows at most, so a 1,000,000-item job costs no more memory than a small one."""

from __future__ import annotations

import json

from batchgpt.records import ErrorExample, ErrorGroups, ErrorKind, SlowItem, Timeline, TimeSlice

from .aside import rows_of
from .session import Session


class Report:
    def __init__(self, session: Session):
        self._session = session

    def _rows(self, job: str, run_id: int) -> str:
        return rows_of(self._session, job, run_id)

    def timeline(self, job: str, run_id: int, since: float, until: float, points: int) -> Timeline:
        """The run's answers received between `since` and `until` (epoch seconds: the run's own, not
        earlier runs'), in at most `points` equal slices of time from `since`, each with its
        counts and latency percentiles."""
        self._session.commit()
        where = "job = ? AND run_id = ? AND status IN ('ok', 'error') AND answered >= ? AND answered <= ?"
        rows_of_run = self._rows(job, run_id)
        args = (job, run_id, since, until)
        answers, first, last, retried, extra = self._session.execute(
            f"""SELECT COUNT(*), MIN(answered), MAX(answered), SUM(attempts > 1), SUM(MAX(attempts - 1, 0))
                FROM {rows_of_run} WHERE {where}""",
            args,
        ).fetchone()
        if not answers:
            return Timeline(0, None, None, 0, 0, ())
        count = min(points, answers)
        width = max((last - since) / count, 1e-3)
        # Nearest-rank percentiles: the k-th smallest latency of a slice, k = ceil(p * n), from
        # ranks SQLite numbers (nulls last, so ranks 1..n are the latencies).
        rows = self._session.execute(
            f"""SELECT slice, SUM(status = 'ok'), SUM(status = 'error'), SUM(tokens),
                       MAX(CASE WHEN rank = (known * 50 + 99) / 100 THEN latency_s END),
                       MAX(CASE WHEN rank = (known * 95 + 99) / 100 THEN latency_s END),
                       MAX(latency_s)
                FROM (SELECT slice, status, tokens, latency_s,
                             ROW_NUMBER() OVER (PARTITION BY slice ORDER BY latency_s IS NULL, latency_s) AS rank,
                             COUNT(latency_s) OVER (PARTITION BY slice) AS known
                      FROM (SELECT MIN(CAST((answered - ?) / ? AS INTEGER), ?) AS slice, status, latency_s,
                                   COALESCE(prompt_tokens, 0) + COALESCE(completion_tokens, 0) AS tokens
                            FROM {rows_of_run} WHERE {where}))
                GROUP BY slice""",
            (since, width, count - 1, *args),
        ).fetchall()
        found = {row[0]: row[1:] for row in rows}
        slices = tuple(
            TimeSlice(n * width, (n + 1) * width, *(found.get(n) or (0, 0, 0, None, None, None))) for n in range(count)
        )
        return Timeline(answers, first, last, retried or 0, extra or 0, slices)

    def error_groups(self, job: str, run_id: int, status: str, kinds: int, examples: int) -> ErrorGroups:
        """The run's items of `status` grouped by kind, the `kinds` most frequent with up to
        `examples` items each (the first in input order). An error's kind is what its message says
        before the first ': ' (the HTTP status and code, 'timeout', 'connection'); a skipped item's
        is its whole reason, since a run stops for one reason."""
        kind = (
            "CASE WHEN instr(error, ': ') BETWEEN 2 AND 81 THEN substr(error, 1, instr(error, ': ') - 1) "
            "ELSE substr(COALESCE(error, '(no message)'), 1, 120) END"
            if status == "error"
            else "substr(COALESCE(error, '(no reason)'), 1, 120)"
        )
        return self._grouped(job, run_id, kind, "status = ?", (status,), kinds, examples)

    def retry_groups(self, job: str, run_id: int, kinds: int, examples: int) -> ErrorGroups:
        """The run's items tried more than once, grouped by what happened to them: each kind is
        their final status, a space, then why each attempt before the last was tried again (the
        `retried` JSON: 'ok ["HTTP 429","timeout"]'), most frequent first."""
        kind = "status || ' ' || retried"
        where = "retried IS NOT NULL AND status IN ('ok', 'error', 'skipped')"
        return self._grouped(job, run_id, kind, where, (), kinds, examples)

    def _grouped(
        self, job: str, run_id: int, kind: str, where: str, args: tuple[str, ...], kinds: int, examples: int
    ) -> ErrorGroups:
        """The run's items matching `where`, grouped by the SQL expression `kind`."""
        self._session.commit()
        rows = (
            f"SELECT {kind} AS kind, id, error, seq FROM {self._rows(job, run_id)} "
            f"WHERE job = ? AND run_id = ? AND {where}"
        )
        every = (job, run_id, *args)
        total, distinct = self._session.execute(
            f"SELECT COALESCE(SUM(n), 0), COUNT(*) FROM (SELECT COUNT(*) AS n FROM ({rows}) GROUP BY kind)", every
        ).fetchone()
        # Ids and messages are cut here, in SQL: a 1 MB error body never reaches Python or the page.
        found = self._session.execute(
            f"""WITH matching AS ({rows}),
                     top AS (SELECT kind, COUNT(*) AS n FROM matching GROUP BY kind ORDER BY n DESC, kind LIMIT ?),
                     picked AS (SELECT kind, id, error,
                                       ROW_NUMBER() OVER (PARTITION BY kind ORDER BY seq) AS place
                                FROM matching WHERE kind IN (SELECT kind FROM top))
                SELECT top.kind, top.n, substr(picked.id, 1, 201), substr(picked.error, 1, 501)
                FROM top JOIN picked ON picked.kind = top.kind WHERE picked.place <= ?
                ORDER BY top.n DESC, top.kind, picked.place""",
            (*every, kinds, examples),
        ).fetchall()
        shown: dict[str, tuple[int, list[ErrorExample]]] = {}
        for name, n, item, message in found:
            shown.setdefault(name, (n, []))[1].append(ErrorExample(item, message or ""))
        groups = tuple(ErrorKind(name, n, tuple(listed)) for name, (n, listed) in shown.items())
        return ErrorGroups(total, distinct, groups)

    def slowest(self, job: str, run_id: int, since: float, until: float, limit: int) -> list[SlowItem]:
        """The run's `limit` slowest answers received between `since` and `until`, slowest first."""
        self._session.commit()
        rows = self._session.execute(
            f"""SELECT substr(id, 1, 201), task, model, status, latency_s, attempts, substr(error, 1, 501), retried
               FROM {self._rows(job, run_id)}
               WHERE job = ? AND run_id = ? AND status IN ('ok', 'error') AND latency_s IS NOT NULL
                   AND answered >= ? AND answered <= ?
               ORDER BY latency_s DESC, seq LIMIT ?""",
            (job, run_id, since, until, limit),
        ).fetchall()
        return [
            SlowItem(item, task, model, status, latency, attempts, error, tuple(json.loads(retried or "[]")))
            for item, task, model, status, latency, attempts, error, retried in rows
        ]
