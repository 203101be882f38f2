"""When Python's cyclic garbage collector may pause the server.

Each room socket is a few hundred long-lived objects; at 10,000 sockets a full
(generation-2) collection walks millions of them and stops the event loop for 0.4–0.6 s.
Left to itself the collector starts one whenever enough new objects have survived, which
in a flash sale (thousands of taps, each with its futures) is in the middle of the sale:
measured (`python -m loadtest.gcstats`), 9 such pauses of 60–600 ms over one
10,000-viewer flash-sale run, connecting and selling.

So the long-lived objects are frozen (`gc.freeze`: the collector no longer walks them)
and the automatic collections only walk what is new. Freezing is cheap, so it is done
whenever the number of open sockets has grown by a tenth (viewers arriving for the
evening). The automatic collections never go past generation 1, and run every 5,000
allocations instead of 700: a young collection also walks the big young containers
that are alive (a batch of futures, a list of sockets), and under sustained sold-out
taps generation 0 took 0.55 s of every 8 s at 700, 0.06 s at 5,000. Garbage among the
frozen and the old objects (a closed socket's reference cycles) is reclaimed by a full
collection the pacer runs itself: when the purchase path has been quiet for a moment,
or at the latest every `max_interval_s`, so memory stays bounded through churn.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable

import structlog

log = structlog.get_logger("liveshop.app.gcpacer")

YOUNG_THRESHOLD = 5_000  # allocations between generation-0 collections (CPython: 700)
NO_AUTOMATIC_FULL = 1_000_000  # generation-1 collections before a full one: never


class GcPacer:
    def __init__(
        self,
        quiet_for: Callable[[], float],
        sockets: Callable[[], int],
        *,
        every_s: float = 30.0,
        quiet_s: float = 2.0,
        max_interval_s: float = 300.0,
    ) -> None:
        self._quiet_for = quiet_for  # seconds since the purchase path was last busy
        self._sockets = sockets  # open room sockets
        self._frozen_at = 0  # open sockets at the last freeze
        self._every = every_s
        self._quiet = quiet_s
        self._max = max_interval_s
        self._stopping = asyncio.Event()
        self.collections = 0

    def collect_and_freeze(self) -> float:
        """A full collection of everything, then freeze what survived. Returns seconds."""
        started = time.perf_counter()
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        self._frozen_at = self._sockets()
        self.collections += 1
        return time.perf_counter() - started

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        thresholds = gc.get_threshold()
        gc.set_threshold(YOUNG_THRESHOLD, thresholds[1], NO_AUTOMATIC_FULL)
        self.collect_and_freeze()  # start-up objects (imports, app) are long-lived
        last = time.monotonic()
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), 1.0)
                break
            except TimeoutError:
                pass
            sockets = self._sockets()
            if sockets - self._frozen_at > max(100, self._frozen_at // 10):
                gc.freeze()  # the new sockets' objects are long-lived too
                self._frozen_at = sockets
            since = time.monotonic() - last
            quiet = self._quiet_for() >= self._quiet
            if (since >= self._every and quiet) or since >= self._max:
                took = self.collect_and_freeze()
                last = time.monotonic()
                if took > 0.05:
                    log.info("full gc", seconds=round(took, 3), frozen=gc.get_freeze_count())
        gc.unfreeze()
        gc.set_threshold(*thresholds)
