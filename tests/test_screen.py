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
    assert "left out to fit 80 columns: max completion tokens, prompt tokens, cost usd batch" in shown
    assert "(--report FILE writes every column)" in shown.replace("\n", " ")
    assert "notes (completion gpt-3.5-turbo-instruct): batch price: half the online one" in shown


def test_off_a_terminal_the_table_is_whole() -> None:
    from batchgpt.screen import header

    shown = estimate(Path(__file__).resolve().parents[1] / "jobs" / "chat.yaml", None)
    heading = shown.splitlines()[1]  # one line of headers, every column in it
    assert re.split(r"\s{2,}", heading.strip()) == [header(c) for c in COLUMNS]
    assert "left out" not in shown


def test_fit_wraps_headers_then_folds_text_then_drops_in_order() -> None:
    from batchgpt.screen import fit

    cells = {"task": ["faq"], "max_completion_tokens": ["1,600"], "cost_usd_max": ["0.001029"], "notes": ["a b c"]}
    assert fit(cells, None).widths == {"task": 4, "max_completion_tokens": 21, "cost_usd_max": 12, "notes": 5}
    roomy = fit(cells, 48)  # 4 + 21 + 12 + 5 and three gaps of 2
    assert roomy.widths == {"task": 4, "max_completion_tokens": 21, "cost_usd_max": 12, "notes": 5}
    wrapped = fit(cells, 40, drop=["max_completion_tokens"], fold=["notes"])
    assert wrapped.dropped == [] and wrapped.folded == [] and sum(wrapped.widths.values()) + 6 <= 40
    assert wrapped.widths["cost_usd_max"] >= 8 and wrapped.widths["max_completion_tokens"] >= len("completion")
    narrow = fit(cells, 30, drop=["max_completion_tokens"], fold=["notes"])
    assert narrow.folded == ["notes"] and narrow.dropped == []
    narrower = fit(cells, 20, drop=["max_completion_tokens"], fold=["notes"])
    assert narrower.dropped == ["max_completion_tokens"] and list(narrower.widths) == ["task", "cost_usd_max"]


def test_dollars_keep_their_millionths_in_every_usd_column():
    """`runs` showed $0.003968 spent as 0.00 (only columns named cost_* kept six decimals)."""
    from batchgpt.screen import cell

    assert [cell(c, 0.003968) for c in ("spent_usd", "job_cost_usd", "cost_usd_max")] == ["0.003968"] * 3
    assert cell("seconds", 12.345) == "12.35"


def test_long_task_and_model_names_wrap_rather_than_push_every_figure_out():
    from batchgpt.screen import fit

    cells = {
        "task": ["a-really-long-task-name-for-testing"],
        "model": ["my-local-llama-3.1-70b-instruct-awq"],
        "requests": ["1"],
        "cost_usd_max": ["0.000003"],
        "cost_usd_expected": ["0.000003"],
    }
    layout = fit(cells, 80, keep=["task", "model"])
    assert list(layout.widths) == list(cells) and layout.dropped == [] and layout.total <= 80
