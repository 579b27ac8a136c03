"""The HTML run report: the store's sums behind it, escaping, size, the CLI, and a real browser."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import struct
import subprocess
import time
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import SECRET, chat_job, faults

from batchgpt import htmlreport
from batchgpt.store import Store

JOB = "job"
NO_END = 1e18  # a run still going: its answers are every one from its start on
INSERT = """INSERT INTO items (job, id, seq, run_id, task, type, model, hash, status, prompt_tokens,
                               completion_tokens, cost_usd, attempts, latency_s, error, answered)
            VALUES (:job, :id, :seq, :run, :task, 'chat', :model, 'h', :status, :prompt, :completion, :cost,
                    :attempts, :latency, :error, :answered)"""


def add(store: Store, run: int, rows: list[dict[str, Any]]) -> None:
    """Items as a run leaves them, written straight into the store: `at` is seconds after the run
    began (None: never answered), `latency` seconds."""
    started = _started(store, run)
    defaults = {"job": JOB, "run": run, "task": "t", "model": "m", "status": "ok", "prompt": 10, "completion": 5}
    defaults |= {"cost": 0.001, "attempts": 1, "latency": 1.0, "error": None, "at": 1.0}
    values = []
    for seq, row in enumerate(rows):
        value = {**defaults, "seq": seq, **row}
        value["answered"] = None if value["at"] is None else started + value["at"]
        values.append(value)
    with sqlite3.connect(store.directory / "state.db") as db:
        db.executemany(INSERT, values)
    db.close()


def _started(store: Store, run: int) -> float:
    info = store.run(run)
    assert info is not None
    return info.started


def figure(page: str, label: str) -> str:
    """The value of one of the page's cards."""
    found = re.search(rf'data-figure="{re.escape(label)}">.*?<span class="value">(.*?)</span>', page)
    assert found, f"no card {label!r}"
    return found.group(1)


# The store's sums


def test_the_timeline_slices_this_runs_answers_with_nearest_rank_percentiles(tmp_path):
    store = Store(tmp_path)
    run = store.begin_run(JOB, None)
    first = [{"id": f"a{n}", "latency": float(n), "at": 0.5} for n in range(1, 11)]  # 1..10 s, first slice
    second = [{"id": "b", "latency": 4.0, "at": 9.0, "status": "error", "attempts": 3, "error": "HTTP 500: x"}]
    earlier = [{"id": "old", "latency": 99.0, "at": -60.0}]  # answered by an earlier run: not this run's
    unanswered = [{"id": "s", "status": "skipped", "latency": None, "at": None}]
    add(store, run, first + second + earlier + unanswered)

    timeline = store.timeline(JOB, run, _started(store, run), NO_END, points=2)
    assert (timeline.answers, timeline.retried, timeline.extra_attempts) == (11, 1, 2)
    one, two = timeline.slices
    assert (one.start_s, one.end_s, two.end_s) == pytest.approx((0.0, 4.5, 9.0))
    assert (one.ok, one.failed, one.tokens) == (10, 0, 150)
    assert (one.p50_s, one.p95_s, one.max_s) == (5.0, 10.0, 10.0)  # ceil(0.5 * 10) = 5th, ceil(0.95 * 10) = 10th
    assert (two.ok, two.failed, two.p50_s, two.p95_s) == (0, 1, 4.0, 4.0)
    assert len(store.timeline(JOB, run, _started(store, run), NO_END, points=120).slices) == 11
    assert store.timeline(JOB, run, _started(store, run) + 100, NO_END, 120).slices == ()


def test_errors_are_grouped_by_kind_with_the_first_examples_and_the_rest_counted(tmp_path):
    store = Store(tmp_path)
    run = store.begin_run(JOB, None)
    errors = (
        [f"HTTP 429: Rate limit reached ({n})" for n in range(5)]
        + ["timeout: no answer in 60 s"] * 3
        + ["HTTP 400 invalid_request_error: bad input", "malformed answer (HTTP 200): not JSON", "no colon at all"]
    )
    add(store, run, [{"id": f"e{n}", "status": "error", "error": e} for n, e in enumerate(errors)])
    add(store, run, [{"id": "fine"}])

    groups = store.error_groups(JOB, run, "error", kinds=2, examples=3)
    assert (groups.total, groups.kinds) == (11, 5)
    assert [(k.kind, k.count) for k in groups.shown] == [("HTTP 429", 5), ("timeout", 3)]
    assert [x.id for x in groups.shown[0].examples] == ["e0", "e1", "e2"]  # the first in input order
    assert groups.shown[0].examples[0].message == "HTTP 429: Rate limit reached (0)"
    every = store.error_groups(JOB, run, "error", kinds=12, examples=1)
    assert {k.kind for k in every.shown} == {
        "HTTP 429",
        "timeout",
        "HTTP 400 invalid_request_error",
        "malformed answer (HTTP 200)",
        "no colon at all",
    }


def test_skipped_items_are_grouped_by_their_whole_reason(tmp_path):
    store = Store(tmp_path)
    run = store.begin_run(JOB, None)
    reason = "not answered: budget of $1.0000 reached: $0.99 spent"
    add(store, run, [{"id": f"s{n}", "status": "skipped", "error": reason, "at": None} for n in range(4)])
    groups = store.error_groups(JOB, run, "skipped", kinds=12, examples=3)
    assert [(k.kind, k.count, len(k.examples)) for k in groups.shown] == [(reason, 4, 3)]


def test_the_slowest_answers_of_this_run_come_first_with_ids_and_messages_cut(tmp_path):
    store = Store(tmp_path)
    run = store.begin_run(JOB, None)
    rows = [{"id": f"i{n}", "latency": n / 10} for n in range(30)]
    rows += [{"id": "x" * 5000, "latency": 50.0, "status": "error", "error": "HTTP 500: " + "y" * 100_000}]
    rows += [{"id": "old", "latency": 99.0, "at": -60.0}, {"id": "none", "latency": None}]
    add(store, run, rows)
    slowest = store.slowest(JOB, run, _started(store, run), NO_END, limit=3)
    assert [s.latency_s for s in slowest] == [50.0, 2.9, 2.8]
    assert len(slowest[0].id) == 201 and len(slowest[0].error or "") == 501  # cut in SQL, shortened on the page


# The page


def report_of(store: Store, run: int) -> htmlreport.RunReport:
    info = store.run(run)
    assert info is not None
    return htmlreport.gather(store, info)


def small_report(store: Store, run: int) -> str:
    return htmlreport.render(report_of(store, run))


def test_untrusted_ids_messages_and_names_are_shown_as_text_never_markup(tmp_path):
    store = Store(tmp_path)
    run = store.begin_run(JOB, None)
    attack = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    quote = '" onmouseover="alert(2)'
    add(
        store,
        run,
        [
            {"id": attack, "status": "error", "error": f"HTTP 400 {attack}: {attack}", "latency": 9.0},
            {"id": "b", "task": quote, "model": attack, "latency": 2.0},
        ],
    )
    page = small_report(store, run)
    assert "<script" not in page and "<img" not in page and 'onmouseover="' not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page  # shown, as text
    assert "&quot; onmouseover=&quot;alert(2)" in page  # in the table, the bar's label and its tooltip


def test_the_page_loads_nothing_and_runs_nothing(tmp_path):
    store = Store(tmp_path)
    run = store.begin_run(JOB, "jobs/job.yaml")
    add(store, run, [{"id": f"i{n}", "latency": n / 10, "at": n / 10} for n in range(50)])
    page = small_report(store, run)
    assert "content=\"default-src 'none'; style-src 'unsafe-inline'\"" in page  # the browser enforces it too
    for loads in ("<script", "<link", "src=", "href=", "@import", "url(", "<iframe", "<object"):
        assert loads not in page
    assert set(re.findall(r"https?://[^\s\"<]+", page)) == {"http://www.w3.org/2000/svg"}  # a namespace, not fetched
    assert page.count("<svg") == 3  # cost, throughput, latency (no retries, so no retry bars)
    assert figure(page, "items") == "50" and figure(page, "ok") == "50" and figure(page, "failed") == "0"
    assert "No errors." in page and "No retries." in page


def test_a_run_with_no_answers_of_its_own_still_makes_a_page(tmp_path):
    store = Store(tmp_path)
    run = store.begin_run(JOB, None)
    add(store, run, [{"id": "old", "at": -60.0}, {"id": "s", "status": "skipped", "at": None, "error": "not sent"}])
    page = small_report(store, run)
    assert "This run received no answers." in page and "Skipped, by reason" in page
    assert figure(page, "answers this run") == "0" and figure(page, "items") == "2"


def test_a_run_whose_items_a_later_run_took_over_keeps_its_own_spend_and_says_so(tmp_path):
    store = Store(tmp_path)
    first = store.begin_run(JOB, None)
    add(store, first, [{"id": "a", "cost": 0.25}])
    store.finish_run(first, 0, None, "out.csv", "out-report.csv", store.totals(JOB, first))
    later = store.begin_run(JOB, None)
    with sqlite3.connect(store.directory / "state.db") as db:  # a rerun enrols the item, answered already
        db.execute("UPDATE items SET run_id = ?", (later,))
    db.close()
    report = report_of(store, first)
    assert (report.items_run, report.spent_usd, report.totals.items) == (later, 0.25, 1)
    page = htmlreport.render(report)
    assert f"run {later} has taken its items over since" in page and "exit code 0 (every item ok)" in page
    assert figure(page, "cost this run") == "$0.250000"


def build_big(store: Store, run: int, items: int) -> None:
    """`items` rows in one statement: 2% errors of ~items/200 distinct kinds (a worst case for the
    errors table), 1% skipped, some ids and messages far longer than the page shows."""
    started = _started(store, run)
    with sqlite3.connect(store.directory / "state.db") as db:
        db.execute(
            """WITH RECURSIVE k(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM k WHERE n + 1 < :items)
               INSERT INTO items (job, id, seq, run_id, task, type, model, hash, status, prompt_tokens,
                                  completion_tokens, cost_usd, attempts, latency_s, error, answered)
               SELECT :job, CASE WHEN n % 1000 = 7 THEN '<b>' || n || printf('%.3000c', 'x') ELSE 'item-' || n END,
                      n, :run, 'task-' || (n % 5), 'chat', CASE n % 3 WHEN 0 THEN 'gpt-4o-mini' ELSE 'gpt-4.1' END,
                      'h', CASE WHEN n % 50 = 0 THEN 'error' WHEN n % 97 = 0 THEN 'skipped' ELSE 'ok' END,
                      20 + n % 13, 5 + n % 11, 0.00001 * (1 + n % 7), 1 + (n % 200 = 0),
                      CASE WHEN n % 97 = 0 THEN NULL ELSE 0.2 + ((n * 7919) % 1000) / 400.0 END,
                      CASE WHEN n % 50 = 0 THEN CASE n % 200 WHEN 0 THEN 'HTTP 429: Rate limit reached'
                                                             WHEN 50 THEN 'timeout: no answer in 60 s'
                                                             ELSE 'failure ' || n || ': ' || printf('%.5000c', 'y') END
                           WHEN n % 97 = 0 THEN 'not answered: budget of $5.0000 reached' END,
                      CASE WHEN n % 97 = 0 THEN NULL ELSE :started + n * 0.001 END
               FROM k""",
            {"items": items, "job": JOB, "run": run, "started": started},
        )
    db.close()


def test_the_page_for_200000_items_is_well_under_2_mb_and_does_not_grow_with_the_job(tmp_path):
    sizes = {}
    for items in (20_000, 200_000):
        store = Store(tmp_path / str(items))
        run = store.begin_run(JOB, None)
        build_big(store, run, items)
        started = time.perf_counter()
        page = htmlreport.render(report_of(store, run))
        took = time.perf_counter() - started
        sizes[items] = len(page.encode())
        assert figure(page, "items") == f"{items:,}"
        assert figure(page, "failed") == f"{items // 50:,}"
        assert "more in" in page  # the errors' long tail of kinds is counted, not listed
        store.close()
    print(f"page sizes: {sizes} bytes; 200,000 items gathered and rendered in {took:.1f} s")
    assert sizes[200_000] < 2_000_000
    assert sizes[200_000] < sizes[20_000] * 1.2  # bounded: ten times the items, about the same page


# End to end


def test_a_run_writes_the_page_beside_its_report_and_report_writes_it_again(cli, server, write_job, tmp_path):
    prompts = ["fine", "BAD request", "flaky one", "slow one", "ECHO me", "also fine"]
    # a long timeout: on a busy machine the first answer can take seconds, and its retry would be a 9th request
    job = write_job(chat_job(prompts, limits={"concurrency": 3, "timeout": 30, "max_retries": 3}))
    # ids are untrusted too: one that is markup fails with a 400, so it is an example on the page
    job.write_text(job.read_text().replace("id: p1", "id: <script>p1</script>"), encoding="utf-8")
    faults(server, "400:match=BAD", "500:first=1,match=flaky", "429:first=1,match=slow", "echo-headers:match=ECHO")
    result = cli("run", str(job))
    assert result.exit_code == 1, result.output
    page_path = tmp_path / "out" / "t-report.html"
    assert f"report:  {tmp_path / 'out' / 't-report.csv'}" in result.stderr
    assert f"page:    {page_path}" in result.stderr
    page = page_path.read_text(encoding="utf-8")

    assert [figure(page, k) for k in ("items", "ok", "failed", "skipped", "requests sent")] == ["6", "4", "2", "0", "8"]
    assert "2 errors of 2 kinds" in page
    assert ">HTTP 400 context_length_exceeded<" in page and "<code>&lt;script&gt;p1&lt;/script&gt;</code>" in page
    assert ">HTTP 400<" in page and "Authorization: Bearer ****" in page  # the echoed headers, redacted
    assert SECRET not in page and "<script" not in page
    assert "<title>HTTP 429: 1</title>" in page and "<title>HTTP 500: 1</title>" in page  # retries by cause
    assert re.search(r"<dt>rate-limit waits \(429, 503 waited out\)</dt><dd>1</dd>", page)

    again = tmp_path / "again.html"
    result = cli("report", "1", "--state", str(tmp_path / ".batchgpt"), "--html", str(again))
    assert result.exit_code == 0 and f"run 1 of t: page {again}" in result.stderr
    rewritten = again.read_text(encoding="utf-8")
    assert [figure(rewritten, k) for k in ("items", "ok", "failed")] == ["6", "4", "2"]
    assert "exit code 1 (some items failed)" in rewritten  # known now that the run has finished
    result = cli("report", "t", "--state", str(tmp_path / ".batchgpt"))  # by job name, beside the report
    assert result.exit_code == 0 and f"page {page_path}" in result.stderr
    result = cli("report", "7", "--state", str(tmp_path / ".batchgpt"))
    assert result.exit_code == 2 and "no run '7'" in result.stderr


def test_a_page_that_cannot_be_written_is_found_before_anything_is_sent(cli, server, write_job, tmp_path):
    (tmp_path / "out" / "t-report.html").mkdir(parents=True)
    result = cli("run", str(write_job(chat_job(["a"]))))
    assert result.exit_code == 2 and "t-report.html: it is a folder; nothing was sent" in result.stderr
    assert server.seen == []


# A real browser


def chromium_or_skip() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        if os.environ.get("BATCHGPT_REQUIRE_BROWSER"):
            pytest.fail("chromium is not on PATH (apt-get install chromium)")
        pytest.skip("chromium is not on PATH (apt-get install chromium)")
    return binary


def browse(binary: str, page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Chromium headless on `page`, logging the page's console to stderr as CONSOLE lines."""
    command = [binary, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", "--enable-logging=stderr"]
    command += ["--v=0", f"--user-data-dir={profile}", *args, page.as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)


def console(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def png_pixels(data: bytes) -> tuple[int, int, np.ndarray[Any, Any]]:
    """Width, height and RGB pixels of an 8-bit, non-interlaced PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks, header = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        header = struct.unpack(">IIBBBBB", body) if kind == b"IHDR" else header
        chunks += [body] if kind == b"IDAT" else []
    assert header is not None
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    size = 3 if colour == 2 else 4
    raw = np.frombuffer(zlib.decompress(b"".join(chunks)), dtype=np.uint8).reshape(height, 1 + width * size)
    pixels = np.zeros((height, width * size), dtype=np.uint8)
    above = np.zeros(width * size, dtype=np.uint8)
    for y in range(height):
        kind, line = int(raw[y, 0]), raw[y, 1:]
        if kind == 0:
            row = line.copy()
        elif kind == 1:  # Sub: a running sum along each channel
            row = (np.cumsum(line.reshape(width, size), axis=0, dtype=np.uint64) % 256).astype(np.uint8).ravel()
        elif kind == 2:  # Up
            row = line + above
        else:  # Average and Paeth depend on the byte just rebuilt: byte by byte (few rows use them)
            row = np.array(_unfilter(kind, line.tolist(), above.tolist(), size), dtype=np.uint8)
        pixels[y], above = row, row
    return width, height, pixels.reshape(height, width, size)[:, :, :3]


def _unfilter(kind: int, line: list[int], above: list[int], size: int) -> list[int]:
    row = [0] * len(line)
    for i, value in enumerate(line):
        left, up, corner = (row[i - size], above[i], above[i - size]) if i >= size else (0, above[i], 0)
        if kind == 3:
            guess = (left + up) // 2
        else:
            p = left + up - corner
            near = min((abs(p - left), 0, left), (abs(p - up), 1, up), (abs(p - corner), 2, corner))
            guess = near[2]
        row[i] = (value + guess) & 255
    return row


COLOURS = {  # the charts' fills and strokes (htmlreport.CSS)
    "ok bars": (0x2E, 0x7D, 0x32),
    "cost bars": (0x6A, 0x1B, 0x9A),
    "p50 line": (0x15, 0x65, 0xC0),
    "p95 line": (0xEF, 0x6C, 0x00),
}


def test_the_page_renders_in_a_real_browser_with_its_charts_and_no_console_errors(tmp_path):
    binary = chromium_or_skip()
    # First, that this way of listening hears a console: a page that errs must be caught.
    broken = tmp_path / "broken.html"
    broken.write_text("<!doctype html><title>x</title><script>undefinedFunction()</script>", encoding="utf-8")
    heard = console(browse(binary, broken, tmp_path / "profile0", "--dump-dom").stderr)
    assert any("undefinedFunction" in line for line in heard), "the console check hears nothing"

    store = Store(tmp_path / "state")
    run = store.begin_run(JOB, "jobs/job.yaml")
    rows = [
        {"id": f"i{n}", "latency": 0.5 + (n % 17) / 10 + n / 200, "at": n / 20, "model": ("gpt-4o-mini", "o3")[n % 2]}
        for n in range(400)
    ]
    rows += [{"id": "<script>alert(1)</script>", "status": "error", "error": "HTTP 400 x: <script>alert(2)</script>"}]
    add(store, run, rows)
    page = tmp_path / "report.html"
    htmlreport.write(page, report_of(store, run))

    shot = tmp_path / "shot.png"
    done = browse(binary, page, tmp_path / "profile1", f"--screenshot={shot}", "--window-size=1280,2000")
    assert done.returncode == 0, done.stderr[-2000:]
    assert console(done.stderr) == []  # no script error, nothing blocked by the page's policy
    width, height, pixels = png_pixels(shot.read_bytes())
    assert (width, height) == (1280, 2000)
    assert (pixels != 255).any(axis=2).mean() > 0.03  # not a blank page
    for name, colour in COLOURS.items():
        found = np.all(pixels == colour, axis=2)
        assert found.sum() > 300, f"no {name} in the screenshot"
        rows_with = np.nonzero(found.any(axis=1))[0]
        assert rows_with.min() > 150, f"{name} above the charts"  # in the charts, under the title and cards

    dom = browse(binary, page, tmp_path / "profile2", "--dump-dom")
    assert console(dom.stderr) == []
    assert "<svg" in dom.stdout and "Throughput" in dom.stdout and "<script" not in dom.stdout
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom.stdout  # the id is text in the rendered page


def test_the_page_a_run_writes_has_its_exit_code_and_why_it_stopped(cli, server, write_job, tmp_path):
    """The page was written before the run was finished: after a budget stop it said neither."""
    job = chat_job([f"question number {i}" for i in range(30)], defaults={"model": "gpt-4o-mini", "max_tokens": 200})
    job["limits"] = {"concurrency": 2}
    job["budget_usd"] = 0.00025
    assert cli("run", str(write_job(job))).exit_code == 3
    page = (tmp_path / "out" / "t-report.html").read_text(encoding="utf-8")
    assert "exit code 3 (stopped early)" in page and "stopped early: budget of $0.00025 reached" in page


def test_the_sums_a_run_just_added_up_make_the_same_page_and_stale_ones_are_not_used(tmp_path):
    skips = Store(tmp_path / "skips")
    run = skips.begin_run(JOB, None)
    add(skips, run, [{"id": "a"}, {"id": "c", "status": "skipped", "error": "not sent: budget", "at": None}])
    skipped_only = report_of(skips, run)
    assert (skipped_only.errors.total, skipped_only.skipped.total) == (0, 1)
    store = Store(tmp_path)
    run = store.begin_run(JOB, None)
    add(store, run, [{"id": "a"}, {"id": "b", "status": "error", "error": "HTTP 500: boom"}])
    info = store.run(run)
    assert info is not None
    failed_only = htmlreport.gather(store, info)
    assert (failed_only.errors.total, failed_only.skipped.total) == (1, 0)
    add(store, run, [{"id": "c", "status": "skipped", "error": "not sent: budget", "at": None}])
    sums = htmlreport.Sums(store.totals(JOB, run), store.groups(JOB, run))
    looked_up, given = htmlreport.gather(store, info), htmlreport.gather(store, info, sums)
    assert replace(given, generated=0) == replace(looked_up, generated=0)
    assert looked_up.errors.total == 1 and looked_up.skipped.total == 1  # the groups are looked up when there are any
    wrong = htmlreport.Sums(replace(sums.totals, items=99), [])
    later = store.begin_run(JOB, None)
    with sqlite3.connect(store.directory / "state.db") as db:  # a later run took the items over
        db.execute("UPDATE items SET run_id = ?", (later,))
    db.close()
    taken_over = htmlreport.gather(store, info, wrong)
    assert taken_over.items_run == later and taken_over.totals.items == 3 and len(taken_over.costs) == 1
