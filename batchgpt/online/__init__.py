"""The online backend: a job's requests sent one call each (or packed), paced, retried and
committed as they are answered. The lifecycle (batchgpt/lifecycle.py) wires it and runs it."""
