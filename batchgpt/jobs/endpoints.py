"""Where a job's requests go and how they get in, checked before anything is sent, each problem
reported where the value was given (the job file's line, the option, the environment variable):

- each base URL (the job file's `provider.base_url`, a task's, --base-url, $OPENAI_BASE_URL) has an
  http or https scheme and a host (providers.urls);
- each CA bundle (`provider.ca_bundle`, relative to the job file; --ca-bundle, to the current
  folder) is a readable file of PEM certificates, and its path is made absolute for the run;
- each key variable a job file names (`provider.api_key_env`) is set when a run starts
  (`check_ready`; validating and a dry run need no key), and so is a CA bundle an environment
  variable names for an https server.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from batchgpt.errors import JobError, Problem, UsageError
from batchgpt.providers import provider_from
from batchgpt.providers.trust import bundle_of, bundle_problem, uses_tls
from batchgpt.providers.urls import url_problem
from batchgpt.records import Provider
from batchgpt.schema import JsonPath, pointer

from .job import Job, KeyVariable, Overrides
from .problems import Problems

BASE_URL_ENV = "OPENAI_BASE_URL"


def schema_message(doc: Any, path: JsonPath, message: str) -> str:
    """The schema's complaint about a value, or, for a base URL, what is wrong with it and the URL
    it probably meant (the schema only says it does not match ^https?://)."""
    if path[-1:] != ("base_url",):
        return message
    value = _at(doc, path)
    said = url_problem(value) if isinstance(value, str) else None
    return f"provider.base_url {said}" if said else message


def checked(
    given: Mapping[str, Any], settled: dict[str, Any], overrides: Overrides, base_dir: Path, problems: Problems
) -> dict[str, Any]:
    """`settled` (the job's settings, the overrides in) with each CA bundle's path absolute, once
    every base URL and CA bundle of the job file `given` and of the overrides has been checked."""
    _check_urls(given, overrides.base_url, problems)
    option = overrides.ca_bundle
    if option:
        bundle = str(Path(option).expanduser().absolute())
        _check_bundle(bundle, problems, "--ca-bundle")
        settled = {**settled, "provider": {**(settled.get("provider") or {}), "ca_bundle": bundle}}
    for path, value in _provider_values(given, "ca_bundle"):
        if option and path[0] == "provider":
            continue  # the option's bundle replaces the job's: that one is never read
        if path in problems.bad:
            continue
        bundle = str((base_dir / Path(value).expanduser()).absolute())
        _check_bundle(bundle, problems, path)
        if isinstance(_at(settled, path[:-1]), Mapping):  # else left out for a problem of its own
            settled = _with(settled, path, bundle)
    return settled


def key_variables(given: Mapping[str, Any], problems: Problems) -> tuple[KeyVariable, ...]:
    """The key variables the job file names, each with its line."""
    return tuple(
        KeyVariable(value, problems.file, problems.line_of(path), path)
        for path, value in _provider_values(given, "api_key_env")
        if path not in problems.bad
    )


def check_ready(job: Job) -> None:
    """Raise, before a run sends anything, for a key variable the job file names that is unset or
    empty (JobError, at its line), and for a CA bundle an environment variable names for an
    https server that cannot be read (UsageError)."""
    unset = [_unset(variable) for variable in job.key_variables if not os.environ.get(variable.name)]
    if unset:
        raise JobError(unset)
    for provider in {job.provider, *(task.provider for task in job.tasks)}:
        check_trust(provider)


def check_trust(provider: Provider) -> None:
    """Raise UsageError when the CA bundle an environment variable names for this provider's https
    server cannot be used (the setting's is checked with the job)."""
    bundle = bundle_of(provider)
    if bundle is None or not bundle.source.startswith("$") or not uses_tls(provider):
        return
    problem = bundle_problem(bundle.path)
    if problem is not None:
        raise UsageError(
            f"{bundle.source}: {problem}; it names the CA certificates an https server is checked against: "
            "point it at a PEM file, or unset it. Nothing was sent"
        )


def provider_for(base_url: str | None, ca_bundle: str | None) -> Provider:
    """The provider a command without a job reaches (`batchgpt balance --base-url`), its URL and
    bundle checked as a job's are; raises UsageError."""
    problems = Problems("<command line>")
    _check_urls({}, base_url, problems)
    bundle = str(Path(ca_bundle).expanduser().absolute()) if ca_bundle else None
    if bundle:
        _check_bundle(bundle, problems, "--ca-bundle")
    if problems.count:
        raise UsageError("; ".join(str(p) for p in problems.listed()))
    return provider_from({"ca_bundle": bundle} if bundle else {}, base_url)


def _unset(variable: KeyVariable) -> Problem:
    state = "empty" if variable.name in os.environ else "not set"
    return Problem(
        variable.file,
        variable.line,
        f"provider.api_key_env names {variable.name}, which is {state}: set it to the endpoint's API key "
        "(--dry-run needs none)",
        pointer(variable.path),
    )


def _check_urls(given: Mapping[str, Any], option: str | None, problems: Problems) -> None:
    for path, value in _provider_values(given, "base_url"):
        said = url_problem(value)
        if said and path not in problems.bad:
            problems.refused(path, f"provider.base_url {said}")
    job_level = isinstance((given.get("provider") or {}).get("base_url"), str)
    if option:
        _report_url(option, problems, "--base-url")
    elif not job_level and os.environ.get(BASE_URL_ENV):
        _report_url(os.environ[BASE_URL_ENV], problems, f"${BASE_URL_ENV}")


def _report_url(url: str, problems: Problems, source: str) -> None:
    said = url_problem(url)
    if said:
        problems.add(said, file=source)


def _check_bundle(bundle: str, problems: Problems, where: JsonPath | str) -> None:
    problem = bundle_problem(bundle)
    if problem is None:
        return
    if isinstance(where, str):
        problems.add(f"{problem}: --ca-bundle names the CA certificates (PEM) to trust the server by", file=where)
    else:
        problems.refused(where, f"provider.ca_bundle: {problem} (a path relative to the job file)")


def _provider_values(given: Mapping[str, Any], key: str) -> Iterator[tuple[JsonPath, str]]:
    """Each text the job file gives `key` under a `provider:`, the job's and each task's."""
    provider = given.get("provider")
    if isinstance(provider, Mapping) and isinstance(provider.get(key), str):
        yield ("provider", key), provider[key]
    tasks = given.get("tasks")
    for index, task in enumerate(tasks if isinstance(tasks, list) else ()):
        own = task.get("provider") if isinstance(task, Mapping) else None
        if isinstance(own, Mapping) and isinstance(own.get(key), str):
            yield ("tasks", index, "provider", key), own[key]


def _at(doc: Any, path: JsonPath) -> Any:
    for step in path:
        try:
            doc = doc[step]
        except (KeyError, IndexError, TypeError):
            return None
    return doc


def _with(doc: Any, path: JsonPath, value: str) -> Any:
    """`doc` with `value` at `path` (a provider's key), copying only the containers on the way."""
    head, rest = path[0], path[1:]
    if isinstance(doc, list):
        assert isinstance(head, int)
        copied = list(doc)
        copied[head] = _with(doc[head], rest, value)
        return copied
    return {**doc, head: _with(doc[head], rest, value) if rest else value}
