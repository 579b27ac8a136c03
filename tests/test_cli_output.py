"""End to end: what the CLI says: its log lines (text and JSON), help, hints to paste, and the console script's exit."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import chat_job, faults
from readback import json_lines


def test_with_json_logs_every_line_on_stderr_is_json_with_a_time(cli, server, write_job, monkeypatch):
    import logging
    import warnings

    from batchgpt import tables

    # A model without a price warns, a 400 warns as its item fails, a 500 is retried (logged with
    # -v, given after the command); another library's warning and a Python warning come too.
    written = tables.write_table  # the report, written by every run

    def noisy(*args: Any, **kwargs: Any) -> None:
        logging.getLogger("asyncio").warning("Unclosed client session")
        warnings.warn("a library's deprecation", DeprecationWarning, stacklevel=1)
        written(*args, **kwargs)

    monkeypatch.setattr(tables, "write_table", noisy)
    faults(server, "400:match=BAD", "500:first=1,match=FLAKY")
    job = write_job(chat_job(["fine", "BAD", "FLAKY"], defaults={"model": "my-local-model"}))
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        result = cli("run", str(job), "--log-format", "json", "-v")
    assert result.exit_code == 1
    records = json_lines(result.stderr)
    events = {(r["level"], r["event"]) for r in records}
    assert {("warning", "log"), ("debug", "log"), ("info", "failed"), ("info", "written")} <= events
    messages = " ".join(r["message"] for r in records)
    assert "retrying p2" in messages and "p1 failed after 1 attempt" in messages
    assert "Unclosed client session" in messages and "a library's deprecation" in messages
    assert all(r["job"] == "t" for r in records)  # every line names its job, library warnings too
    assert records[-1]["event"] == "summary" and records[-1]["exit_code"] == 1 and records[-1]["failed"] == 1


def test_with_json_logs_stops_hints_problems_and_usage_errors_are_json(cli, server, write_job, tmp_path):
    faults(server, "quota:match=QUOTA")
    stopped = cli("run", str(write_job(chat_job(["QUOTA", "b"], limits={"concurrency": 1}))), "--log-format", "json")
    assert stopped.exit_code == 3
    records = json_lines(stopped.stderr)
    assert any(r["event"] == "stopped" and r["level"] == "warning" and "quota" in r["message"] for r in records)
    assert records[-1]["event"] == "summary" and records[-1]["stopped"]

    submitted = cli("run", str(write_job(chat_job(["a"], mode="batch"), "b.yaml")), "--log-format", "json")
    assert submitted.exit_code == 5
    [waiting] = [r for r in json_lines(submitted.stderr) if r["event"] == "waiting"]
    assert waiting["command"].startswith(f"batchgpt run {tmp_path / 'b.yaml'} --batch")

    invalid = write_job({"tasks": [{"type": "chat", "items": [{"prompt": "x", "temperature": 3}]}]}, "bad.yaml")
    problems = json_lines(cli("run", str(invalid), "--log-format", "json").stderr)
    assert {r["event"] for r in problems} == {"problem", "invalid"}
    assert any(r.get("file") == str(invalid) and r.get("line") == 5 and r.get("pointer") for r in problems)

    usage = cli("run", str(invalid), "--log-format", "json", "--budget", "-1")
    assert usage.exit_code == 2
    [record] = json_lines(usage.stderr)
    assert record["event"] == "usage" and "--budget" in record["message"]


def test_a_crash_under_json_logs_is_a_json_line_with_its_traceback() -> None:
    import io
    import sys

    from batchgpt import logs

    stream = io.StringIO()
    logs.setup(log_format="json", stream=stream)
    try:
        try:
            raise RuntimeError("a bug")
        except RuntimeError as exc:
            sys.excepthook(type(exc), exc, exc.__traceback__)
    finally:
        logs.setup()
    [record] = json_lines(stream.getvalue())
    assert record["event"] == "crash" and record["level"] == "critical" and "RuntimeError: a bug" in record["traceback"]
    assert sys.excepthook is sys.__excepthook__  # text logs leave tracebacks as Python prints them


def test_text_logs_carry_a_time_and_the_job(cli, server, write_job):
    import re

    faults(server, "400:match=BAD")
    result = cli("run", str(write_job(chat_job(["fine", "BAD"]))))
    lines = result.stderr.splitlines()
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d "
    assert lines and all(re.match(stamp, line) for line in lines), lines  # the summary and its hints too
    warning = next(line for line in lines if "failed after" in line)
    assert re.match(f"{stamp}t: warning: p1 failed after 1 attempt", warning), warning
    assert re.match(f"{stamp}t: 2 items: 1 ok, 1 failed", lines[-1]), lines[-1]


def test_a_run_starts_with_a_line_naming_the_job_run_endpoint_and_items(cli, server, write_job, tmp_path):
    path = write_job(chat_job(["one", "two"]))
    text = cli("run", str(path))
    assert f"run 1 of t (online): 2 items to {server.base_url}" in text.output
    logged = cli("run", str(path), "--log-format", "json")
    start = next(json.loads(line) for line in logged.output.splitlines() if '"start"' in line)
    assert start["run"] == 2 and start["items"] == 2 and start["endpoints"] == [server.base_url]
    assert isinstance(start["time"], float) and start["job"] == "t"


def test_counts_say_one_in_the_singular_and_separate_thousands(cli, server, write_job):
    one = write_job(chat_job(["BAD"]))
    faults(server, "400:match=BAD")
    estimate = cli("estimate", str(one))
    assert "estimate for 1 item (nothing sent)" in estimate.output
    ran = cli("run", str(one))
    assert "t: 1 item: 0 ok, 1 failed" in ran.stderr and "1 request sent" in ran.stderr
    assert "p0 failed after 1 attempt:" in ran.stderr
    many = write_job(chat_job([f"q{i}" for i in range(1200)]), "many.yaml")
    assert "estimate for 1,200 items (nothing sent)" in cli("estimate", str(many)).output


COMMANDS = ["run", "estimate", "export", "report", "runs", "batches", "cancel", "validate", "balance", "mock-server"]


def narrow(*args: str) -> Any:
    """The CLI in an 80-column terminal."""
    from click.testing import CliRunner

    from batchgpt.cli import main

    return CliRunner().invoke(main, list(args), env={"COLUMNS": "80"}, catch_exceptions=False)


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_fits_80_columns_and_shows_an_example(command):
    result = narrow(*filter(None, [command]), "--help")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert max(map(len, lines)) <= 80, max(lines, key=len)
    examples = lines[lines.index("  Examples:") + 1 :]
    assert examples and all(line.startswith(f"    batchgpt {command}".rstrip()) for line in examples), examples
    checkout = Path(__file__).resolve().parents[1]
    named = {p for line in examples for p in re.findall(r"jobs/[\w./-]+\.(?:yaml|jsonl)", line)}
    assert all((checkout / p).is_file() for p in named), named  # an example to paste runs in the checkout


def test_the_command_list_is_not_cut():
    lines = narrow("--help").output.splitlines()
    listed = lines[lines.index("Commands:") + 1 : lines.index("Commands:") + 1 + len(COMMANDS)]
    assert sorted(line.split()[0] for line in listed) == sorted(COMMANDS)
    assert not any(line.endswith("...") for line in listed), listed


def test_estimate_offers_only_what_an_estimate_reads(write_job):
    shown = narrow("estimate", "--help").output
    for ignored in ("--out", "--max-retries", "--timeout"):
        assert ignored not in shown
    assert "--budget" in shown and "--report" in shown and "--batch" in shown
    result = narrow("estimate", str(write_job(chat_job(["a"]))), "--timeout", "5")
    assert result.exit_code == 2 and "No such option '--timeout'" in result.stderr


def test_an_estimate_says_whether_it_fits_the_budget(write_job):
    # 50 requests at gpt-4o: about $0.14 expected, $0.26 if every answer runs to max_tokens
    job = write_job(chat_job(["a long enough question " * 20] * 50, defaults={"model": "gpt-4o", "max_tokens": 500}))
    tight = narrow("estimate", str(job), "--budget", "0.2")
    assert tight.exit_code == 0 and "warning: the worst case ($0.2" in tight.stderr
    assert "is over the budget of $0.2: the expected $0.1" in tight.stderr
    over = narrow("run", str(job), "--dry-run", "--budget", "0.01")
    assert "warning: over the budget of $0.01: the expected cost is $0.1" in over.stderr
    assert "within the budget of $1: the worst case is $0.2" in narrow("estimate", str(job), "--budget", "1").stderr
    assert "budget" not in narrow("estimate", str(job)).stderr


def test_balance_does_not_offer_a_dry_run_it_lacks(monkeypatch, write_job):
    result = narrow("balance")
    assert result.exit_code == 2 and "no API key: set OPENAI_API_KEY" in result.stderr
    assert "--dry-run" not in result.stderr
    run = narrow("run", str(write_job(chat_job(["a"]))))
    assert run.exit_code == 2 and "(or use --dry-run, which needs none)" in run.stderr


def test_verbose_works_after_the_command_too(cli, server, write_job):
    faults(server, "500:first=1")
    result = cli("run", str(write_job(chat_job(["a"]))), "-v")
    assert result.exit_code == 0 and "retrying p0" in result.stderr


def test_the_mock_server_takes_its_fault_syntax_as_help_writes_it(monkeypatch):
    from batchgpt.mock import Fault, MockServer

    served = []
    monkeypatch.setattr(MockServer, "serve_forever", lambda self, port, host: served.append(self.config.faults))
    result = narrow("mock-server", "--fault", "400,match=x", "--fault", "503:0.5,match=y")
    assert result.exit_code == 0, result.output
    assert served == [[Fault("400", match="x"), Fault("503", rate=0.5, match="y")]]


def pasted(cli, hint: str, where: Path, monkeypatch) -> Any:
    """Run a command the CLI printed, as someone pasting it in another folder would."""
    import shlex

    words = shlex.split(hint)
    assert words[0] == "batchgpt", hint
    monkeypatch.chdir(where)
    return cli(*words[1:], base_url=False)


def test_the_state_is_beside_the_job_file_for_every_command(cli, server, write_job, tmp_path, monkeypatch):
    (tmp_path / "jobs").mkdir()
    write_job(chat_job(["a", "b"]), "jobs/faq.yaml")
    monkeypatch.chdir(tmp_path)  # the checkout: the job is jobs/faq.yaml, its state jobs/.batchgpt
    assert cli("run", "jobs/faq.yaml").exit_code == 0
    assert (tmp_path / "jobs" / ".batchgpt" / "state.db").is_file() and not (tmp_path / ".batchgpt").exists()
    (tmp_path / "jobs" / "out" / "t.csv").unlink()
    by_file = cli("export", "jobs/faq.yaml")
    assert by_file.exit_code == 0, by_file.output
    assert (tmp_path / "jobs" / "out" / "t.csv").is_file()
    assert cli("export", "t", "--state", "jobs/.batchgpt").exit_code == 0
    assert cli("runs", "jobs/faq.yaml").exit_code == 0 and cli("batches", "jobs/faq.yaml").exit_code == 0
    by_name = cli("export", "t")  # a job name says nothing of where its state is
    assert by_name.exit_code == 2
    assert f"no run state in {tmp_path / '.batchgpt'}" in by_name.stderr
    assert "name the job file, or that folder with --state" in by_name.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert cli("export", str(tmp_path / "jobs" / "faq.yaml")).exit_code == 0
    assert "t" in cli("runs", "--state", str(tmp_path / "jobs" / ".batchgpt")).output
    by_number = cli("runs", "1", "--state", str(tmp_path / "jobs" / ".batchgpt"))  # a run number is no job
    assert "no runs of job '1' recorded" in by_number.stderr and "batchgpt report 1" in by_number.stderr


def test_a_batch_runs_hints_work_pasted_in_another_folder(cli, server, write_job, tmp_path, monkeypatch):
    import re

    (tmp_path / "jobs").mkdir()
    write_job(chat_job(["a", "b"], mode="batch"), "jobs/nightly.yaml")
    monkeypatch.chdir(tmp_path)
    submitted = cli("run", "jobs/nightly.yaml", "--state", "state")
    assert submitted.exit_code == 5, submitted.output
    again, listing = re.findall(r"`(batchgpt [^`]+)`", submitted.stderr)
    assert again.startswith(f"batchgpt run {tmp_path / 'jobs' / 'nightly.yaml'} --batch --state {tmp_path / 'state'}")
    assert f"--base-url {server.base_url}" in again  # later runs must reach the same endpoint
    (tmp_path / "elsewhere").mkdir()
    listed = pasted(cli, listing, tmp_path / "elsewhere", monkeypatch)
    assert listed.exit_code == 0 and f"batches in {tmp_path / 'state'}" in listed.output
    collected = pasted(cli, again, tmp_path / "elsewhere", monkeypatch)
    assert collected.exit_code == 0, collected.output


def test_a_bar_is_refused_under_json_logs(cli, write_job):
    result = cli("run", str(write_job(chat_job(["a"]))), "--log-format", "json", "--progress")
    assert result.exit_code == 2
    [record] = json_lines(result.stderr)
    assert record["event"] == "usage" and "--progress" in record["message"]


def test_the_summary_names_the_files_it_wrote_by_their_absolute_paths(cli, write_job, tmp_path, monkeypatch):
    write_job(chat_job(["a"]))
    monkeypatch.chdir(tmp_path)
    result = cli("run", "job.yaml")
    assert f"results: {tmp_path / 'out' / 't.csv'}" in result.stderr
    assert f"report:  {tmp_path / 'out' / 't-report.csv'}" in result.stderr


def test_verbose_pace_lines_read_as_words_not_a_dataclass(cli, server, write_job):
    result = cli("run", str(write_job(chat_job(["a", "b"]))), "-v")
    assert result.exit_code == 0 and "pace of " in result.stderr
    assert "Pace(" not in result.stderr


def test_the_console_script_keeps_exit_codes_and_all_its_output(tmp_path):
    """`entry` leaves the process without the interpreter's teardown: the exit code, and every line
    on stdout (to a pipe) and stderr, still come out."""
    import subprocess
    import sys

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "chat", "prompt": 5}\n')
    listed = subprocess.run(
        [sys.executable, "-m", "batchgpt.cli", "validate", str(bad), "--model", "m"], capture_output=True, text=True
    )
    assert listed.returncode == 2 and f"{bad}:1" in listed.stderr and "Traceback" not in listed.stderr
    good = tmp_path / "good.jsonl"
    good.write_text("".join(f'{{"type": "chat", "prompt": "p{n}", "model": "gpt-4o-mini"}}\n' for n in range(3000)))
    table = subprocess.run(
        [sys.executable, "-m", "batchgpt.cli", "estimate", str(good)], capture_output=True, text=True
    )
    assert table.returncode == 0 and table.stdout.endswith("\n")  # its last line too
    assert any(line.startswith("TOTAL") and "3,000" in line for line in table.stdout.splitlines())
    version = subprocess.run([sys.executable, "-m", "batchgpt.cli", "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("batchgpt")


@pytest.mark.parametrize("closed", [1, 2])
def test_the_console_script_keeps_its_exit_code_with_stdout_or_stderr_closed(tmp_path, closed):
    """Cron and daemons may start it with a descriptor closed (`>&-`): Python then has no
    sys.stdout (or sys.stderr), and `entry` must not trip on it."""
    import subprocess
    import sys

    good = tmp_path / "good.jsonl"
    good.write_text('{"type": "chat", "prompt": "p", "model": "gpt-4o-mini"}\n')
    shell = f"exec {sys.executable} -m batchgpt.cli validate {good} {closed}>&-"
    result = subprocess.run(["sh", "-c", shell], capture_output=True, text=True)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
