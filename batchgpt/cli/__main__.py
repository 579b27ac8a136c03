"""`python -m batchgpt.cli`: the console script, for a checkout without it installed."""

from batchgpt.cli import entry

entry()
