"""The test server: an OpenAI-compatible API on 127.0.0.1 that answers deterministically and
injects faults on demand (`batchgpt mock-server`, and every test that needs an endpoint).

It owns the transport and its lifecycle (server.py), what each kind of request answers (api.py
and the answer modules below it), the faults (faults.py), the rate limits (limits.py) and the
Batch API (batch.py). It imports only the library's leaf modules (token counting, image sizes),
never the runner, the store, the CLI or the Python API, so it stands in for the real API without
knowing who calls it.
"""

from .faults import ANSWER_FAULTS, FAULT_KINDS, Fault
from .limits import duration
from .server import ENDPOINTS, Config, MockServer, Seen

__all__ = ["ANSWER_FAULTS", "ENDPOINTS", "FAULT_KINDS", "Config", "Fault", "MockServer", "Seen", "duration"]
