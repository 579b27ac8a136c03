"""The `mock-server` command: the project's OpenAI-compatible test server, to rehearse on."""

from __future__ import annotations

import click

from .group import _errors_to_exit_codes, _examples, main


@main.command(
    "mock-server",
    short_help="Serve a local OpenAI-compatible API to rehearse on.",
    epilog=_examples(
        "batchgpt mock-server --port 8000",
        "batchgpt mock-server --rpm 600 --window 1 --fault 503:0.1",
        "batchgpt mock-server --fault 400,match=BAD --fault 500:first=2",
    ),
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--latency", default=0.0, show_default=True, type=float, help="Seconds before each answer.")
@click.option("--rpm", type=float, help="Requests per minute per model before 429s.")
@click.option("--tpm", type=float, help="Tokens per minute per model before 429s.")
@click.option(
    "--window",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds of the per-minute limits a burst may take (the API enforces over shorter periods).",
)
@click.option("--no-limit-headers", is_flag=True, help="Send no x-ratelimit-* headers, as many proxies.")
@click.option("--no-retry-after", is_flag=True, help="Send no retry-after with rate-limit 429s.")
@click.option("--capacity", type=click.IntRange(min=1), help="Requests in flight before 503 'overloaded'.")
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="KIND[:RATE|:first=N|:for=S][,match=TEXT][,over=N]",
    help="Inject a fault: 500, 503, 429, 429-no-retry-after, quota, quota-relayed, 401, 400, 403, model-not-found, "
    "drop, hang, malformed, echo-headers, 307, 301, echo-encoded, echo-encoded-answer, redirect-key, gzip-bomb, "
    "usage-strings, usage-negative, no-usage, no-done, split-emoji, ignore-stream, schema-miss, refusal, "
    "schema-deep. "
    "Repeatable. '503:0.1' fails 10%; '500:first=2' fails each request's first two attempts; "
    "'429:for=20' refuses everything for 20 s from the first request; 'hang:over=4' holds what arrives "
    "while more than 4 are in flight, then answers (a queuing relay).",
)
@click.option("--seed", default=0, type=int, help="Seed for fault rates.")
@click.option("--api-key", envvar="MOCK_API_KEY", help="Require this key (401 otherwise).")
@click.option(
    "--billing",
    default="100:0",
    show_default=True,
    metavar="LIMIT:USED",
    help="What the billing routes report, in USD; 'none' serves none (404).",
)
@click.option(
    "--batch-delay", default=0.0, show_default=True, type=click.FloatRange(min=0), help="Seconds a batch takes."
)
@click.option(
    "--batch-expire",
    type=click.FloatRange(0, 1),
    metavar="SHARE",
    help="Batches expire with this share of their lines answered (the rest: batch_expired).",
)
@click.option("--batch-invalid", metavar="TEXT", help="Batch lines holding TEXT fail the batch's validation.")
@_errors_to_exit_codes
def mock_server(
    host: str,
    port: int,
    latency: float,
    rpm: float | None,
    tpm: float | None,
    window: float,
    no_limit_headers: bool,
    no_retry_after: bool,
    capacity: int | None,
    faults: tuple[str, ...],
    seed: int,
    api_key: str | None,
    billing: str,
    batch_delay: float,
    batch_expire: float | None,
    batch_invalid: str | None,
) -> None:
    """An OpenAI-compatible server for rehearsing jobs offline and for free."""
    from batchgpt.mock import Config, Fault, MockServer

    try:
        parsed = [Fault.parse(f) for f in faults]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--fault") from None
    try:
        limits = None if billing == "none" else tuple(float(v) for v in billing.split(":"))
        assert limits is None or len(limits) == 2
    except (ValueError, AssertionError):
        raise click.BadParameter("use LIMIT:USED in dollars, e.g. 100:12.5, or none", param_hint="--billing") from None
    config = Config(
        api_key=api_key,
        latency=latency,
        rpm=rpm,
        tpm=tpm,
        window=window,
        limit_headers=not no_limit_headers,
        retry_after=not no_retry_after,
        capacity=capacity,
        faults=parsed,
        seed=seed,
        record=False,
        billing=limits,
        batch_delay=batch_delay,
        batch_expire=batch_expire,
        batch_invalid=batch_invalid,
    )
    click.echo(f"batchgpt mock server on http://{host}:{port}/v1 (Ctrl-C stops it)", err=True)
    MockServer(config).serve_forever(port, host)
