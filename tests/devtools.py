"""A page measured in headless Chromium over the DevTools protocol, at a given viewport.

The report's page may run no script (its Content-Security-Policy forbids it), so its layout is
read from outside: Chromium is started with a DevTools port, the page is loaded in a viewport
emulated at the given width (a phone's with `mobile`), and expressions are evaluated in it.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

PHONE = 375  # CSS pixels: an iPhone SE, 12 mini or 13 mini, the narrowest phones in common use


@dataclass(frozen=True)
class Viewport:
    width: int
    height: int
    mobile: bool


def measure(binary: str, page: Path, profile: Path, viewport: Viewport, expressions: dict[str, str]) -> dict[str, Any]:
    """Each expression's value (JSON-able) on `page` loaded at `viewport`, with what the page
    logged to its console under "console"."""
    command = [binary, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", "--remote-debugging-port=0"]
    command += [f"--user-data-dir={profile}", "about:blank"]
    browser = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port = _port(profile, browser)
        return asyncio.run(_measure(port, page, viewport, expressions))
    finally:
        browser.terminate()
        try:
            browser.wait(10)
        except subprocess.TimeoutExpired:
            browser.kill()
            browser.wait(10)


def _port(profile: Path, browser: subprocess.Popen[bytes]) -> int:
    """The DevTools port Chromium chose, from the file it writes in its profile."""
    written = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 60
    while not written.is_file() or not written.read_text().strip():
        assert browser.poll() is None, f"chromium exited with {browser.returncode}"
        assert time.monotonic() < deadline, "chromium wrote no DevTools port"
        time.sleep(0.05)
    return int(written.read_text().split()[0])


async def _measure(port: int, page: Path, viewport: Viewport, expressions: dict[str, str]) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/json/list") as answer:
            target = next(t for t in await answer.json() if t["type"] == "page")
        async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            session = _Session(ws)
            await session.call("Page.enable")
            await session.call("Runtime.enable")
            await session.call("Log.enable")
            await session.call(
                "Emulation.setDeviceMetricsOverride",
                width=viewport.width,
                height=viewport.height,
                deviceScaleFactor=2 if viewport.mobile else 1,
                mobile=viewport.mobile,
            )
            await session.call("Page.navigate", url=page.as_uri())
            await session.event("Page.loadEventFired")
            found: dict[str, Any] = {}
            for name, expression in expressions.items():
                result = await session.call("Runtime.evaluate", expression=expression, returnByValue=True)
                assert "exceptionDetails" not in result, result
                found[name] = result["result"].get("value")
            found["console"] = session.console
            return found


class _Session:
    """Commands sent and their answers matched by id; console messages kept as they come."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 0
        self.console: list[str] = []
        self.events: list[str] = []

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        await self.ws.send_str(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = await self._receive()
            if message.get("id") == self.next_id:
                assert "error" not in message, message
                result: dict[str, Any] = message["result"]
                return result

    async def event(self, method: str) -> None:
        while method not in self.events:
            await self._receive()

    async def _receive(self) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.receive_str(), 60))
        method = message.get("method")
        if method is not None:
            self.events.append(method)
        if method == "Runtime.consoleAPICalled":
            self.console.append(" ".join(str(a.get("value", a.get("description"))) for a in message["params"]["args"]))
        elif method == "Runtime.exceptionThrown" or method == "Log.entryAdded":
            self.console.append(json.dumps(message["params"])[:500])
        return message
