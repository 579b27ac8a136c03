"""An answer turned into result rows: split among the items it answers, its generated files saved,
each row priced as its endpoint bills (at the batch price for a Batch API line), a structured
answer held to its schema. Both backends (online calls and the Batch API) write rows this way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from . import structured
from .budget import unmetered
from .estimate import Estimator
from .media import MediaWriter
from .packing import split
from .pricing import Pricing
from .records import SCHEMA_MISSED, Pack, Request, Result, shortened
from .store import endpoint_of
from .tasks import TASKS, FailedAnswer, MalformedReply


def row_for(request: Request, status: str, **fields: Any) -> Result:
    """A request's result row: where it comes from, its status, and `fields`."""
    return Result(
        seq=request.seq,
        id=request.id,
        task=request.task,
        type=request.type,
        model=request.model,
        status=status,
        **fields,
    )


def system_messages(conversation: Request) -> list[dict[str, Any]]:
    """Where a conversation's history starts: its system message, if any."""
    return [m for m in conversation.body["messages"] if m.get("role") == "system"]


def answer_results(
    pack: Pack,
    data: Any,
    media: MediaWriter,
    pricing: Pricing,
    attempts: int,
    latency_s: float | None,
    ttft_s: float | None = None,
    mode: str = "online",
    estimator: Estimator | None = None,
) -> list[Result]:
    """The results of an answer to a pack (online or a batch's output line): its parts, their
    generated files saved, each priced as its endpoint bills (at the batch price in batch mode),
    or at its worst case when the answer says not what it used (`estimator` bounds it). Raises
    MalformedReply for an answer in a shape no parser foresaw: the server's fault, never a crash."""
    task_type = TASKS[pack.first.type]
    estimator = estimator or Estimator(pricing)
    try:
        parts = split(pack, task_type.parse(data))
    except FailedAnswer as exc:
        return [
            _failed_answer(request, exc, task_type.billing, estimator, attempts, latency_s, mode)
            for request in pack.requests
        ]
    except MalformedReply:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, RecursionError) as exc:
        raise MalformedReply(f"the answer is not in the documented shape ({type(exc).__name__})") from None
    results = []
    for request, part in zip(pack.requests, parts, strict=True):
        output = (
            media.save(request.id, part.media, f"{endpoint_of(request)} {request.hash}") if part.media else part.output
        )
        units = part.units if part.units is not None else request.units
        cost = pricing.charge(
            task_type.billing,
            request.model,
            request.body,
            part.prompt_tokens,
            part.completion_tokens,
            part.cached_tokens,
            units,
            batch=mode == "batch",
            billed=part.billed,
            units_note=None if part.units is not None else request.units_note,
        )
        details = part.details
        if task_type.billing == "tokens" and None in (part.prompt_tokens, part.completion_tokens):
            cost, details = unmetered(estimator.worst_cost(request), details)
        results.append(
            row_for(
                request,
                "ok",
                output=output,
                prompt_tokens=part.prompt_tokens,
                completion_tokens=part.completion_tokens,
                cost_usd=cost,
                attempts=attempts,
                latency_s=latency_s,
                cached_tokens=part.cached_tokens,
                reasoning_tokens=part.reasoning_tokens,
                details=details,
                ttft_s=ttft_s,
                mode=mode,
            )
        )
        schema = structured.schema_of(request.body)
        if schema is not None:
            results[-1] = _checked(results[-1], request, part.stop, schema)
    return results


def added(before: Result, after: Result) -> Result:
    """A re-asked answer's row: the new answer, with every attempt's tokens and cost added up."""

    def tokens(a: int | None, b: int | None) -> int | None:
        return None if a is None and b is None else (a or 0) + (b or 0)

    # A re-ask that got no answer (a transport error, a stop) adds nothing; what was paid stays.
    unpriced = after.status == "ok" and after.cost_usd is None  # answered, but no price known
    cost = None if unpriced or before.cost_usd is None else before.cost_usd + (after.cost_usd or 0.0)
    latency = None if before.latency_s is None else round(before.latency_s + (after.latency_s or 0.0), 4)
    return replace(
        after,
        prompt_tokens=tokens(before.prompt_tokens, after.prompt_tokens),
        completion_tokens=tokens(before.completion_tokens, after.completion_tokens),
        cost_usd=cost,
        cached_tokens=before.cached_tokens + after.cached_tokens,
        reasoning_tokens=before.reasoning_tokens + after.reasoning_tokens,
        attempts=before.attempts + after.attempts,
        latency_s=latency,
        retried=(*before.retried, SCHEMA_MISSED, *after.retried),
    )


def _checked(result: Result, request: Request, stop: str | None, schema: Mapping[str, Any]) -> Result:
    """A structured answer held to its schema: an error when refused or cut short, INVALID (to be
    asked again) when it is not JSON matching the schema, else ok (with its fields as columns)."""
    if stop == "refusal":
        return replace(result, status="error", output=None, error=f"the model refused: {shortened(result.output)}")
    if stop == "length":
        return replace(
            result, status="error", error="the answer was cut at max_tokens (finish_reason length): raise max_tokens"
        )
    try:
        parsed, problem = structured.check(schema, result.output)
    except structured.Unchecked as exc:  # paid for: an error a plain rerun keeps, not asked again
        return replace(result, status="error", error=str(exc))
    if problem is not None:
        return replace(result, status=structured.INVALID, error=problem)
    return replace(result, fields=parsed if request.columns and isinstance(parsed, dict) else None)


def _failed_answer(
    request: Request,
    exc: FailedAnswer,
    billing: str,
    estimator: Estimator,
    attempts: int,
    latency_s: float | None,
    mode: str,
) -> Result:
    """An answer saying its request did not succeed: an error row, with the usage it was billed."""
    reply = exc.reply
    cost = estimator.pricing.charge(
        billing,
        request.model,
        request.body,
        reply.prompt_tokens,
        reply.completion_tokens,
        reply.cached_tokens,
        batch=mode == "batch",
        billed=reply.billed,
    )
    details = None
    if billing == "tokens" and None in (reply.prompt_tokens, reply.completion_tokens):
        cost, details = unmetered(estimator.worst_cost(request), None)
    return row_for(
        request,
        "error",
        prompt_tokens=reply.prompt_tokens,
        completion_tokens=reply.completion_tokens,
        cost_usd=cost,
        attempts=attempts,
        latency_s=latency_s,
        error=str(exc),
        cached_tokens=reply.cached_tokens,
        reasoning_tokens=reply.reasoning_tokens,
        details=details,
        mode=mode,
    )
