"""The limits on what a job source may hold, and `Parsed`, what reading a YAML or JSON job gives.

Both the reader (source.py) and the YAML loader behind it (yamldoc.py) need these; they live
here, below both, so neither imports the other's module for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from batchgpt.schema import JsonPath

# A YAML or JSON job is read whole, at some 650 bytes of memory a node from text to validated
# job: the node bound keeps the worst accepted one near 130 MB and 2 s, and refuses a bigger one
# while composing, before its tree exists; the byte bound refuses a huge file before reading it.
# Bigger batches belong in JSONL or items_from, which are streamed.
MAX_YAML_BYTES = 16 * 2**20
MAX_YAML_NODES = 200_000
MAX_YAML_EXPANDED = 2_000_000  # nodes counted once per alias that reaches them: an alias bomb stops here
MAX_DEPTH = 100  # levels of nesting; orjson writes at most 254, and deeper structures recurse in Python
STREAMED = "put the items in a JSONL job or an items_from file (both are streamed)"


@dataclass(frozen=True)
class Parsed:
    """A job file read: its document, the line of every key and value, the values left out."""

    document: Any
    lines: dict[JsonPath, int]
    blanks: list[JsonPath]  # where a value JSON cannot carry was left out (as None)
