"""The mock's usage beyond plain text tokens: the kinds the API and relays bill apart, and the
service tier that served a request, each following from the request so that tests can price
them by hand.

- Audio in: an `input_audio` part is heard at 10 tokens a second of its WAV or MP3 (1 per 100 ms,
  as OpenAI's realtime cost guide counts user audio; bill.heard_tokens).
- Audio out: a request whose `modalities` include "audio" is answered aloud as well, at 20 tokens a
  second (1 per 50 ms) of speech at 15 characters a second.
- Cache reads: a request with a `prompt_cache_key` finds all of its messages but the last in the
  cache when they come to 1,024 tokens or more, in steps of 128 (as OpenAI's prompt caching does).
- Cache writes: a content part marked `cache_control` (what relays pass on to providers that bill
  cache writes) is written to the cache: its tokens are `cache_write_tokens`.
- Service tier: the one asked for (`flex`, `priority`, ...); `default` when none or `auto`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from batchgpt.tokens import Counter

from .bill import heard_tokens
from .inputs import media

CACHE_MINIMUM = 1024
CACHE_STEP = 128


@dataclass(frozen=True)
class Extra:
    audio_in: int = 0
    audio_out: int = 0
    cached: int = 0
    cache_write: int = 0
    tier: str = "default"


def extra(body: dict[str, Any], counter: Counter, text: str, messages_key: str = "messages") -> Extra:
    """What a chat (or Responses) request used besides its text tokens."""
    model = str(body.get("model"))
    messages = body.get(messages_key)
    messages = [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []
    parts = [p for m in messages if isinstance(m.get("content"), list) for p in m["content"] if isinstance(p, dict)]
    heard = heard_tokens(media("chat" if messages_key == "messages" else "responses", body))
    written = sum(counter.text(model, str(p.get("text", ""))).tokens for p in parts if p.get("cache_control"))
    cached = 0
    if body.get("prompt_cache_key") and len(messages) > 1:
        prefix = counter.messages(model, messages[:-1]).tokens
        cached = prefix // CACHE_STEP * CACHE_STEP if prefix >= CACHE_MINIMUM else 0
    modalities = body.get("modalities")
    spoken = math.ceil(len(text) / 15 * 20) if isinstance(modalities, list) and "audio" in modalities else 0
    asked = body.get("service_tier")
    tier = str(asked) if asked not in (None, "", "auto") else "default"
    return Extra(heard, spoken, cached, written, tier)


def apply(
    usage: dict[str, Any], more: Extra, prompt: str = "prompt_tokens", completion: str = "completion_tokens"
) -> None:
    """Add `more`'s tokens to a usage object's counts and details (in place)."""
    usage[prompt] += more.audio_in
    usage[completion] += more.audio_out
    usage["total_tokens"] += more.audio_in + more.audio_out
    asked = usage.setdefault(f"{prompt}_details", {})
    asked.update(cached_tokens=more.cached, audio_tokens=more.audio_in)
    if more.cache_write:
        asked["cache_write_tokens"] = more.cache_write
    usage.setdefault(f"{completion}_details", {})["audio_tokens"] = more.audio_out


def billed(body: dict[str, Any], reply: Any) -> dict[str, Any]:
    """What an answer (a chat.Reply) bills, as the server reports it: its model, its usage and
    the service tier it names (for tests to price by hand)."""
    answered = reply.body if isinstance(reply.body, dict) else {}
    streamed = reply.events is not None
    usage = reply.usage if streamed else answered.get("usage")
    tier = reply.tier if streamed else answered.get("service_tier")
    return {"model": body.get("model"), "usage": usage, "service_tier": tier}
