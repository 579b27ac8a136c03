"""The words of batch mode: its exit codes, the statuses a batch row goes through, and its limits."""

from __future__ import annotations

EXIT_SUBMITTED = 5  # batches are open: run again to collect them
EXIT_UNRESOLVED = 7  # whether a batch was created cannot be told: `batchgpt batches JOB --adopt/--lost`
ENDED = frozenset({"completed", "failed", "expired", "cancelled"})
COMPLETION_WINDOW = "24h"
COLLECT_LINES = 200_000  # items collected per walk of the job (memory grows with them, ~1 KB each)
FOLDER = "batches"  # under the state directory: files being written, uploaded or downloaded
HELD = "held"  # an item this run does not send (cancelled, failed for good here, or out of retries)
# A batch row's status before the API names one: "ready" once its file is uploaded, "creating" from
# just before the creation is sent until it is answered (then a crash leaves it unknown whether the
# batch exists); rows from before "ready" was written say "uploaded", which is as unknown.
READY, CREATING = "ready", "creating"
