"""`output: {bom: true}` and `--bom` (issue 28, item 6): CSV results and reports for Excel, with one
byte-order mark at their start however often a rerun, a resume or an export writes them again."""

from __future__ import annotations

import pandas as pd
from conftest import chat_job, faults

BOM = b"\xef\xbb\xbf"
PROMPTS = ["你好", "谢谢 FAIL", "再见"]


def marks(path) -> int:
    data = path.read_bytes()
    assert data.startswith(BOM), data[:20]
    return data.count(BOM)


def test_a_job_asking_for_bom_writes_its_csvs_with_one_through_a_resume(cli, server, write_job, tmp_path):
    faults(server, "500:match=FAIL")
    job = chat_job(PROMPTS, output={"bom": True})
    job["limits"].update(max_retries=0, timeout=30)
    path = write_job(job)
    assert cli("run", str(path)).exit_code == 1  # one item failed: the next run sends it again
    sent = len(server.seen)
    results, report = tmp_path / "out" / "t.csv", tmp_path / "out" / "t-report.csv"
    assert marks(results) == 1 and marks(report) == 1
    faults(server)
    assert cli("run", str(path)).exit_code == 0
    assert marks(results) == 1 and marks(report) == 1
    frame = pd.read_csv(results)
    assert list(frame.columns[:2]) == ["job", "task"] and frame["output"].tolist() == [f"Echo: {p}" for p in PROMPTS]
    assert "谢谢 FAIL" in [s.body["messages"][0]["content"] for s in server.seen[sent:]]  # the failed one, again


def test_bom_is_off_unless_asked_and_the_flag_asks_for_it(cli, server, write_job, tmp_path):
    path = write_job(chat_job(PROMPTS))
    assert cli("run", str(path)).exit_code == 0
    assert not (tmp_path / "out" / "t.csv").read_bytes().startswith(BOM)
    sent = len(server.seen)
    assert cli("run", str(path), "--bom", "--out", str(tmp_path / "x.csv")).exit_code == 0
    assert marks(tmp_path / "x.csv") == 1
    assert len(server.seen) == sent  # the second run wrote its files again, from the answers it had


def test_export_writes_a_bom_when_asked(cli, server, write_job, tmp_path):
    path = write_job(chat_job(PROMPTS, output={"bom": True}))
    assert cli("run", str(path)).exit_code == 0
    assert cli("export", str(path), "--out", str(tmp_path / "plain.csv")).exit_code == 0
    assert not (tmp_path / "plain.csv").read_bytes().startswith(BOM)
    assert cli("export", str(path), "--bom").exit_code == 0
    assert marks(tmp_path / "out" / "t.csv") == 1
    assert (tmp_path / "out" / "t.csv").read_bytes() == BOM + (tmp_path / "plain.csv").read_bytes()
