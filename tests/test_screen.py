"""Tables fitted to the terminal: the dry run in 80 columns, and whole off a terminal."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from batchgpt.cli import main
from batchgpt.estimate import COLUMNS

JOBS = sorted((Path(__file__).resolve().parents[1] / "jobs").glob("*.[yj]*"))


def estimate(job: Path, columns: str | None, *extra: str) -> str:
    args = ["estimate", str(job), *extra] + (["--model", "gpt-4o-mini"] if job.suffix == ".jsonl" else [])
    result = CliRunner().invoke(main, args, env={"COLUMNS": columns}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("job", JOBS, ids=[j.name for j in JOBS])
@pytest.mark.parametrize("mode", ["--online", "--batch"])
def test_the_dry_run_fits_80_columns(job: Path, mode: str) -> None:
    shown = estimate(job, "80", mode)
    lines = shown.splitlines()
    assert max(map(len, lines)) <= 80, max(lines, key=len)
    assert "TOTAL" in shown and "cost usd" in shown
    assert not any(line.rstrip().endswith("…") for line in lines)  # nothing is cut


def test_what_is_left_out_is_said_and_the_notes_follow_the_table() -> None:
    shown = estimate(Path(__file__).resolve().parents[1] / "jobs" / "chat.yaml", "80")
    assert "left out to fit 80 columns: prompt tokens, minutes, cost usd batch" in shown
    assert "(--report FILE writes every column)" in " ".join(shown.split())
    assert "notes (completion gpt-3.5-turbo-instruct): batch price: half the online one" in shown


def test_off_a_terminal_the_table_is_whole() -> None:
    from batchgpt.screen import header

    shown = estimate(Path(__file__).resolve().parents[1] / "jobs" / "chat.yaml", None)
    heading = shown.splitlines()[1]  # one line of headers, every column in it
    assert re.split(r"\s{2,}", heading.strip()) == [header(c) for c in COLUMNS]
    assert "left out" not in shown


def test_fit_wraps_headers_then_folds_text_then_drops_the_least_important_first() -> None:
    from batchgpt.screen import Ranking, fit

    cells = {"task": ["faq"], "max_completion_tokens": ["1,600"], "cost_usd_max": ["0.001029"], "notes": ["a b c"]}
    ranking = Ranking(needed=("task", "cost_usd_max"), optional=("max_completion_tokens",), fold=("notes",))
    assert fit(cells, None, ranking).widths == {"task": 4, "max_completion_tokens": 21, "cost_usd_max": 12, "notes": 5}
    roomy = fit(cells, 48, ranking)  # 4 + 21 + 12 + 5 and three gaps of 2
    assert roomy.widths == {"task": 4, "max_completion_tokens": 21, "cost_usd_max": 12, "notes": 5}
    wrapped = fit(cells, 40, ranking)
    assert wrapped.dropped == [] and wrapped.folded == [] and sum(wrapped.widths.values()) + 6 <= 40
    assert wrapped.widths["cost_usd_max"] >= 8 and wrapped.widths["max_completion_tokens"] >= len("completion")
    narrow = fit(cells, 30, ranking)
    assert narrow.folded == ["notes"] and narrow.dropped == []
    narrower = fit(cells, 20, ranking)
    assert narrower.dropped == ["max_completion_tokens"] and list(narrower.widths) == ["task", "cost_usd_max"]
    tiny = fit(cells, 5, ranking)  # the needed go too, the least important first, but never the first
    assert tiny.dropped == ["max_completion_tokens", "cost_usd_max"] and list(tiny.widths) == ["task"]
    unranked = fit({**cells, "extra": ["x" * 30]}, 40, ranking)
    assert unranked.dropped == ["extra"]  # a column ranked nowhere goes before any ranked one


def test_dollars_keep_their_millionths_in_every_usd_column():
    """`runs` showed $0.003968 spent as 0.00 (only columns named cost_* kept six decimals)."""
    from batchgpt.screen import cell

    assert [cell(c, 0.003968) for c in ("spent_usd", "job_cost_usd", "cost_usd_max")] == ["0.003968"] * 3
    assert cell("seconds", 12.345) == "12.35"


def test_long_task_and_model_names_wrap_rather_than_push_every_figure_out():
    from batchgpt.screen import Ranking, fit

    cells = {
        "task": ["a-really-long-task-name-for-testing"],
        "model": ["my-local-llama-3.1-70b-instruct-awq"],
        "requests": ["1"],
        "cost_usd_max": ["0.000003"],
        "cost_usd_expected": ["0.000003"],
    }
    ranking = Ranking(
        needed=("task", "model", "cost_usd_max", "cost_usd_expected", "requests"), names=("task", "model")
    )
    layout = fit(cells, 80, ranking)
    assert list(layout.widths) == list(cells) and layout.dropped == [] and layout.total <= 80


# Each table gives way by importance (issue 28, item 11): at 80 columns the dry run hid its
# worst case's completion tokens and `runs` hid what each run spent.

CHAT = Path(__file__).resolve().parents[1] / "jobs" / "chat.yaml"
WIDTHS = (120, 80, 60)


def table_headers(shown: str, title: str) -> list[str]:
    """The headers of the table under the line starting with `title`, as a person reads them: the
    header lines above its rule, cut into columns where every one of them has two spaces or more."""
    lines = shown.splitlines()
    top = next(n for n, line in enumerate(lines) if line.startswith(title)) + 1
    rule = next(n for n in range(top, len(lines)) if lines[n].startswith("─"))
    block = [line.ljust(len(lines[rule])) for line in lines[top:rule]]
    blank = "".join(" " if all(line[i] == " " for line in block) else "x" for i in range(len(lines[rule])))
    spans = [m.span() for m in re.finditer(r"x+(?: x+)*", blank)]
    return [" ".join(" ".join(line[a:b].split()) for line in block if line[a:b].strip()) for a, b in spans]


def left_out(shown: str) -> list[str]:
    found = re.search(r"left out to fit \d+ columns: (.*?)(?: \(|$)", " ".join(shown.split()))
    return found.group(1).split(", ") if found else []


def assert_nothing_cut(shown: str, width: int, known: list[str], headers: list[str]) -> None:
    """Every line fits, nothing is cut short with an ellipsis, and every header is a whole one."""
    assert max(map(len, shown.splitlines())) <= width, max(shown.splitlines(), key=len)
    assert "…" not in shown
    assert set(headers) <= set(known), headers


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("mode", ["online", "batch"])
def test_the_dry_run_keeps_its_worst_case_and_its_costs_at_every_width(width: int, mode: str) -> None:
    from batchgpt.screen import header

    shown = estimate(CHAT, str(width), f"--{mode}")
    headers = table_headers(shown, "chat-examples: estimate")
    this, other = (
        ("cost usd batch", "cost usd expected") if mode == "batch" else ("cost usd expected", "cost usd batch")
    )
    every = [header(c) for c in COLUMNS]
    assert_nothing_cut(shown, width, every, headers)
    assert {"task", "model", "cost usd max", this, "max completion tokens"} <= set(headers)
    assert headers == [h for h in every if h in headers]  # in the table's own order
    expected_gone = {
        120: [],
        80: ["prompt tokens", "minutes", other],
        60: ["prompt tokens", "minutes", other, "requests"],
    }
    assert left_out(shown) == expected_gone[width]  # the least important first
    assert set(headers) | set(left_out(shown)) == set(every) - {"notes"}  # the notes follow the table
    assert "notes (completion gpt-3.5-turbo-instruct)" in shown
    if mode == "batch":
        plan = table_headers(shown, "batch mode:")
        assert {"file", "requests", "cost usd max"} <= set(plan)
        assert set(plan) | set(left_out(shown.split("batch mode:")[1])) == {
            "file",
            "endpoint",
            "model",
            "requests",
            "inputs",
            "megabytes",
            "cost usd max",
        }


def test_a_long_model_name_wraps_where_it_reads_never_inside_a_word() -> None:
    from batchgpt.screen import broken

    shown = estimate(CHAT, "60").splitlines()
    [at] = [n for n, line in enumerate(shown) if line.startswith("completion")]
    assert "gpt-3.5-turbo- " in shown[at] and shown[at + 1].strip() == "instruct"
    name = "my-local-llama-3.1-70b-instruct-awq"
    lines = broken(name, 14).split("\n")
    assert "".join(lines) == name and max(map(len, lines)) <= 14
    assert all(line[-1] in "-./_" for line in lines[:-1])  # each break comes after a separator
    assert broken("a-name", 14) == "a-name" and broken("x" * 20, 14).replace("\n", "") == "x" * 20


RUNS_HEADERS = ["run", "job", "started", "seconds", "items", "ok", "failed", "skipped", "job tokens"]
RUNS_HEADERS += ["spent usd", "job cost usd", "endpoint", "retries", "exit"]


def listing(*args: str, width: int | None) -> str:
    env = {"COLUMNS": str(width) if width else None, "OPENAI_API_KEY": None}
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("width", WIDTHS)
def test_runs_keep_how_each_ended_and_what_it_spent_at_every_width(
    cli, server, write_job, tmp_path, monkeypatch, width
):
    from conftest import chat_job, faults

    monkeypatch.chdir(tmp_path)  # a short title: "runs in .batchgpt"

    faults(server, "500:first=1,match=flaky")
    assert cli("run", str(write_job(chat_job(["a", "flaky"])))).exit_code == 0
    other = chat_job(["b"], name="another-job-with-a-long-name")
    assert cli("run", str(write_job(other, "other.yaml"))).exit_code == 0
    state = ".batchgpt"

    shown = listing("runs", "--state", state, width=width)
    headers = table_headers(shown, "runs in")
    assert_nothing_cut(shown, width, RUNS_HEADERS, headers)
    assert {"run", "job", "exit", "spent usd", "failed", "ok"} <= set(headers)  # two jobs: the job names a run
    assert set(headers) | set(left_out(shown)) == set(RUNS_HEADERS) - {"retries"}
    assert "retries (1 t): HTTP 500: 1" in " ".join(shown.split())  # the retries follow the table
    if left_out(shown):
        assert "(every column: a wider terminal, or the command piped through `| cat`)" in " ".join(shown.split())

    one_job = listing("runs", str(tmp_path / "job.yaml"), "--state", state, width=width)
    headers = table_headers(one_job, "runs in")
    assert {"run", "exit", "spent usd", "failed", "ok"} <= set(headers)
    if width == 60:
        assert "job" not in headers and "job" in left_out(one_job)  # one job: every row's is the same


def test_a_piped_table_is_whole_as_the_hint_says(cli, server, write_job, tmp_path):
    import os
    import subprocess
    import sys

    from conftest import chat_job

    assert cli("run", str(write_job(chat_job(["a"])))).exit_code == 0
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    command = [sys.executable, "-m", "batchgpt.cli", "runs", "--state", str(tmp_path / ".batchgpt")]
    piped = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    assert table_headers(piped.stdout, "runs in") == RUNS_HEADERS and "left out" not in piped.stdout


@pytest.mark.parametrize("width", WIDTHS)
def test_batches_keep_where_each_stands_at_every_width(cli, server, write_job, tmp_path, monkeypatch, width):
    from conftest import chat_job

    monkeypatch.chdir(tmp_path)

    assert cli("run", str(write_job(chat_job(["a", "b"], mode="batch")))).exit_code == 5  # submitted
    shown = listing("batches", "--state", ".batchgpt", "--all", width=width)
    every = ["batch", "job", "run", "model", "status", "requests", "completed", "failed", "created", "ends"]
    headers = table_headers(shown, "batches in")
    assert_nothing_cut(shown, width, every, headers)
    # the id is whole (it is pasted), and says where its batch stands; its counts when they fit
    assert {"batch", "status"} <= set(headers)
    if width >= 80:
        assert {"completed", "failed", "requests"} <= set(headers)
    assert set(headers) | set(left_out(shown)) == set(every)
    [batch_id] = re.findall(r"^(batch[-_]\S+)", shown, re.MULTILINE)
    assert len(batch_id) > 30  # the mock's ids are as long as the API's
