"""batchgpt: run large batches of prompts against OpenAI-compatible APIs from declarative job files.

The Python API mirrors the CLI, which is a thin layer over it:

    import batchgpt
    problems = batchgpt.validate("jobs/translate.yaml")
    frame = batchgpt.run("jobs/translate.yaml", concurrency=8)

`import batchgpt` loads nothing heavy: the API (and with it aiohttp, pandas, tiktoken) is imported
on first use of `run` or `validate`, so `batchgpt --help` answers at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .version import __version__

__all__ = ["run", "validate", "__version__"]

if TYPE_CHECKING:
    from .api import run, validate


def __getattr__(name: str) -> Any:
    if name in ("run", "validate"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'batchgpt' has no attribute {name!r}")
