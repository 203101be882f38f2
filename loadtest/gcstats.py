"""`python -m loadtest.gcstats serve …`: `liveshop serve` with the cyclic collector's
pauses logged. Every collection over 50 ms is printed to stderr as it happens; SIGUSR2
prints the totals per generation. How the GC pacer's figures in BENCHMARKS.md were taken:

    LIVESHOP_SECRET=… python -m loadtest.gcstats serve --port 8811 --data-dir /tmp/gc &
    python -m loadtest flashsale --viewers 10000 --units 1000 \\
        --url ws://127.0.0.1:8811 --pid $!
    kill -USR2 $!
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import time
from typing import Any

counts = [0, 0, 0]
seconds = [0.0, 0.0, 0.0]
_started: dict[int, float] = {}
# Collections longer than this are printed as they happen (LOADTEST_GC_MS, default 50).
_REPORT_S = float(os.environ.get("LOADTEST_GC_MS", "50")) / 1000


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    generation = info["generation"]
    if phase == "start":
        _started[generation] = time.perf_counter()
        return
    took = time.perf_counter() - _started.pop(generation, time.perf_counter())
    counts[generation] += 1
    seconds[generation] += took
    if took > _REPORT_S:
        print(
            f"{time.time():.3f} gc generation {generation}: {took * 1000:.1f} ms,"
            f" {info['collected']} collected",
            file=sys.stderr,
            flush=True,
        )


def _totals(*_: object) -> None:
    rows = ", ".join(f"gen{g}: {counts[g]} in {seconds[g]:.3f} s" for g in range(3))
    print(f"gc totals: {rows}", file=sys.stderr, flush=True)


def main() -> int:
    gc.callbacks.append(_on_gc)
    signal.signal(signal.SIGUSR2, _totals)
    from liveshop.app.cli import main as liveshop_main

    return liveshop_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
