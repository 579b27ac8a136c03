"""One rate limit shared by processes through a real Redis."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import SECRET, chat_job

from batchgpt.errors import UsageError
from batchgpt.mock import Config, MockServer
from batchgpt.shared import SharedLimits, redacted


def test_processes_share_one_count(redis_url):
    async def go():
        first, second = SharedLimits(redis_url), SharedLimits(redis_url)  # as two processes would
        try:
            waits = [await limits.take("key:model:requests", 10, 1) for limits in (first, second) * 5]
            other_limit = await first.take("key:other-model:requests", 10, 1)
            return waits, other_limit
        finally:
            await first.close()
            await second.close()

    waits, other_limit = asyncio.run(go())
    assert waits[:9] == [0.0] * 9  # 97% of 10 a second fit in one second's window
    assert waits[9] > 0  # the tenth must wait, whichever process asks
    assert other_limit == 0.0  # another model's limit is its own


def test_an_unreachable_redis_is_a_clear_error_that_shows_no_password(redis_url):
    url = "redis://:hunter2@127.0.0.1:1/0"
    with pytest.raises(UsageError) as caught:
        asyncio.run(SharedLimits.verify(url))
    assert "hunter2" not in str(caught.value) and "127.0.0.1:1" in str(caught.value)
    assert redacted(url) == "redis://***@127.0.0.1:1/0"
    assert redacted("redis://127.0.0.1:1/0?password=hunter2") == "redis://127.0.0.1:1/0"
    asyncio.run(SharedLimits.verify(redis_url))  # a reachable one passes


@pytest.mark.parametrize("url", ["http://127.0.0.1:6379", "unix:///tmp/redis.sock"])
def test_a_shared_limit_that_is_not_a_redis_url_is_refused(cli, write_job, url):
    job = write_job(chat_job(["a"]))
    result = cli("run", str(job), "--shared-limits", url)
    assert result.exit_code == 2 and "redis://" in result.stderr and "Traceback" not in result.output


def start_job(job: Path, base_url: str) -> subprocess.Popen[str]:
    env = {**os.environ, "OPENAI_API_KEY": SECRET}
    return subprocess.Popen(
        [sys.executable, "-m", "batchgpt.cli", "run", str(job), "--base-url", base_url, "--no-progress"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_jobs_on_one_key_stay_within_its_limit_together(redis_url, write_job, tmp_path):
    server = MockServer(Config(api_key=SECRET, rpm=1200, window=1)).start()  # 20 a second
    try:
        jobs = [
            write_job(
                {**chat_job([f"{n}-{i}" for i in range(60)], limits={"rpm": 1200, "shared": redis_url}), "name": n},
                f"{n}.yaml",
            )
            for n in ("one", "two")
        ]
        children = [start_job(job, server.base_url) for job in jobs]
        outputs = [child.communicate(timeout=120) for child in children]
        assert [c.returncode for c in children] == [0, 0], [err for _, err in outputs]
        assert Counter(status for _, status in server.answers)[200] == 120
        assert server.refused() <= 0.03 * len(server.answers)
    finally:
        server.stop()

    async def keys():
        from redis.asyncio import Redis

        client = Redis.from_url(redis_url)
        try:
            return [k.decode() for k in await client.keys("*")]
        finally:
            await client.aclose()

    names = asyncio.run(keys())
    assert names and all(k.startswith("batchgpt:") and SECRET not in k for k in names)
