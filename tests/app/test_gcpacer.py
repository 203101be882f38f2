"""The collector pacer: long-lived objects frozen, full collections only when quiet."""

from __future__ import annotations

import asyncio
import gc
import weakref

from liveshop.app.gcpacer import NO_AUTOMATIC_FULL, YOUNG_THRESHOLD, GcPacer


class Cycle:
    def __init__(self) -> None:
        self.me = self


async def test_freezes_on_growth_and_collects_frozen_garbage_when_quiet() -> None:
    sockets = [0]
    quiet = [0.0]
    pacer = GcPacer(lambda: quiet[0], lambda: sockets[0], every_s=1.0, quiet_s=0.5)
    before = gc.get_threshold()
    task = asyncio.create_task(pacer.run())
    try:
        await asyncio.sleep(0.1)
        assert pacer.collections == 1 and gc.get_freeze_count() > 0  # start-up freeze
        # young collections less often, and never an automatic full one
        assert gc.get_threshold() == (YOUNG_THRESHOLD, before[1], NO_AUTOMATIC_FULL)
        frozen = gc.get_freeze_count()
        garbage = [Cycle() for _ in range(1000)]
        probe = weakref.ref(garbage[0])
        sockets[0] = 5000  # viewers arrived: their objects get frozen
        await asyncio.sleep(1.3)
        assert gc.get_freeze_count() >= frozen + 1000
        del garbage  # now cyclic garbage among frozen objects: only a full collection frees it
        await asyncio.sleep(1.2)
        assert pacer.collections == 1  # busy (quiet_for 0): no full collection yet
        assert probe() is not None  # frozen: the automatic collections do not see it
        quiet[0] = 10.0
        await asyncio.sleep(1.3)
        assert pacer.collections == 2
        assert probe() is None
    finally:
        pacer.stop()
        await task
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before
