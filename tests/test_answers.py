"""answers.py: an answer read from what a transport received."""

from __future__ import annotations

import json

from conftest import SECRET

from batchgpt.answers import Answer, read_answer
from batchgpt.records import Failure, Provider
from batchgpt.redact import Redactor

JSON = {"content-type": "application/json"}
REDACT = Redactor(Provider(base_url="https://relay.example/v1"), SECRET)


def read(status: int, body: object) -> Answer | Failure:
    return read_answer(status, JSON, json.dumps(body).encode(), REDACT)


def test_a_200_that_is_only_an_error_names_the_servers_message_and_code():
    # Relays answer 200 with an error body; it was read as an answer without `choices` (KeyError).
    error = {"error": {"message": f"upstream quota exhausted for {SECRET}", "code": "quota", "type": "relay_error"}}
    failure = read(200, error)
    assert isinstance(failure, Failure) and failure.status == 200
    assert SECRET not in failure.message
    assert failure.message.startswith("upstream quota exhausted") and failure.code == "quota"
    assert failure.type == "relay_error" and "quota" in failure.describe()
    assert not failure.transient  # the request as sent gets the same answer: not retried


def test_an_answer_that_carries_an_error_beside_its_content_stays_an_answer():
    # A Responses object that failed has `error` beside its id, output and (paid) usage.
    failed = {"id": "resp_1", "object": "response", "status": "failed", "error": {"message": "x"}, "usage": {}}
    assert isinstance(read(200, failed), Answer)
    assert isinstance(read(200, {"choices": [], "error": None}), Answer)
