"""The fault-injection suite: every fault the mock server offers, thrown at a small run of the real
CLI (`batchgpt run`, which writes the HTML report too) with short settings. Each run must end within BOUND
seconds (a guard against hangs, not a timing), exit with a documented code, print no traceback,
and leave the API key (a distinctive fake one) in no output: not in the results, the cost report,
the HTML report, the log (stderr, JSON, verbose), nor the state store's bytes.

The faults come from the mock's own registries, so that a fault added there is covered here
without a word: FAULT_KINDS (faults.py, the online faults), and the fields of BatchFaults and its
LISTINGS (batchfaults.py, relays in front of the Batch API). Two tables are kept by hand, marked
below: VARIANTS (a fault that only shows in a streamed or structured run) and CONFIG_FAULTS (the
server settings that break things: capacity, rate limits, latency, the batch_* knobs).
"""

from __future__ import annotations

import base64
import dataclasses
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from conftest import chat_job

from batchgpt.cli import main
from batchgpt.mock import FAULT_KINDS, Config, Fault, MockServer
from batchgpt.mock.batchfaults import LISTINGS, BatchFaults
from batchgpt.mock.faults import ANSWER_FAULTS, ERRORS

KEY = "sk-faultsuite-SECRET-4f7c1e9a2b8d"
BOUND = 60.0  # seconds a faulty run may take, at most: generous, for a loaded machine
# exit codes a run documents (batchgpt/errors.py; 5 and 7 are batch mode's)
DOCUMENTED = {0, 1, 2, 3, 4, 5, 6, 7}
# settings that keep every fault short: one retry, quarter-second attempts, half a second of
# patience with rate limits and of nothing but errors before the run stops as an outage
LIMITS = {"concurrency": 2, "timeout": 0.25, "max_retries": 1, "patience": 0.5, "outage": 0.5}
TREE = {  # a recursive schema, so that `schema-deep` has something to nest
    "type": "object",
    "properties": {"name": {"type": "string"}, "child": {"anyOf": [{"$ref": "#"}, {"type": "null"}]}},
    "required": ["name", "child"],
    "additionalProperties": False,
}

# ---- kept by hand: a fault that only shows in a kind of run gets that run too (else a plain one)
VARIANTS = {
    "no-done": "stream",
    "split-emoji": "stream",
    "ignore-stream": "stream",
    "usage-strings": "stream",
    "schema-miss": "schema",
    "refusal": "schema",
    "schema-deep": "schema",
}
# ---- kept by hand: the server's settings that break a run, as (name, Config changes, mode[, marks])
CONFIG_FAULTS: list[tuple[Any, ...]] = [
    ("overloaded", {"capacity": 0}, "plain"),
    ("rate limited", {"rpm": 30, "window": 1}, "plain"),
    # one request in 36 years: its reset header asks for 36 years, patience (0.5 s) caps the wait
    ("a server-told wait past patience", {"rpm": 60 / (36 * 365 * 86400), "window": 60}, "plain"),
    ("a token limit no request fits", {"tpm": 5}, "plain"),
    ("no rate-limit headers", {"rpm": 30, "window": 1, "limit_headers": False, "retry_after": False}, "plain"),
    ("slow", {"latency": 1.5}, "plain"),
    ("a slow batch", {"batch_delay": 1}, "batch"),
    ("batches expire", {"batch_expire": 0.5}, "batch"),
    ("a line fails validation", {"batch_invalid": "p1"}, "batch"),
    ("a creation answered late", {"batch_create_delay": 1.5}, "batch"),
    ("a creation fails", {"batch_create_errors": 1}, "batch"),
    ("listing fails", {"batch_list_errors": 2}, "batch"),
    ("the model is refused", {"batch_refused_models": ("gpt-4o-mini",)}, "batch"),
]
BOUNDS = {"a server-told wait past patience": 5.0}  # a case's own bound, where BOUND is too loose to tell
BATCH_LINE_FAULTS = {*ERRORS, *ANSWER_FAULTS}


def job(mode: str) -> dict[str, Any]:
    """A small job of the kind a fault needs: plain chat, streamed, structured, or batch."""
    base = chat_job(["nest 40 a", "nest 3 b"], limits=LIMITS, budget_usd=1)
    base["defaults"]["max_tokens"] = 20
    if mode == "stream":
        base["defaults"]["stream"] = True
    elif mode == "schema":
        base["tasks"][0]["schema"] = TREE
    elif mode == "batch":
        base["mode"] = "batch"
    return base


def batch_values(field: dataclasses.Field[Any]) -> list[Any]:
    """The values that break a BatchFaults field, from its default (a new kind of field fails here,
    naming itself: give it values)."""
    default = field.default if field.default is not dataclasses.MISSING else field.default_factory()  # type: ignore[misc]
    if field.name == "listing":
        return [listing for listing in LISTINGS if listing != default]
    if isinstance(default, bool):
        return [True]
    if isinstance(default, int) or default is None:
        return [1]
    if isinstance(default, tuple):
        return [("p-stray",)]
    raise AssertionError(f"BatchFaults.{field.name}: the fault suite has no value for it; add one in batch_values")


CASES = [
    *[pytest.param("fault", kind, "plain", id=f"{kind}") for kind in FAULT_KINDS],
    *[
        pytest.param("fault", kind, VARIANTS[kind], id=f"{kind}-{VARIANTS[kind]}")
        for kind in FAULT_KINDS
        if kind in VARIANTS
    ],
    # the faults a Batch API line can get: errors in its error file, broken answers in its output file
    *[pytest.param("fault", kind, "batch", id=f"{kind}-batch") for kind in FAULT_KINDS if kind in BATCH_LINE_FAULTS],
    *[
        pytest.param("batch", (f.name, value), "batch", id=f"batch-{f.name}={value}")
        for f in dataclasses.fields(BatchFaults)
        for value in batch_values(f)
    ],
    *[pytest.param("config", c[1], c[2], id=c[0], marks=c[3] if len(c) > 3 else ()) for c in CONFIG_FAULTS],
]


@pytest.fixture
def mock() -> Iterator[MockServer]:
    server = MockServer(Config(api_key=KEY, hang_s=2)).start()  # past the attempts' timeout, however stretched
    yield server
    server.stop()


def invoke(*args: str, bound: float = BOUND) -> tuple[Result, float]:
    """The CLI's result and how long it took, run on a thread of its own so that a run that hangs
    fails the test at `bound` instead of holding the suite (the CLI's event loop, uvloop's, is not
    one a timeout signal can break into)."""
    got: list[Result] = []
    thread = threading.Thread(
        target=lambda: got.append(CliRunner().invoke(main, list(args), catch_exceptions=True)), daemon=True
    )
    started = time.monotonic()
    thread.start()
    thread.join(bound)
    took = time.monotonic() - started
    assert not thread.is_alive() and got, f"`batchgpt {' '.join(args[:2])}` still running after {bound:g} s"
    return got[0], took


def encodings(secret: str) -> list[bytes]:
    """The key as a leak may carry it: plain, and base64 at each of the three alignments (the part
    that does not depend on the bytes around it)."""
    forms = [secret.encode()]
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + secret.encode())
        forms.append(encoded[4 if shift else 0 : -4])
    return forms


def leaks(texts: dict[str, bytes]) -> list[str]:
    return [f"{name}: {form!r}" for name, data in texts.items() for form in encodings(KEY) if form in data]


def apply(server: MockServer, source: str, fault: Any) -> None:
    if source == "fault":
        server.config.faults = [Fault.parse(fault)]
    elif source == "batch":
        setattr(server.batch.faults, *fault)
    else:
        for name, value in fault.items():
            setattr(server.config, name, value)


@pytest.mark.parametrize(("source", "fault", "mode"), CASES)
def test_every_fault_ends_in_time_with_a_documented_exit_no_traceback_and_no_key(
    mock, tmp_path, monkeypatch, request, source, fault, mode
):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    apply(mock, source, fault)
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job(mode)), encoding="utf-8")
    args = ["-v", "run", str(path), "--base-url", mock.base_url, "--log-format", "json"]
    run, took = invoke(*args, *(["--wait", "--poll", "0.05"] if mode == "batch" else []))
    bound = BOUNDS.get(request.node.callspec.id, BOUND)
    assert took < bound, f"the run took {took:.1f} s"
    assert run.exception is None or isinstance(run.exception, SystemExit), run.output
    assert "Traceback" not in run.output and "Traceback" not in run.stderr, run.output
    assert run.exit_code in DOCUMENTED, run.output
    # the results, the cost report and its HTML page (where the run got to write them), the state store
    written = {str(p.relative_to(tmp_path)): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert any("state.db" in name for name in written)
    assert leaks({"output": run.output.encode(), **written}) == []
