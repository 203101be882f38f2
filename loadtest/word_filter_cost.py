"""What a chat word filter costs per message: `--terms` random terms (half Latin, half
Chinese) in one `WordFilter`, `--messages` random 200-character messages of mixed Latin,
Chinese, digits and punctuation, timed over `--runs` passes.

    python -m loadtest.word_filter_cost --terms 5000 --runs 5

Prints one JSON line: microseconds per message for each pass and their median (the
issue's goal: at most 20 µs with 5,000 terms).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

from liveshop.commerce.word_filter import WordFilter

LATIN = "abcdefghijklmnopqrstuvwxyz"
CJK = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]


def _messages(rng: random.Random, n: int, length: int = 200) -> list[str]:
    out = []
    for _ in range(n):
        parts: list[str] = []
        while sum(map(len, parts)) < length:
            parts.append(
                rng.choice(
                    [
                        "".join(rng.choice(CJK) for _ in range(6)),
                        "".join(rng.choice(LATIN) for _ in range(5)) + " ",
                        "，",
                        "12",
                    ]
                )
            )
        out.append("".join(parts)[:length])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--terms", type=int, default=5000)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(1)
    half = args.terms // 2
    terms = ["".join(rng.choice(LATIN) for _ in range(rng.randint(4, 8))) for _ in range(half)]
    terms += ["".join(rng.choice(CJK) for _ in range(rng.randint(2, 4))) for _ in range(half)]
    words = WordFilter(terms)
    messages = _messages(rng, args.messages)
    passes = []
    for _ in range(args.runs):
        started = time.perf_counter()
        for text in messages:
            words.find(text)
        passes.append((time.perf_counter() - started) / len(messages) * 1e6)
    print(
        json.dumps(
            {
                "terms": words.size,
                "messages": len(messages),
                "us_per_message": [round(x, 1) for x in passes],
                "median_us": round(statistics.median(passes), 1),
            }
        )
    )


if __name__ == "__main__":
    main()
