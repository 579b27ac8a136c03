"""How the mock server runs: an aiohttp application served from a thread of its own, with its own
event loop (for tests, which go on in the foreground), or in the foreground until interrupted
(`batchgpt mock-server`). Stopping it cancels the handlers still hanging."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Callable

from aiohttp import web

# Connections waiting to be accepted, as uvicorn (vLLM's server) allows: with aiohttp's 128, a run
# opening 1,000 at once has most of the rest dropped, and their clients try again a second later.
BACKLOG = 2048


class Serving:
    """An application `make_app` builds, served on a thread from start() until stop()."""

    def __init__(self, make_app: Callable[[], web.Application], tls: ssl.SSLContext | None = None) -> None:
        self._make_app = make_app
        self._tls = tls  # serve https with this certificate; None: plain http
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    def start(self, port: int = 0) -> int:
        """Serve on a thread of its own; returns the port once it is bound."""
        ready = threading.Event()

        def serve() -> None:
            self._loop = loop = asyncio.new_event_loop()
            loop.run_until_complete(self._start(port))
            ready.set()
            loop.run_forever()
            # aiohttp reads files in the loop's default executor: its threads end with the server,
            # not linger in the process (a process with threads does not fork its dry runs)
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

        self._thread = threading.Thread(target=serve, name="mock-server", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self.port

    async def _start(self, port: int, host: str = "127.0.0.1") -> None:
        self._runner = web.AppRunner(self._make_app(), access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, backlog=BACKLOG, ssl_context=self._tls)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        """Stop serving, cancelling handlers still hanging."""
        if self._loop is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        try:
            future.result(10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._thread:
                self._thread.join(10)

    async def _shutdown(self) -> None:
        await self._runner.cleanup()  # type: ignore[union-attr]
        # Handlers still hanging (the `hang` fault) are cancelled, not left to warn at exit.
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)


def serve_forever(app: web.Application, port: int, host: str = "127.0.0.1") -> None:
    """Serve in the foreground until interrupted."""
    web.run_app(app, host=host, port=port, access_log=None, print=None, backlog=BACKLOG)
