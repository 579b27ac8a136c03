"""redact.py: every secret a provider holds, out of whatever a server sends, in every encoding a
server may echo it in; and end to end, a run against a relay that echoes the request's headers in
all of them leaves none in any file, log, state or page."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from conftest import SECRET, chat_job, faults
from leaks import encodings, leaks

from batchgpt.records import Provider
from batchgpt.redact import REDACTED, Redactor, Secrets

TOKEN = "gw-SECRET-0123456789"
GATEWAY = f"Bearer {TOKEN}"
PROVIDER = Provider(headers=(("cf-aig-authorization", GATEWAY), ("x-flag", "1")))


# Unit


@pytest.mark.parametrize("secret", [SECRET, TOKEN])
@pytest.mark.parametrize("name", list(encodings(SECRET)))
def test_every_encoding_of_every_secret_is_redacted_in_text_and_bytes(secret, name):
    redact = Redactor(PROVIDER, SECRET)
    echoed = encodings(secret)[name]
    assert leaks(echoed.encode(), secret)  # the judge sees it...
    text = f"Bad request. Headers received: x-key: {echoed}; flag 1"
    for shown in (redact.text(text).encode(), redact.raw(text.encode())):
        assert not leaks(shown, secret), shown  # ...and no longer once redacted
        assert REDACTED.encode() in shown and shown.startswith(b"Bad request. Headers received: x-key: ")
        assert shown.endswith(b"; flag 1")  # the rest of the text stays


def test_a_secret_nested_deeper_than_the_expression_reaches_takes_its_whole_string():
    redact = Redactor(PROVIDER, SECRET)
    every_byte = encodings(SECRET)["url-all"]
    nested = "".join(f"%{b:02X}" for b in every_byte.encode())  # every byte of every byte
    assert redact.text(f"key {nested}") == REDACTED
    raw = json.dumps({"message": f"key {nested}", "n": 1}).encode()
    assert redact.escaped(redact.raw(raw))  # the JSON is then decoded and each string redacted
    assert redact.tree(json.loads(raw)) == {"message": REDACTED, "n": 1}


def test_a_json_escaped_key_is_redacted_in_the_raw_bytes_and_the_json_stays_valid():
    redact = Redactor(PROVIDER, SECRET)
    escaped = "".join(f"\\u{ord(c):04x}" for c in SECRET)
    raw = b'{"error": {"message": "bad key ' + escaped.encode() + b'", "code": null}}'
    assert json.loads(redact.raw(raw)) == {"error": {"message": "bad key ****", "code": None}}


def test_text_that_holds_no_secret_is_left_alone():
    redact = Redactor(PROVIDER, SECRET)
    plain = [
        "It rose 50%, see https://example.com/a%20b?q=1+2 and C:\\path",
        json.dumps({"content": 'caf\u00e9 \u4e2d\u6587 </p> "quoted"\n'}, ensure_ascii=True),
        base64.b64encode(bytes(range(256)) * 40).decode(),  # an image's base64: no stretch of the key by chance
    ]
    for text in plain:
        assert redact.text(text) == text and redact.raw(text.encode()) == text.encode()
        assert not redact.escaped(text.encode())


def test_short_secrets_are_found_plain_and_as_bearer_base64_only():
    redact = Secrets(["k3y-42x"])
    assert redact.text("keys k3y-42x and k3y%2D42x") == "keys **** and ****"
    bearer = base64.b64encode(b"Bearer k3y-42x").decode()
    assert redact.text(f"auth {bearer}") == f"auth {REDACTED}{bearer[-2:]}"  # what remains holds no byte of it
    assert Secrets(["abc"]).text("abc") == "abc"  # a three-letter "secret" would mangle every answer


def test_every_secret_a_provider_holds_is_one():
    provider = Provider(
        base_url="https://relay.example/v1?api_key=query-SECRET-9&api-version=2024-10-21",
        headers=(("Ocp-Apim-Subscription-Key", "apim-SECRET-1"), ("Cookie", "session=cookie-SECRET-2")),
        proxy="http://me:proxy-PASSWORD-1@proxy:3128",
    )
    redact = Redactor(provider, "azure-api-key-0123", proxy="http://env:env-PROXY-PW@corp:8080")
    for secret in ("query-SECRET-9", "apim-SECRET-1", "session=cookie-SECRET-2", "proxy-PASSWORD-1", "env-PROXY-PW"):
        for name, echoed in encodings(secret).items():
            assert not leaks(redact.text(f"x {echoed} y").encode(), secret), (secret, name)
    assert redact.text("api-version=2024-10-21") == "api-version=2024-10-21"  # no credential


def test_log_lines_hold_no_encoding_of_the_environments_keys(monkeypatch):
    from batchgpt.logs import Redact

    monkeypatch.setenv("MY_RELAY_TOKEN", SECRET)
    for name, echoed in encodings(SECRET).items():
        assert not leaks(Redact.redacted(f"retrying: {echoed}").encode(), SECRET), name


# End to end


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_run_against_a_relay_echoing_every_encoding_leaves_no_secret_anywhere(cli, server, write_job, tmp_path):
    import pyarrow.parquet as pq

    from batchgpt.mock.echoes import ENCODINGS

    names = [*ENCODINGS, "all"]  # each item its own encoding; "all": every one in one answer
    prompts = [f"{outcome} echo={name}" for name in names for outcome in ("ERR", "OK")]
    job = write_job(
        chat_job(
            prompts,
            provider={"headers": {"cf-aig-authorization": GATEWAY}},
            output={"results": "out/r.jsonl", "report": "out/rep.csv"},
            limits={"concurrency": 4, "timeout": 5, "max_retries": 0},
        )
    )
    faults(server, "echo-encoded:match=ERR", "echo-encoded-answer:match=OK")
    result = cli("-v", "run", str(job), "--log-format", "json")
    assert result.exit_code == 1, result.output
    rows = [json.loads(line) for line in (tmp_path / "out" / "r.jsonl").read_text().splitlines()]
    assert len(rows) == len(prompts) and {r["status"] for r in rows} == {"ok", "error"}
    # every echo arrived, redacted (an error's message is cut at 300 characters, maybe before the key)
    assert all(REDACTED in (r["output"] or r["error"]) or (r["error"] or "").endswith("...") for r in rows)
    for fmt in ("csv", "parquet"):
        out = str(tmp_path / "out" / f"r.{fmt}")
        assert cli("export", "t", "--state", str(tmp_path / ".batchgpt"), "--out", out).exit_code == 0
    outputs = {"cli": (result.output + result.stderr).encode(), **_files(tmp_path / "out")}
    outputs["r.parquet values"] = json.dumps(pq.read_table(tmp_path / "out" / "r.parquet").to_pylist()).encode()
    outputs |= {f"state/{k}": v for k, v in _files(tmp_path / ".batchgpt").items()}
    assert {"r.jsonl", "r.csv", "r.parquet", "rep.csv", "rep.html", "state/state.db"} <= set(outputs)
    for secret in (SECRET, TOKEN):
        assert not [name for name, data in outputs.items() if leaks(data, secret)]


def test_a_failures_repr_shows_no_header_a_server_sent():
    from batchgpt.records import Failure

    failure = Failure("http", "bad request", 400, headers={"x-echo": f"Bearer {SECRET}"})
    assert SECRET not in repr(failure) and "bad request" in repr(failure)


def test_the_price_cache_keeps_no_credential_of_the_base_url():
    from batchgpt.genaiprices import _price_cache, remembered_price

    remembered_price("gpt-4o-mini", "https://user:pw-SECRET-77@relay.example/v1?key=query-SECRET-78")
    cached = _price_cache().read_text(encoding="utf-8")
    assert "relay.example/v1" in cached and "SECRET" not in cached
