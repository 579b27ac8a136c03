"""A job's settings, each declared once: in the job schema (schemas/job.schema.json).

A setting is a property of the schema outside `tasks`: `limits.rpm`, `provider.base_url`,
`defaults.model`. Its schema says its type and bounds, `description` what it means, `default`
what it is when a job leaves it out, and `x-option`, where the command line can override it,
the option: `name` (the `Overrides` field and, with `-` for `_`, the flag), `metavar`,
`estimate` (whether `batchgpt estimate` takes it too; a text is the help it has there) and, for a
choice, `flags` (a flag for each value, with its help). The command line's options and the
README's Settings table are derived from it here; the parser reads the same schema.

    python -m batchgpt.settings          # regenerate README.md's Settings table after an edit

This module reads the schema with the json module alone: the command line imports it to build
its options, and `batchgpt --help` stays quick.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

_NOT_SETTINGS = ("tasks",)
README_START = "<!-- settings: generated from schemas/job.schema.json by `python -m batchgpt.settings` -->"
README_END = "<!-- end of settings -->"


@cache
def job_schema() -> dict[str, Any]:
    """The job schema. A wheel carries schemas/ inside the package (pyproject maps it to
    batchgpt/schemas); a checkout or an editable install reads the top-level folder itself."""
    here = Path(__file__).resolve().parent
    for folder in (here / "schemas", here.parent / "schemas"):
        candidate = folder / "job.schema.json"
        if candidate.is_file():
            loaded: dict[str, Any] = json.loads(candidate.read_text("utf-8"))
            return loaded
    raise FileNotFoundError("job.schema.json is missing from the batchgpt installation")


@dataclass(frozen=True)
class Option:
    """How the command line overrides a setting (the schema's `x-option`)."""

    name: str  # the Overrides field, and batchgpt.run's keyword
    metavar: str | None = None
    estimate: bool | str = False  # offered by `estimate` too; a text is its help there
    flags: Mapping[str, str] = field(default_factory=dict)  # a choice as flags: value -> help

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class Setting:
    """One setting of a job file, as the schema declares it."""

    path: tuple[str, ...]  # ("limits", "rpm")
    schema: Mapping[str, Any]  # its own schema: type, bounds, description, default
    option: Option | None

    @property
    def name(self) -> str:
        return ".".join(self.path)

    @property
    def description(self) -> str:
        return str(self.schema.get("description", ""))

    @property
    def default(self) -> Any:
        return self.schema.get("default")


@cache
def settings() -> tuple[Setting, ...]:
    """Every setting, in the schema's order; a group (`limits`, `provider`, `defaults`, `output`)
    gives its members, a free-form object (`pricing`, `headers`, `params`) is one setting."""
    schema = job_schema()
    found: list[Setting] = []
    for key, node in schema["properties"].items():
        if key not in _NOT_SETTINGS:
            found.extend(_walk((key,), node, schema["$defs"]))
    return tuple(found)


def _walk(path: tuple[str, ...], node: Mapping[str, Any], defs: Mapping[str, Any]) -> list[Setting]:
    members = _resolved(node, defs).get("properties")
    if isinstance(members, dict) and members:
        return [setting for key, child in members.items() for setting in _walk((*path, key), child, defs)]
    option = node.get("x-option")
    return [Setting(path, node, Option(**option) if option else None)]


def _resolved(node: Mapping[str, Any], defs: Mapping[str, Any]) -> Mapping[str, Any]:
    """A node, or the definition its `$ref` names."""
    ref = node.get("$ref")
    return defs[ref.rsplit("/", 1)[-1]] if isinstance(ref, str) else node


def overrides() -> tuple[Setting, ...]:
    """The settings the command line can override, in the schema's order."""
    return tuple(setting for setting in settings() if setting.option is not None)


def defaults(group: str) -> dict[str, Any]:
    """The declared defaults of a group's settings (`limits`): {name: default}."""
    return {s.path[-1]: s.default for s in settings() if s.path[:-1] == (group,) and s.default is not None}


def kind(schema: Mapping[str, Any]) -> str:
    """A setting's type and bounds in words: `integer 1..10000`, `number > 0`, `online, batch`."""
    if "enum" in schema:
        return ", ".join(str(value) for value in schema["enum"])
    types = schema.get("type", "object")
    words = " or ".join(types) if isinstance(types, list) else str(types)
    low = schema.get("minimum")
    high = schema.get("maximum")
    if "exclusiveMinimum" in schema:
        return f"{words} > {schema['exclusiveMinimum']}"
    if low is not None and high is not None:
        return f"{words} {low}..{high}"
    if low is not None:
        return f"{words} >= {low}"
    return words


def readme_table() -> str:
    """README.md's Settings table, as `python -m batchgpt.settings` writes it."""
    lines = ["| setting | type | default | command line | meaning |", "|---|---|---|---|---|"]
    for setting in settings():
        flags = _flags(setting.option) if setting.option else ""
        default = (
            "" if setting.default is None else f"`{json.dumps(setting.default)}`".replace('`"', "`").replace('"`', "`")
        )
        meaning = setting.description.replace("|", "\\|").replace("<", "&lt;")
        lines.append(f"| `{setting.name}` | {kind(setting.schema)} | {default} | {flags} | {meaning} |")
    return "\n".join(lines)


def _flags(option: Option) -> str:
    if option.flags:
        return ", ".join(f"`--{value}`" for value in option.flags)
    return f"`{option.flag} {option.metavar}`" if option.metavar else f"`{option.flag}`"


def with_table(readme: str) -> str:
    """The README with its Settings table (between README_START and README_END) regenerated."""
    start, end = readme.index(README_START) + len(README_START), readme.index(README_END)
    return f"{readme[:start]}\n{readme_table()}\n{readme[end:]}"


def main() -> None:
    """Regenerate README.md's Settings table in place (a checkout's README)."""
    readme = Path(__file__).resolve().parents[1] / "README.md"
    text = readme.read_text("utf-8")
    updated = with_table(text)
    if updated != text:
        readme.write_text(updated, "utf-8")
    print(f"{readme}: Settings table {'regenerated' if updated != text else 'already current'}", file=sys.stderr)


if __name__ == "__main__":
    main()
