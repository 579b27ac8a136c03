"""What redaction costs on a large result set: every answer's bytes through Redactor.raw and
.escaped, as the client does on arrival, against the plain substring search of each secret that
was all it did before every encoding was looked for (issue 24, item 7).

    python bench/redact.py                  # 100,000 answers of about 1.2 KB, the key and a gateway token
    python bench/redact.py -n 20000 --percent 0.2   # a fifth of the answers hold a %XX escape

The answers are chat completions of English text; a share of them hold a URL with %20 (decoded,
then searched again), all hold \\n escapes. Three rounds; the best of each is reported.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable

from batchgpt.records import Provider
from batchgpt.redact import Redactor

KEY = "sk-bench-0123456789abcdefghijklmnop"
GATEWAY = "Bearer gw-bench-0123456789"
WORDS = "the of and to in is that for it as was with be by on not he this are or his from at which but have an".split()


def answers(count: int, percent: float, rng: random.Random) -> list[bytes]:
    made = []
    for i in range(count):
        text = " ".join(rng.choice(WORDS) for _ in range(150)) + "\n\nDone."
        if rng.random() < percent:
            text += " See https://example.com/a%20b."
        answer = {
            "id": f"chatcmpl-{i:032x}",
            "object": "chat.completion",
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 19, "completion_tokens": 150, "total_tokens": 169},
            "system_fingerprint": "fp_bench",
        }
        made.append(json.dumps(answer, ensure_ascii=False).encode())
    return made


def best(rounds: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100_000)
    parser.add_argument("--percent", type=float, default=0.05, help="share of answers holding a %%XX escape")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    data = answers(args.n, args.percent, random.Random(0))
    megabytes = sum(map(len, data)) / 1e6
    secrets = [KEY.encode(), GATEWAY.encode(), GATEWAY.split()[1].encode()]
    redact = Redactor(Provider(headers=(("cf-aig-authorization", GATEWAY),)), KEY)

    def before() -> None:
        for answer in data:
            for secret in secrets:
                if secret in answer:
                    answer = answer.replace(secret, b"****")

    def now() -> None:
        for answer in data:
            redact.escaped(redact.raw(answer))

    for name, work in (("plain search (before)", before), ("every encoding (now)", now)):
        seconds = best(args.rounds, work)
        print(f"{name}: {seconds:.2f} s, {seconds / args.n * 1e6:.2f} us an answer, {megabytes / seconds:.0f} MB/s")


if __name__ == "__main__":
    main()
