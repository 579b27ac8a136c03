"""batchgpt: run large batches of prompts against OpenAI-compatible APIs from declarative job files.

The Python API mirrors the CLI, which is a thin layer over it:

    import batchgpt
    problems = batchgpt.validate("jobs/translate.yaml")
    frame = batchgpt.run("jobs/translate.yaml", concurrency=8)
    frame = await batchgpt.arun("jobs/translate.yaml", stop=batchgpt.Stop())  # on the running loop

`import batchgpt` loads nothing heavy: the API (and with it aiohttp, pandas, tiktoken) is imported
on first use of `run`, `arun` or `validate`, so `batchgpt --help` answers at once. The library
leaves the process alone (signals, gc, the event loop): the command line (cli/) owns it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .version import __version__

__all__ = ["Stop", "arun", "run", "validate", "__version__"]

if TYPE_CHECKING:
    from .api import arun, run, validate
    from .runoptions import Stop


def __getattr__(name: str) -> Any:
    if name in ("arun", "run", "validate"):
        from . import api

        return getattr(api, name)
    if name == "Stop":
        from .runoptions import Stop

        return Stop
    raise AttributeError(f"module 'batchgpt' has no attribute {name!r}")
