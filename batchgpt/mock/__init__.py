"""The test server: an OpenAI-compatible API on 127.0.0.1 that answers deterministically and
injects faults on demand (`batchgpt mock-server`, and every test that needs an endpoint).

Its rooms, top to bottom:
- server.py: the server's state and wiring; serving.py: how it runs (a thread, or the foreground);
  config.py: its settings (Config), its request log (Seen) and Host, what its routes ask of it.
- The routes: online.py (the POST endpoints), account.py (key, models, billing), files.py (the
  Files API), batch.py and batchinput.py (the Batch API's batches and their input files).
- The requests: reading.py (a body read within its size cap, parsed as a JSON object or a form),
  validate.py (the 400s and 404s, in the API's order), fields.py (each field's type and bounds),
  shapes.py (messages, inputs, tools and formats inside a body).
- The answers: api.py (which path is which kind, and each kind's answer), chat.py and
  streaming.py (chat, completions, Responses), answers.py (embeddings, moderations, images,
  audio), bill.py and usage.py (the counts), cut.py (where max_tokens ends an answer), schema.py
  (structured answers), errors.py (the error body).
- The faults: faults.py (online), batchfaults.py (relays in front of the Batch API); limits.py
  (the per-model rate limits).

It imports only the library's leaf modules (token counting, image sizes), never the runner, the
store, the CLI or the Python API: it stands in for the real API without knowing who calls it.
"""

from .answers import silent_wav
from .api import ENDPOINTS
from .config import Config, Seen
from .faults import ANSWER_FAULTS, FAULT_KINDS, Fault
from .limits import duration
from .server import MockServer

__all__ = [
    "ANSWER_FAULTS",
    "ENDPOINTS",
    "FAULT_KINDS",
    "Config",
    "Fault",
    "MockServer",
    "Seen",
    "duration",
    "silent_wav",
]
