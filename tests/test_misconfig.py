"""A misconfigured run gets one clear message, not a failed row per item (issue 24, items 8-10):
a run whose first answers are all the same refusal stops (online/misconfig.py); a refused key
names its variable, and a variable the job names must be set (jobs/endpoints.py); a base URL
without a scheme or host is refused before anything is sent (providers/urls.py)."""

from __future__ import annotations

import asyncio

import pytest
from conftest import chat_job, faults
from readback import read_results

from batchgpt.errors import EXIT_FAILED_ITEMS, EXIT_INVALID, EXIT_OK, EXIT_STOPPED
from batchgpt.online.misconfig import FIRST_REFUSALS, Watch, refusal
from batchgpt.providers.urls import suggestion, url_problem
from batchgpt.records import Failure, Provider, Request

# ---------------------------------------------------------------- item 8: the first answers


def statuses(server) -> list[int]:
    return [status for _, status in server.answers]


def test_a_base_url_without_v1_stops_the_run_with_one_message(cli, server, write_job, tmp_path):
    concurrency = 16
    path = write_job(chat_job([f"q{i}" for i in range(500)], limits={"concurrency": concurrency, "max_retries": 5}))
    result = cli("run", str(path), "--base-url", f"http://127.0.0.1:{server.port}", base_url=False)
    assert result.exit_code == EXIT_STOPPED
    assert "does the base URL end in /v1?" in result.stderr
    assert "failed after" not in result.stderr  # no warning per item: the stop's message says it
    assert "Traceback" not in result.output
    sent = statuses(server)
    assert set(sent) == {404} and len(sent) <= FIRST_REFUSALS + concurrency  # the first ones, not 500
    rows = read_results(tmp_path / "out" / "t.csv")
    errors = [r for r in rows if r["status"] == "error"]
    assert len(errors) == len(sent)  # the refused ones; the rest are left unsent, for the next run
    assert all(r["status"] == "skipped" and r["attempts"] in ("", "0") for r in rows if r["status"] != "error")

    again = cli("run", str(path))  # a plain rerun at the right URL sends every item, the refused included
    assert again.exit_code == EXIT_OK
    assert [r["status"] for r in read_results(tmp_path / "out" / "t.csv")] == ["ok"] * 500


def test_an_unknown_model_is_named_once(cli, server, write_job, tmp_path):
    faults(server, "model-not-found")
    path = write_job(chat_job([f"q{i}" for i in range(40)], limits={"concurrency": 1, "max_retries": 5}))
    result = cli("run", str(path))
    assert result.exit_code == EXIT_STOPPED
    assert "does not know the model 'gpt-4o-mini'" in result.stderr and "failed after" not in result.stderr
    assert len(server.seen) == FIRST_REFUSALS


def test_a_forbidden_region_says_what_may_be_wrong(cli, server, write_job, tmp_path):
    faults(server, "403")
    path = write_job(chat_job([f"q{i}" for i in range(40)], limits={"concurrency": 4}))
    result = cli("run", str(path))
    assert result.exit_code == EXIT_STOPPED
    assert "country or region" in result.stderr and "permission" in result.stderr
    assert len(server.seen) <= FIRST_REFUSALS + 4


def test_refusals_after_an_answer_are_the_items_own(cli, server, write_job, tmp_path):
    faults(server, "model-not-found:match=BAD")
    path = write_job(chat_job(["fine", "BAD 1", "BAD 2", "BAD 3", "BAD 4"], limits={"concurrency": 1}))
    result = cli("run", str(path))
    assert result.exit_code == EXIT_FAILED_ITEMS  # no stop: the configuration works
    assert result.stderr.count("failed after") == 4
    assert [r["status"] for r in read_results(tmp_path / "out" / "t.csv")] == ["ok"] + ["error"] * 4
    assert "stay failed unless you rerun with --retry-failed" in result.stderr  # not the configuration's fault


def test_refusals_too_few_to_stop_the_run_are_still_told(cli, server, write_job, tmp_path):
    faults(server, "model-not-found")
    path = write_job(chat_job(["a", "b"], limits={"concurrency": 1}))
    result = cli("run", str(path))
    assert result.exit_code == EXIT_FAILED_ITEMS
    assert result.stderr.count("failed after 1 attempt") == 2  # held while they might stop the run, then told
    assert "a plain rerun sends them again" in result.stderr  # nothing answered: the items are not at fault


def failure(status: int, code: str | None = None, message: str = "no", **headers: str) -> Failure:
    return Failure("http", message, status, code, headers=headers or None)


def request(provider: Provider | None = None, model: str = "gpt-4o-mini") -> Request:
    return Request(
        seq=0, id="a", task="chat", type="chat", model=model, endpoint="/chat/completions",
        body={}, payload=b"{}", hash="h", provider=provider or Provider(base_url="http://h:8000"),
    )  # fmt: skip


def test_which_refusals_say_the_run_is_misconfigured():
    assert "does the base URL end in /v1?" in refusal(failure(404), request()).reason
    azure = refusal(failure(404, "DeploymentNotFound"), request(Provider(base_url="https://r", kind="azure")))
    assert "deployment named 'gpt-4o-mini'" in azure.reason
    unknown = refusal(failure(400, None, "The model `gpt-5x` does not exist"), request(model="gpt-5x"))
    assert "'gpt-5x'" in unknown.reason and unknown.kind == (400, None, "gpt-5x")
    assert "country or region" in refusal(failure(403, "unsupported_country_region_territory"), request()).reason
    vllm = refusal(failure(404, "404", "The model `llama-x` does not exist."), request(model="llama-x"))
    ollama = refusal(failure(404, None, 'model "llama3" not found, try pulling it first'), request(model="llama3"))
    assert "'llama-x'" in vllm.reason and "'llama3'" in ollama.reason
    too_long = "This model's maximum context length is 8192 tokens, an invalid request"
    assert refusal(failure(400, "context_length_exceeded", too_long), request()) is None  # the item's own
    assert refusal(failure(404, **{"x-should-retry": "true"}), request()) is None  # the server says to retry
    assert refusal(failure(500), request()) is None and refusal(Failure("timeout", "slow"), request()) is None


def test_a_401_names_the_key_variable_and_says_whether_it_is_set(monkeypatch):
    provider = Provider(base_url="http://h:8000/v1", api_key_env="MY_RELAY_KEY")
    monkeypatch.delenv("MY_RELAY_KEY", raising=False)
    assert "MY_RELAY_KEY is not set" in refusal(failure(401), request(provider)).reason
    monkeypatch.setenv("MY_RELAY_KEY", "")
    assert "MY_RELAY_KEY is empty" in refusal(failure(401), request(provider)).reason
    monkeypatch.setenv("MY_RELAY_KEY", "sk-whatever")
    assert "check the key in MY_RELAY_KEY" in refusal(failure(401), request(provider)).reason


def test_the_third_identical_refusal_before_any_answer_stops_and_another_failure_resets():
    a, b = refusal(failure(404), request()), refusal(failure(403), request())
    watch = Watch()
    assert [watch.heard(x) for x in (a, a, None, a, b, a, a)] == [None] * 7
    assert watch.heard(a) is not None and watch.stopped  # three of a kind in a row
    answered = Watch()
    answered.answered()
    assert all(answered.heard(a) is None for _ in range(5)) and not answered.suspect(a)
    assert Watch().heard(refusal(failure(401), request())) is not None  # the key: at once


def test_while_a_streak_runs_requests_go_one_at_a_time():
    async def go() -> list[str]:
        watch, order = Watch(), []
        assert not watch.gating and await watch.enter() is False
        watch.heard(refusal(failure(404), request()))
        assert watch.gating

        async def attempt(name: str) -> None:
            held = await watch.enter()
            order.append(f"{name} in")
            await asyncio.sleep(0)
            order.append(f"{name} out")
            watch.leave(held)

        await asyncio.gather(attempt("x"), attempt("y"))
        watch.answered()  # an answer: no more gate
        assert not watch.gating and await watch.enter() is False
        return order

    assert asyncio.run(go()) == ["x in", "x out", "y in", "y out"]


# ---------------------------------------------------------------- item 9: the key


def test_a_401_is_sent_once_and_names_the_variable_the_job_names(cli, server, write_job, tmp_path, monkeypatch):
    monkeypatch.setenv("RELAY_KEY", "sk-wrong-KEY-abcdefghijklmnop")
    path = write_job(chat_job(["a", "b", "c"], provider={"api_key_env": "RELAY_KEY"}, limits={"max_retries": 5}))
    result = cli("run", str(path))
    assert result.exit_code == EXIT_STOPPED
    assert "check the key in RELAY_KEY" in result.stderr and "abcdefghijklmnop" not in result.output
    assert len(server.seen) == 1  # never retried, nothing sent after it
    assert read_results(tmp_path / "out" / "t.csv")[0]["attempts"] == "1"


def test_a_401_for_a_key_variable_left_unset_says_so(cli, server, write_job, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")  # a local server needs none, so the run starts; this one wants one
    result = cli("run", str(write_job(chat_job(["a", "b"]))))
    assert result.exit_code == EXIT_STOPPED and "OPENAI_API_KEY is not set" in result.stderr


@pytest.mark.parametrize("value,said", [(None, "not set"), ("", "empty")])
def test_a_key_variable_the_job_names_must_be_set_before_anything_is_sent(
    cli, server, write_job, monkeypatch, value, said
):
    if value is None:
        monkeypatch.delenv("RELAY_KEY", raising=False)
    else:
        monkeypatch.setenv("RELAY_KEY", value)
    path = write_job(chat_job(["a"], provider={"api_key_env": "RELAY_KEY"}))
    result = cli("run", str(path))
    assert result.exit_code == EXIT_INVALID and not server.seen
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "api_key_env" in text)
    assert f"job.yaml:{line}: provider.api_key_env names RELAY_KEY, which is {said}" in result.stderr
    assert "(at /provider/api_key_env)" in result.stderr
    assert cli("run", str(path), "--dry-run").exit_code == EXIT_OK  # a dry run needs no key


# ---------------------------------------------------------------- item 10: base URLs


@pytest.mark.parametrize(
    "url,said",
    [
        ("htp://x", "'htp://x' has the scheme 'htp', which is neither http nor https: write it as http://x/v1"),
        ("localhost:8000", "'localhost:8000' has no scheme: write it as http://localhost:8000/v1"),
        ("api.example.com/v1", "'api.example.com/v1' has no scheme: write it as https://api.example.com/v1"),
        ("http://", "'http://' names no host"),
        ("https://h:99999/v1", "has a port that is not a number from 1 to 65535"),
        ("ftp://me:PASSWORD@h/v1?key=SECRET", "'ftp://h/v1' has the scheme 'ftp'"),  # no credentials shown
        ("http://127.0.0.1:8000/v1", None),
        ("https://api.openai.com/v1", None),
    ],
)
def test_what_a_base_url_needs(url, said):
    found = url_problem(url)
    assert found is None if said is None else said in found
    assert "PASSWORD" not in (found or "") and "SECRET" not in (found or "")
    assert suggestion("localhost:8000") == "http://localhost:8000/v1"


@pytest.mark.parametrize("url", ["htp://x", "localhost:8000", "http://"])
def test_a_bad_base_url_in_the_job_file_is_refused_at_its_line(cli, server, write_job, url):
    path = write_job(chat_job(["a"], provider={"base_url": url}))
    result = cli("run", str(path), base_url=False)
    assert result.exit_code == EXIT_INVALID and not server.answers
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "base_url" in text)
    assert f"job.yaml:{line}: provider.base_url '{url}'" in result.stderr
    assert "(at /provider/base_url)" in result.stderr and "1 problem found" in result.stderr  # once, not twice


def test_a_task_s_own_bad_base_url_is_refused_at_its_line(cli, server, write_job):
    job = chat_job(["a"])
    job["tasks"][0]["provider"] = {"base_url": "localhost:9000"}
    result = cli("run", str(write_job(job)), base_url=False)
    assert result.exit_code == EXIT_INVALID
    assert "write it as http://localhost:9000/v1 (at /tasks/0/provider/base_url)" in result.stderr


def test_a_bad_base_url_option_or_variable_is_refused_before_anything_is_sent(cli, server, write_job, monkeypatch):
    path = write_job(chat_job(["a"], limits={"outage": 60}))
    result = cli("run", str(path), "--base-url", "htp://127.0.0.1:1/v1", base_url=False)
    assert result.exit_code == EXIT_INVALID and "--base-url: 'htp://127.0.0.1:1/v1' has the scheme" in result.stderr
    monkeypatch.setenv("OPENAI_BASE_URL", "localhost:8000")
    result = cli("run", str(path), base_url=False)
    assert result.exit_code == EXIT_INVALID
    assert "$OPENAI_BASE_URL: 'localhost:8000' has no scheme: write it as http://localhost:8000/v1" in result.stderr
    balance = cli("balance", "--base-url", "localhost:8000")
    assert balance.exit_code == EXIT_INVALID and "write it as http://localhost:8000/v1" in balance.stderr
    assert not server.answers and "Traceback" not in result.output + balance.output


def test_the_python_api_refuses_a_bad_base_url_too(server, write_job):
    import batchgpt
    from batchgpt.errors import JobError

    with pytest.raises(JobError, match="--base-url: 'localhost:8000' has no scheme"):
        batchgpt.run(write_job(chat_job(["a"])), base_url="localhost:8000")
    assert not server.answers
