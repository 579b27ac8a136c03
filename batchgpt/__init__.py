"""batchgpt: run large batches of prompts against OpenAI-compatible APIs from declarative job files.

The Python API mirrors the CLI, which is a thin layer over it:

    import batchgpt
    problems = batchgpt.validate("jobs/translate.yaml")
    frame = batchgpt.run("jobs/translate.yaml", concurrency=8)
"""

from __future__ import annotations

__version__ = "0.1.0"

from .api import run, validate  # noqa: E402

__all__ = ["run", "validate", "__version__"]
