"""balance.py against hostile servers: a redirect is not followed, to another host or the same one,
and what the command prints of it holds the key in no encoding."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from conftest import SECRET, faults
from leaks import leaks


@contextmanager
def another_host() -> Iterator[tuple[str, socket.socket]]:
    """A listening socket that answers nothing: a connection to it would wait in its backlog."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1", listener
    finally:
        listener.close()


def connected(listener: socket.socket) -> bool:
    try:
        listener.accept()[0].close()
    except BlockingIOError:
        return False
    return True


@pytest.mark.parametrize("redirect", ["redirect-key", "307", "301"])
def test_balance_follows_no_redirect_to_another_host_and_prints_no_form_of_the_key(cli, server, redirect):
    # A relay redirected the billing routes to a URL holding the key (plain, percent-encoded byte by
    # byte, in base64 as "Bearer KEY" and URL-safe): `balance` printed it.
    faults(server, redirect)
    with another_host() as (elsewhere, listener):
        server.config.redirect_to = elsewhere
        result = cli("-v", "balance", "--base-url", server.base_url)
        assert not connected(listener)  # the key, and the request, went nowhere else
    assert result.exit_code == 1 and "redirected to http://127.0.0.1:" in result.stderr
    assert "does not follow redirects" in result.stderr and "Traceback" not in result.output
    assert not leaks((result.output + result.stderr).encode(), SECRET)


def test_balance_follows_no_redirect_on_the_same_host_either(cli, server):
    # aiohttp would send Authorization again to the same host: batchgpt follows none, so a
    # redirect there (the mock's /moved/v1, which would answer 404) is reported, not taken.
    faults(server, "redirect-key")
    result = cli("balance", "--base-url", server.base_url)
    assert result.exit_code == 1 and f"redirected to {server.base_url.removesuffix('/v1')}/moved/v1/" in result.stderr
    assert "404" not in result.stderr and not leaks((result.output + result.stderr).encode(), SECRET)
