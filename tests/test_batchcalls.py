"""Calls to the Batch API's files and batches routes go through the one retry policy (retry.py):
a 429 is waited out as its retry-after says, a 401 is not tried again. A small front on 127.0.0.1
answers the faults and hands every other request to the mock server; the runner waits on a fake
sleep, so nothing here waits for real."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from conftest import SECRET, chat_job

from batchgpt.batch.runner import BatchParts, BatchRunner
from batchgpt.estimate import Estimator
from batchgpt.jobs import Overrides, load
from batchgpt.media import MediaWriter
from batchgpt.mock import MockServer
from batchgpt.pricing import Pricing
from batchgpt.progress import Progress
from batchgpt.runoptions import RunOptions
from batchgpt.store import Store


class Front:
    """Answers `faults[(method, route)]` (a list of (status, headers), used up in order) itself and
    forwards everything else to the mock server; `seen` lists each request as 'METHOD route'."""

    def __init__(self, target: str):
        self.target = target.rstrip("/").removesuffix("/v1")  # the requests carry their /v1
        self.faults: dict[tuple[str, str], list[tuple[int, dict[str, str]]]] = {}
        self.seen: list[str] = []
        self.url = ""
        self._loop = asyncio.new_event_loop()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        route = "/batches/ID" if request.path.startswith("/v1/batches/batch") else request.path.removeprefix("/v1")
        self.seen.append(f"{request.method} {route}")
        waiting = self.faults.get((request.method, route))
        if waiting:
            status, headers = waiting.pop(0)
            code = "rate_limit_exceeded" if status == 429 else "invalid_api_key"
            body = {"error": {"message": f"HTTP {status} from the front", "type": "requests", "code": code}}
            return web.json_response(body, status=status, headers=headers)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with aiohttp.ClientSession() as session:
            async with session.request(
                request.method, self.target + request.path_qs, data=await request.read(), headers=headers
            ) as answer:
                body = await answer.read()
                return web.Response(status=answer.status, body=body, content_type=answer.content_type)

    def start(self) -> Front:
        ready = threading.Event()

        async def serve() -> None:
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/v1"  # type: ignore[union-attr]
            ready.set()

        threading.Thread(target=self._serve, args=(serve,), daemon=True).start()
        ready.wait(10)
        return self

    def _serve(self, serve: Any) -> None:
        self._loop.run_until_complete(serve())
        self._loop.run_forever()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)

    async def _shutdown(self) -> None:
        await self._runner.cleanup()
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)


@pytest.fixture
def front(server: MockServer) -> Iterator[Front]:
    proxy = Front(server.base_url).start()
    yield proxy
    proxy.stop()


def batch_run(
    front: Front, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **limits: float
) -> tuple[BatchRunner, list[float], dict[str, str]]:
    """One batch-mode run of two items through the front, --wait with instant polls; (runner,
    the seconds it slept, each item's status)."""
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    job = load(
        {
            **chat_job(["one", "two"], mode="batch", limits={"timeout": 30, **limits}),
            "output": {"results": str(tmp_path / "r.csv")},
        },
        Overrides(base_url=front.url),
    )
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    pricing = Pricing(job.pricing, job.provider.base_url)

    def online(part: Any) -> Any:
        raise AssertionError("chat items all go into batches")

    parts = BatchParts(pricing, Estimator(pricing), MediaWriter(tmp_path / "media"), online, sleep, lambda: 0.0)
    store = Store(tmp_path / "state")
    run_id = store.begin_run(job.name, None)
    folder = tmp_path / "state" / "batches"
    folder.mkdir(parents=True)
    with Progress(job.name, job.count, bar=False, stream=io.StringIO()) as progress:
        runner = BatchRunner(job, store, run_id, RunOptions(wait=True, poll=30), False, progress, folder, parts)
        asyncio.run(runner.run())
    statuses = {row["id"]: row["status"] for row in store.results(job.name, run_id)}
    store.close()
    return runner, slept, statuses


def test_a_429_on_the_files_and_batches_routes_is_waited_as_its_retry_after_says(front, tmp_path, monkeypatch):
    front.faults[("POST", "/files")] = [(429, {"retry-after": "7"})]
    front.faults[("GET", "/batches/ID")] = [(429, {"retry-after-ms": "2500"})]
    runner, slept, statuses = batch_run(front, tmp_path, monkeypatch)
    assert statuses == {"p0": "ok", "p1": "ok"}
    assert front.seen.count("POST /files") == 2 and front.seen.count("POST /batches") == 1
    assert slept[0] == 7.0  # as told, not a fixed second
    assert 2.5 in slept[1:]  # the poll after the first (slept[1] is the wait between polls)
    assert runner.retries == {"HTTP 429": 2} and runner.refused == 2 and runner.halt is None


def test_a_retry_after_past_the_jobs_patience_is_waited_only_that_long(front, tmp_path, monkeypatch):
    """As online: a server-told wait is capped by limits.patience (issue 24, item 2); the Batch
    API's calls waited up to 300 s whatever the job said."""
    front.faults[("POST", "/files")] = [(429, {"retry-after": "4000"})]
    runner, slept, statuses = batch_run(front, tmp_path, monkeypatch, patience=20)
    assert statuses == {"p0": "ok", "p1": "ok"}
    assert slept[0] == 20.0


def test_a_401_on_the_files_route_is_not_tried_again(front, tmp_path, monkeypatch):
    front.faults[("POST", "/files")] = [(401, {}), (401, {}), (401, {})]
    runner, slept, statuses = batch_run(front, tmp_path, monkeypatch)
    assert set(statuses.values()) <= {"skipped", "submitted"} and "ok" not in statuses.values()
    assert front.seen.count("POST /files") == 1 and "POST /batches" not in front.seen
    assert slept == [] and not runner.retries
    assert runner.halt is not None and "refused the key" in runner.halt
