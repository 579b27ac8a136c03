"""The command line: a thin click layer over the library that maps errors to exit codes.

Exit codes: 0 all ok, 1 some items failed, 2 invalid job, usage or state, 3 stopped early (quota,
authentication, budget), 4 locked by another run, 5 batches still open, 6 a write failed after the
run began (a full disk; the answers are kept), 130/143 interrupted.

`main` is the click group (group.py); each command lives in the module of its concern and joins
the group when this package imports it; `entry` (process.py) is the console script.
"""

from __future__ import annotations

from . import check, estimate, history, mock, run  # noqa: F401  # each registers its commands on main
from .group import main
from .process import entry

__all__ = ["entry", "main"]
