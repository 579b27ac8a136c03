"""The commands that check before a run: `validate` (job files) and `balance` (an endpoint's)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from batchgpt.errors import EXIT_INVALID
from batchgpt.words import count

from .group import _errors_to_exit_codes, _examples, main
from .output import _print_problems


@main.command(
    short_help="Check job files; print every problem at its line.",
    epilog=_examples("batchgpt validate jobs/*.yaml", "batchgpt validate jobs/lines.jsonl --model gpt-4o-mini"),
)
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", metavar="NAME", help="Model for items that set none (JSONL jobs), as for run.")
@_errors_to_exit_codes
def validate(files: tuple[Path, ...], model: str | None) -> None:
    """Check job files; print every problem as FILE:LINE: message (at /pointer), and each warning
    (a model without a known price) as FILE:LINE: warning: message."""
    from batchgpt.jobs import Overrides, checked, models

    problems = []
    for file in files:
        found = checked(file, Overrides(model=model))[1]
        for warning in found.warnings:
            click.echo(models.shown(warning), err=True)
        problems += found.listed()
    if problems:
        _print_problems(problems)
        sys.exit(EXIT_INVALID)
    click.echo(f"{count(len(files), 'job file')} valid", err=True)


@main.command(
    short_help="Show an endpoint's remaining balance, where it tells.",
    epilog=_examples("batchgpt balance jobs/translate.yaml", "batchgpt balance --base-url https://proxy.example/v1"),
)
@click.argument("job", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--base-url", metavar="URL", help="The endpoint (default: the job's, else $OPENAI_BASE_URL).")
@click.option(
    "--ca-bundle",
    metavar="PEM",
    help="CA certificates (PEM) to trust the endpoint by (default: the job's, else $REQUESTS_CA_BUNDLE, "
    "else $SSL_CERT_FILE, else the system's).",
)
@_errors_to_exit_codes
def balance(job: Path | None, base_url: str | None, ca_bundle: str | None) -> None:
    """The remaining balance and usage, where the endpoint keeps the dashboard's billing routes:
    relays (one-api, new-api) do, OpenAI's API does not answer them for API keys."""
    from batchgpt.balance import absent, fetch_balance, shown
    from batchgpt.cli import loop
    from batchgpt.jobs import Overrides, check_trust, load, provider_for
    from batchgpt.providers import api_key

    if job is not None:
        provider = load(job, Overrides(base_url=base_url, ca_bundle=ca_bundle)).provider
    else:
        provider = provider_for(base_url, ca_bundle)  # its URL and bundle checked as a job's are
    check_trust(provider)
    answer = loop.run(fetch_balance(provider, api_key(provider)))
    if isinstance(answer, str):
        click.echo(f"batchgpt: {absent(answer)}", err=True)
        sys.exit(1)
    click.echo(shown(answer))
