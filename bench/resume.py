"""What keeping answers by request costs the run state. A job's items are written through the real
store (enrol, answer, commit every 64 answers, as the engine's commits come); then come a rerun with
nothing changed, a rerun after one row was inserted at the top of a file without ids (every item's
place moves; one request is new), and one with the top two rows deleted (it sends nothing); then one
prompt asked as many times, run against another endpoint and back again. Each is timed with the
store as it is and with its lookup-by-request index dropped (answers then found only where they were
set aside), alternating, best of each, so the index's price is a ratio measured in one run.

    python bench/resume.py                 # 20,000 items, 3 rounds
    python bench/resume.py --items 5000 --rounds 5

Without the index, a rerun after rows were deleted is quadratic: 20,000 items take a minute.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from batchgpt.records import Provider, Request, Result
from batchgpt.store import Store

COMMIT_EVERY = 64


HERE = Provider()
ELSEWHERE = Provider(base_url="http://127.0.0.1:8000/v1")


def request(seq: int, body: int, provider: Provider = HERE) -> Request:
    return Request(
        seq=seq,
        id=f"questions:{seq + 1}",
        task="questions",
        type="chat",
        model="gpt-4o-mini",
        endpoint="/v1/chat/completions",
        body={},
        payload=b"{}",
        hash=f"{body:032x}",
        provider=provider,
    )


def run(store: Store, bodies: list[int], provider: Provider = HERE) -> tuple[float, int]:
    """One run over `bodies` in order: seconds, and how many requests it had to send."""
    started = time.perf_counter()
    run_id = store.begin_run("questions", None)
    sent = 0
    for seq, body in enumerate(bodies):
        wanted = request(seq, body, provider)
        if store.claim(run_id, "questions", wanted):
            sent += 1
            store.record(
                "questions",
                Result(
                    seq=seq,
                    id=wanted.id,
                    task=wanted.task,
                    type=wanted.type,
                    model=wanted.model,
                    status="ok",
                    output=f"answer {body}",
                    prompt_tokens=20,
                    completion_tokens=5,
                    cost_usd=6e-6,
                ),
            )
        if seq % COMMIT_EVERY == 0:
            store.commit()
    store.commit()
    return time.perf_counter() - started, sent


def once(items: int, index: bool) -> tuple[float, float, float, float, float, int]:
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder))
        if not index:
            store._db.execute("DROP INDEX items_by_request")
        bodies = list(range(items))
        first, _ = run(store, bodies)
        again, _ = run(store, bodies)
        inserted, sent = run(store, [items, *bodies])  # one new row at the top: every place moves
        deleted, none = run(store, bodies[1:])  # and the top two rows gone: every place moves up
        assert none == 0
        store.close()
    with tempfile.TemporaryDirectory() as folder:  # one prompt asked `items` times (sampling), then elsewhere
        store = Store(Path(folder))
        if not index:
            store._db.execute("DROP INDEX items_by_request")
        run(store, [0] * items)
        elsewhere, _ = run(store, [0] * items, ELSEWHERE)
        back, none = run(store, [0] * items)
        assert none == 0
        store.close()
    return first, again, inserted, deleted, elsewhere + back, sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    best: dict[bool, list[float]] = {}
    sent: dict[bool, int] = {}
    for _ in range(args.rounds):
        for index in (True, False):
            *times, sent[index] = once(args.items, index)
            best[index] = [min(a, b) for a, b in zip(best.get(index, times), times, strict=True)]
    print(f"{args.items:,} items, best of {args.rounds} rounds (seconds; us an item)")
    for name, n in (
        ("first run", 0),
        ("rerun, nothing changed", 1),
        ("rerun, one row inserted on top", 2),
        ("rerun, two top rows deleted", 3),
        ("identical rows, elsewhere and back", 4),
    ):
        with_index, without = best[True][n], best[False][n]
        print(
            f"  {name:32} {with_index:7.2f} s ({with_index / args.items * 1e6:5.1f} us)   "
            f"without the index {without:7.2f} s   ratio {with_index / without:5.2f}x"
        )
    print(f"  requests the inserted row's rerun sent: {sent[True]:,} (without the index: {sent[False]:,})")


if __name__ == "__main__":
    main()
