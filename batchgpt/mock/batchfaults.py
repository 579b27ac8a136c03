"""The mock Batch API's faults: what relays, gateways and proxies in front of the Batch API do.

Creations refused with a 429; output files that disagree with their batch (a line left out, a
line written twice with another answer or first with a garbled one, lines for custom_ids the
batch never had); batch objects without `request_counts`; and lists of batches that are empty,
that drop each batch's `metadata` (and `input_file_id`), that say nothing of `has_more`, that
ignore `after`, that list oldest first, or that cut pages short.
A test sets them on `server.batch.faults` while the server runs.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# how GET /batches lists: "paged" as the API does (newest first, `limit` and `after` honoured)
LISTINGS = ("paged", "empty", "no-metadata", "bare", "no-has-more", "ignores-after", "oldest-first")
API_PAGE = 100  # the most a page of the API's list holds, whatever `limit` asks


@dataclass
class BatchFaults:
    missing: int = 0  # answered lines left out of each output file (its last ones)
    duplicate: int = 0  # answered lines written a second time, with another answer
    garbled: int = 0  # answered lines written first with a body in no documented shape, then whole
    foreign: tuple[str, ...] = ()  # custom_ids of lines added to each output file (a copy of its first answer)
    no_counts: bool = False  # batch objects without request_counts
    busy_creates: int = 0  # the next N creations answer 429 (and create nothing)
    listing: str = "paged"
    page_size: int | None = None  # the most a page of the list holds (a relay's own cap)

    def busy(self) -> bool:
        """Whether this creation is refused with a 429."""
        if self.busy_creates <= 0:
            return False
        self.busy_creates -= 1
        return True

    def output(self, lines: list[bytes]) -> list[bytes]:
        """An output file's lines as this server writes them (request_counts were counted before)."""
        if not lines or not (self.missing or self.duplicate or self.garbled or self.foreign):
            return lines
        parsed = [json.loads(line) for line in lines]
        broken = [
            {**line, "id": line["id"] + "_broken", "response": {**line["response"], "body": {"choices": "garbled"}}}
            for line in parsed[: self.garbled]
        ]
        kept = broken + parsed[: max(len(parsed) - self.missing, 0)]
        twice = [_another_answer(line) for line in parsed[: self.duplicate]]
        strays = [
            {**parsed[0], "id": f"batch_req_stray_{n}", "custom_id": custom_id}
            for n, custom_id in enumerate(self.foreign)
        ]
        return [json.dumps(line).encode() + b"\n" for line in kept + twice + strays]

    def shown(self, batch: dict[str, Any]) -> dict[str, Any]:
        """A batch object as this server shows it."""
        return {k: v for k, v in batch.items() if k != "request_counts"} if self.no_counts else batch

    def page(self, newest_first: list[dict[str, Any]], query: Mapping[str, str]) -> dict[str, Any]:
        """One page of GET /batches over these batch objects."""
        listed = (
            [] if self.listing == "empty" else newest_first[::-1] if self.listing == "oldest-first" else newest_first
        )
        after = None if self.listing == "ignores-after" else query.get("after")
        if after:
            ids = [b["id"] for b in listed]
            listed = listed[ids.index(after) + 1 :] if after in ids else []
        limit = min(int(query.get("limit", "20")), self.page_size or API_PAGE, API_PAGE)
        data = [self._entry(b) for b in listed[:limit]]
        body: dict[str, Any] = {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": len(listed) > limit,
        }
        if self.listing == "no-has-more":
            del body["has_more"]
        return body

    def _entry(self, batch: dict[str, Any]) -> dict[str, Any]:
        dropped = {"no-metadata": ("metadata",), "bare": ("metadata", "input_file_id")}.get(self.listing, ())
        return {k: v for k, v in batch.items() if k not in dropped}


def _another_answer(line: dict[str, Any]) -> dict[str, Any]:
    """The same line with another answer (a chat reply's text changed), as a relay's retry writes it."""
    again = copy.deepcopy(line)
    again["id"] += "_again"
    choices = ((again.get("response") or {}).get("body") or {}).get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0].get("message"), dict):
        choices[0]["message"]["content"] = "a second answer"
    return again
