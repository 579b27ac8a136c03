"""The mock server's Batch API behaves as the shared API facts describe the real one."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from conftest import SECRET

from batchgpt.mock import Fault, MockServer

HEADERS = {"Authorization": f"Bearer {SECRET}"}


def call(server: MockServer, method: str, path: str, body: Any = None, root: str | None = None) -> tuple[int, Any]:
    """(status, JSON or bytes) of one call under /v1 (or under `root`); a `bytes` body is uploaded."""

    async def go() -> tuple[int, Any]:
        url = (root or server.base_url) + path
        async with aiohttp.ClientSession(headers=HEADERS) as session:
            if isinstance(body, bytes):
                form = aiohttp.FormData()
                form.add_field("purpose", "batch")
                form.add_field("file", body, filename="in.jsonl")
                kwargs: dict[str, Any] = {"data": form}
            else:
                kwargs = {"json": body} if body is not None else {}
            async with session.request(method, url, **kwargs) as response:
                raw = await response.read()
                try:
                    return response.status, json.loads(raw)
                except ValueError:
                    return response.status, raw

    return asyncio.run(go())


def line(custom_id: str, content: str, model: str = "gpt-4o-mini", url: str = "/v1/chat/completions") -> dict[str, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": content}]}
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": body}


def submit(server: MockServer, lines: list[Any], endpoint: str = "/v1/chat/completions") -> dict[str, Any]:
    data = b"".join((json.dumps(x) if not isinstance(x, bytes) else x.decode()).encode() + b"\n" for x in lines)
    status, uploaded = call(server, "POST", "/files", data)
    assert status == 200 and uploaded["purpose"] == "batch" and uploaded["bytes"] == len(data)
    status, batch = call(
        server,
        "POST",
        "/batches",
        {"input_file_id": uploaded["id"], "endpoint": endpoint, "completion_window": "24h", "metadata": {"k": "v"}},
    )
    assert status == 200 and batch["status"] == "validating", batch
    return batch  # type: ignore[no-any-return]


def lines_of(server: MockServer, file_id: str) -> list[dict[str, Any]]:
    status, raw = call(server, "GET", f"/files/{file_id}/content")
    assert status == 200
    return [json.loads(x) for x in raw.splitlines()]


def test_a_batch_answers_each_line_as_the_online_route_does(server: MockServer) -> None:
    batch = submit(server, [line("b", "second"), line("a", "first")])
    status, done = call(server, "GET", f"/batches/{batch['id']}")
    assert status == 200 and done["status"] == "completed" and done["error_file_id"] is None
    assert done["request_counts"] == {"total": 2, "completed": 2, "failed": 0} and done["metadata"] == {"k": "v"}
    output = {x["custom_id"]: x for x in lines_of(server, done["output_file_id"])}
    online = call(server, "POST", "/chat/completions", line("a", "first")["body"])[1]
    assert output["a"]["response"]["status_code"] == 200 and output["a"]["error"] is None
    assert output["a"]["response"]["body"]["choices"] == online["choices"]
    assert output["a"]["response"]["body"]["usage"] == online["usage"]


def test_an_invalid_file_fails_validation_naming_its_lines(server: MockServer) -> None:
    batch = submit(
        server,
        [
            line("a", "x"),
            line("a", "again"),
            line("c", "x", url="/v1/embeddings"),
            line("d", "x", model="gpt-4o"),
            b"{not json",
        ],
    )
    done = call(server, "GET", f"/batches/{batch['id']}")[1]
    assert done["status"] == "failed" and done["output_file_id"] is None
    assert [(e["code"], e["line"]) for e in done["errors"]["data"]] == [
        ("duplicate_custom_id", 2),
        ("url_mismatch", 3),
        ("model_mismatch", 4),
        ("invalid_json_line", 5),
    ]


def test_error_lines_carry_the_online_error_and_expired_lines_batch_expired(server: MockServer) -> None:
    server.config.batch_expire = 0.5
    server.config.faults = [Fault.parse("400:match=BAD")]
    batch = submit(server, [line("a", "fine"), line("b", "BAD"), line("c", "late"), line("d", "late")])
    done = call(server, "GET", f"/batches/{batch['id']}")[1]
    assert done["status"] == "expired" and done["request_counts"] == {"total": 4, "completed": 1, "failed": 1}
    errors = {x["custom_id"]: x for x in lines_of(server, done["error_file_id"])}
    assert set(errors) == {"b", "c", "d"}
    assert errors["c"]["response"] is None and errors["c"]["error"]["code"] == "batch_expired"
    assert errors["b"]["response"]["status_code"] == 400 and errors["b"]["response"]["body"]["error"]["message"]


def test_a_batch_in_progress_can_be_cancelled_one_that_ended_cannot(server: MockServer) -> None:
    server.config.batch_delay = 3600
    batch = submit(server, [line(str(n), "x") for n in range(4)])
    server.batch.batches[batch["id"]].created -= 1800
    status, cancelling = call(server, "POST", f"/batches/{batch['id']}/cancel")
    assert status == 200 and cancelling["status"] == "cancelling"
    done = call(server, "GET", f"/batches/{batch['id']}")[1]
    assert done["status"] == "cancelled" and done["request_counts"]["completed"] == 2
    assert {x["error"]["code"] for x in lines_of(server, done["error_file_id"])} == {"batch_cancelled"}
    status, refused = call(server, "POST", f"/batches/{batch['id']}/cancel")
    assert status == 400 and "cancelled" in refused["error"]["message"]


def test_batches_are_listed_newest_first_a_page_at_a_time(server: MockServer) -> None:
    made = [submit(server, [line("a", str(n))])["id"] for n in range(3)]
    first = call(server, "GET", "/batches?limit=2")[1]
    assert [b["id"] for b in first["data"]] == made[::-1][:2] and first["has_more"]
    rest = call(server, "GET", f"/batches?limit=2&after={first['last_id']}")[1]
    assert [b["id"] for b in rest["data"]] == [made[0]] and not rest["has_more"]


def test_azure_batch_routes_need_an_api_version_and_take_azure_urls(server: MockServer) -> None:
    root = server.base_url[: -len("/v1")] + "/openai"
    status, missing = call(server, "GET", "/batches", root=root)
    assert status == 400 and missing["error"]["code"] == "missing_api_version"
    status, listed = call(server, "GET", "/batches?api-version=2024-10-21", root=root)
    assert status == 200 and listed["data"] == []


def test_a_wrong_key_gets_401_and_an_unknown_file_404(server: MockServer) -> None:
    async def go() -> int:
        async with aiohttp.ClientSession(headers={"Authorization": "Bearer sk-wrong-000000000"}) as session:
            async with session.get(server.base_url + "/batches") as response:
                return response.status

    assert asyncio.run(go()) == 401
    assert call(server, "GET", "/files/file-nope/content")[0] == 404
    creation = {"input_file_id": "file-nope", "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    status, _ = call(server, "POST", "/batches", creation)
    assert status == 404


def test_output_faults_leave_out_double_and_add_lines_while_the_counts_say_otherwise(server: MockServer) -> None:
    server.batch.faults.missing = 1
    server.batch.faults.duplicate = 1
    server.batch.faults.foreign = ("nobody",)
    server.batch.faults.garbled = 1
    batch = submit(server, [line("a", "one"), line("b", "two"), line("c", "three")])
    done = call(server, "GET", f"/batches/{batch['id']}")[1]
    assert done["request_counts"] == {"total": 3, "completed": 3, "failed": 0}  # counted before the fault
    written = lines_of(server, done["output_file_id"])
    assert [x["custom_id"] for x in written] == ["a", "a", "b", "a", "nobody"]  # c left out
    garbled, first, again = (written[n]["response"]["body"] for n in (0, 1, 3))
    assert garbled == {"choices": "garbled"} and first["choices"][0]["message"]["content"] == "Echo: one"
    assert again["choices"][0]["message"]["content"] == "a second answer"
    assert len({x["id"] for x in written}) == 5


def test_a_batch_object_without_request_counts(server: MockServer) -> None:
    server.batch.faults.no_counts = True
    batch = submit(server, [line("a", "one")])
    assert "request_counts" not in batch
    assert "request_counts" not in call(server, "GET", f"/batches/{batch['id']}")[1]


def test_a_busy_server_refuses_a_creation_with_429_and_creates_nothing(server: MockServer) -> None:
    server.batch.faults.busy_creates = 1
    status, uploaded = call(server, "POST", "/files", json.dumps(line("a", "x")).encode() + b"\n")
    body = {"input_file_id": uploaded["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    status, refused = call(server, "POST", "/batches", body)
    assert status == 429 and refused["error"]["code"] == "rate_limit_exceeded" and not server.batch.batches
    assert call(server, "POST", "/batches", body)[0] == 200 and len(server.batch.batches) == 1


def listed(server: MockServer, query: str = "") -> dict[str, Any]:
    status, body = call(server, "GET", f"/batches{query}")
    assert status == 200
    return body  # type: ignore[no-any-return]


def test_lists_of_batches_as_relays_give_them(server: MockServer) -> None:
    made = [submit(server, [line("a", str(n))])["id"] for n in range(3)]
    faults = server.batch.faults
    faults.listing = "empty"
    assert listed(server)["data"] == [] and not listed(server)["has_more"]
    faults.listing = "no-metadata"
    assert all("metadata" not in b and b["input_file_id"] for b in listed(server)["data"])
    faults.listing = "bare"
    assert all("metadata" not in b and "input_file_id" not in b for b in listed(server)["data"])
    faults.listing = "no-has-more"
    page = listed(server, "?limit=2")
    assert "has_more" not in page and [b["id"] for b in page["data"]] == made[::-1][:2]
    faults.listing = "ignores-after"
    assert [b["id"] for b in listed(server, f"?limit=2&after={made[2]}")["data"]] == made[::-1][:2]
    faults.listing = "oldest-first"
    page = listed(server, "?limit=2")
    assert [b["id"] for b in page["data"]] == made[:2] and page["has_more"]
    assert [b["id"] for b in listed(server, f"?limit=2&after={made[1]}")["data"]] == [made[2]]
    faults.listing, faults.page_size = "paged", 1
    page = listed(server, "?limit=100")
    assert [b["id"] for b in page["data"]] == [made[2]] and page["has_more"]
