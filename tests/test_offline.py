"""The suite passes on a machine with no network and no tiktoken cache (issue 28, item 1), with
README's two commands the only set-up: a sample of it, the files where token counts matter most,
run by a child pytest with an empty cache, as a fresh clone offline runs it. Elsewhere the suite
keeps the same rule: a test whose subject is exact counts asks for conftest's `exact_encodings`,
and any other compares with what batchgpt's own counter (or the mock's bill) says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ("tests/test_tokens.py", "tests/test_mock_server.py::test_max_tokens_truncates_with_finish_reason_length")
# what this session's conftest decided, and CI's demand for the encodings: the child decides afresh
DECIDED = ("BATCHGPT_TEST_ENCODINGS_MISSING", "BATCHGPT_TOKENIZER_TIMEOUT", "BATCHGPT_REQUIRE_ENCODINGS")


def test_the_token_tests_pass_with_an_empty_tiktoken_cache(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in DECIDED and not k.startswith("PYTEST_")}
    env.update(TIKTOKEN_CACHE_DIR=str(tmp_path), PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", "-rs", *SAMPLE]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    summary = done.stdout.strip().splitlines()[-1]
    assert " passed" in summary and " skipped" in summary and "failed" not in summary, summary
    # each skip says what it needs and how to have it
    assert f"its cache ({tmp_path}) lacks them: fill it once with `python -m batchgpt.tokens`" in done.stdout
