"""A load-generator process: many viewers on one event loop, driven by commands.

Owns its share of the viewers and what they saw: latency histograms, decisions,
errors by code, seq bookkeeping. Commands arrive as dicts on a multiprocessing pipe
and each gets one reply dict; a command never runs unbounded (every wait has a
timeout). Must not talk to anything but the target server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import SynchronizedArray
from typing import Any

from liveshop.core import identity
from loadtest.viewer import (
    C_CONNECTED,
    HIST_MS,
    Viewer,
    loop_factory,
    now_ms,
    raise_nofile,
    until,
)
from loadtest.wsclient import connect


class Worker:
    """The commands one process carries out. See `handle` for the list."""

    def __init__(self, index: int, counters: SynchronizedArray[int]) -> None:
        self.index = index
        self.row = index * 4
        self.counters = counters
        self.viewers: list[Viewer] = []
        self.host, self.port, self.path = "127.0.0.1", 0, "/"
        self.socketio = False
        self.secret = ""
        self.track_seqs = False
        self.measure: frozenset[str] = frozenset({"stock"})
        self.watch_sku = ""
        self.errors: Counter[str] = Counter()
        self.decisions: list[tuple[Any, ...]] = []
        self.on_decision: Any = None
        self.retries = 3  # resends of a buy answered `unavailable`
        self.ordered: list[int] | None = None  # seqs of ordered messages (broadcaster side)
        self.zero_ts = 0.0  # server ts of the stock message that said 0 left
        self.reset_window(0, 0)

    def reset_window(self, start: float, end: float) -> None:
        self.win_start, self.win_end = start, end
        self.hist = [0] * (HIST_MS + 1)
        self.win_count = 0

    # connecting ---------------------------------------------------------------------
    def new_viewer(self, user: str, role: str = "viewer") -> Viewer:
        token = identity.issue(self.secret, user=user, role=role, room="*") if self.secret else None
        v = Viewer(self, user, token)
        self.viewers.append(v)
        return v

    async def open(self, v: Viewer, wait_s: float) -> bool:
        t0 = time.perf_counter()
        try:
            v.ws = await asyncio.wait_for(
                connect(v, self.host, self.port, self.path, socketio=self.socketio), wait_s
            )
            self.counters[self.row + C_CONNECTED] += 1
            ok = await asyncio.wait_for(asyncio.shield(v.welcomed), wait_s)
        except (OSError, TimeoutError) as exc:
            self.errors["connect:" + type(exc).__name__] += 1
            if v.ws is not None:
                v.closing = True
                v.ws.abort()
            return False
        if ok:
            v.connect_ms = (time.perf_counter() - t0) * 1000
        return ok

    async def open_many(self, viewers: list[Viewer], inflight: int, wait_s: float) -> list[float]:
        sem = asyncio.Semaphore(inflight)

        async def one(v: Viewer) -> None:
            async with sem:
                await self.open(v, wait_s)

        await asyncio.gather(*(one(v) for v in viewers))
        return [round(v.connect_ms, 2) for v in viewers if v.connect_ms >= 0]

    async def close_all(self, viewers: list[Viewer], wait_s: float = 5.0) -> None:
        for v in viewers:
            v.closing = True
            if v.ws is not None:
                v.ws.close()
        waits = [v.ws.done for v in viewers if v.ws is not None]
        if waits:
            _, late = await asyncio.wait(waits, timeout=wait_s)
            for v in viewers:
                if v.ws is not None and not v.ws.done.done():
                    v.ws.abort()
            if late:
                await asyncio.wait(late, timeout=1.0)

    # commands -------------------------------------------------------------------------
    async def handle(self, cmd: str, a: dict[str, Any]) -> dict[str, Any]:
        reply: dict[str, Any] = await getattr(self, "cmd_" + cmd)(**a)
        return reply

    async def cmd_setup(self, **a: Any) -> dict[str, Any]:
        self.host, self.port, self.path = a["host"], a["port"], a["path"]
        self.socketio = a.get("socketio", False)
        self.secret = a.get("secret", "")
        self.track_seqs = a.get("track_seqs", False)
        self.measure = frozenset(a.get("measure", ("stock",)))
        self.watch_sku = a.get("watch_sku", "")
        self.retries = a.get("retries", 3)
        return {"nofile": raise_nofile()}

    async def cmd_connect(
        self, users: list[str], inflight: int, wait_s: float = 30.0
    ) -> dict[str, Any]:
        viewers = [self.new_viewer(u) for u in users]
        times = await self.open_many(viewers, inflight, wait_s)
        return {"connect_ms": times, "failed": len(viewers) - len(times)}

    async def cmd_window(self, start: float, end: float) -> dict[str, Any]:
        self.reset_window(start, end)
        return {}

    async def cmd_stats(self) -> dict[str, Any]:
        return {
            "hist": self.hist,
            "count": self.win_count,
            "open": sum(1 for v in self.viewers if v.ready),
            "errors": dict(self.errors),
        }

    async def cmd_buy_burst(
        self,
        at: float,
        spread_ms: float,
        sku: str,
        offer_id: str | None,
        double_tap: float,
        wait_s: float,
        group_id: str | None = None,
    ) -> dict[str, Any]:
        """Every ready viewer taps buy (with `group_id`: joins that group) once at a
        random moment of [at, at + spread]; a share of them taps again (a new request_id)
        50-300 ms later."""
        self.decisions.clear()
        rng = random.Random(self.index)
        loop = asyncio.get_running_loop()
        base = loop.time() + (at - now_ms()) / 1000
        expected = 0
        for i, v in enumerate(self.viewers):
            if not v.ready:
                continue
            t = base + rng.random() * spread_ms / 1000
            loop.call_at(t, v.buy, f"t1-{i}", sku, 1, offer_id, group_id)
            expected += 1
            if rng.random() < double_tap:
                again = t + 0.05 + rng.random() * 0.25
                loop.call_at(again, v.buy, f"t2-{i}", sku, 1, offer_id, group_id)
                expected += 1
        await until(
            lambda: len(self.decisions) >= expected,
            base - loop.time() + spread_ms / 1000 + wait_s,
            0.02,
        )
        return {"decisions": self.decisions[:], "expected": expected}

    async def cmd_buy_loop(
        self, at: float, duration_s: float, rate: float, sku: str, wait_s: float = 10.0
    ) -> dict[str, Any]:
        """Closed loop: each ready viewer keeps one buy in flight, at most `rate` a second
        (under the server's 20 msgs/s per connection), from `at` for `duration_s`."""
        self.decisions.clear()
        loop = asyncio.get_running_loop()
        start = loop.time() + (at - now_ms()) / 1000
        end = start + duration_s
        gap = 1.0 / rate
        rng = random.Random(self.index)
        seqno = [0]
        next_at: dict[int, float] = {}

        def fire(v: Viewer) -> None:
            now = loop.time()
            if now >= end or not v.ready:
                return
            seqno[0] += 1
            next_at[id(v)] = now + gap
            v.buy(f"b{self.index}-{seqno[0]}", sku, 1, None)

        def again(v: Viewer) -> None:
            loop.call_at(max(loop.time(), next_at.get(id(v), 0.0)), fire, v)

        self.on_decision = again
        try:
            for v in self.viewers:
                if v.ready:
                    loop.call_at(start + rng.random() * gap, fire, v)
            await asyncio.sleep(max(0.0, end - loop.time()))
            await until(lambda: not any(v.pending for v in self.viewers), wait_s, 0.02)
        finally:
            self.on_decision = None
        return {"decisions": self.decisions[:]}

    async def cmd_seen(
        self,
        sku: str,
        left: int,
        offer_id: str | None,
        status: str | None,
        wait_s: float,
        group_id: str | None = None,
        value: int = 0,
    ) -> dict[str, Any]:
        """Wait until every ready viewer's latest stock of `sku` is `left` and the offer's
        status is `status` (with `group_id`: the group's latest message says `status` and
        `value`); report what each saw and when. The "zero" moment is when the stock hit
        0, for a group when its final state arrived (and the server's ts of it)."""

        def done(v: Viewer) -> bool:
            if v.stock.get(sku) != left:
                return False
            if group_id is not None:
                return v.groups.get(group_id, ("", -1))[:2] == (status, value)
            return offer_id is None or v.offers.get(offer_id, ("", 0))[0] == status

        await until(lambda: all(done(v) for v in self.viewers if v.ready), wait_s)
        ready = [v for v in self.viewers if v.ready]
        reply = {
            "ready": len(ready),
            "done": sum(1 for v in ready if done(v)),
            "final_left": Counter(str(v.stock.get(sku)) for v in ready),
            "zero_at": [v.zero_at for v in ready if v.zero_at],
            "zero_ts": self.zero_ts,
            "sold_out_at": [v.sold_out_at for v in ready if v.sold_out_at],
            "errors": dict(self.errors),
        }
        if group_id is not None:
            final = [v.groups[group_id] for v in ready if done(v)]
            reply["zero_at"] = [g[3] for g in final]
            reply["zero_ts"] = min((g[4] for g in final if g[4]), default=0.0)
            reply["final_group"] = Counter(str(v.groups.get(group_id, ())[:3]) for v in ready)
        return reply

    async def cmd_final(self, expect: dict[str, int], wait_s: float) -> dict[str, Any]:
        """Wait until every ready viewer's latest stock equals `expect` for every SKU (what
        coalescing promises: intermediate values may be skipped, the latest never)."""

        def done(v: Viewer) -> bool:
            return all(v.stock.get(sku) == left for sku, left in expect.items())

        await until(lambda: all(done(v) for v in self.viewers if v.ready), wait_s, 0.1)
        ready = [v for v in self.viewers if v.ready]
        return {"ready": len(ready), "matched": sum(1 for v in ready if done(v))}

    async def cmd_storm(
        self, inflight: int, wait_s: float, attempt_s: float = 10.0
    ) -> dict[str, Any]:
        """Drop every viewer's TCP link at once; each reconnects at once with resume_from,
        and like a real client retries a failed attempt with backoff and jitter, until
        welcomed or `wait_s` has passed."""
        old = [v for v in self.viewers if v.ready]
        for v in old:
            v.closing = True
            assert v.ws is not None
            v.ws.abort()
        t0 = now_ms()
        start = time.perf_counter()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        sem = asyncio.Semaphore(inflight)
        rng = random.Random(self.index)
        welcomed_ms: list[float] = []
        attempts = [0]

        def successor(v: Viewer) -> Viewer:
            n = Viewer(self, v.user, v.token)
            n.resume_from = n.last_seq = v.last_seq
            n.seqs = v.seqs
            return n

        async def back(v: Viewer) -> Viewer:
            tries = 0
            while True:
                v = successor(v)
                attempts[0] += 1
                async with sem:
                    left = max(0.1, deadline - loop.time())
                    ok = await self.open(v, min(attempt_s, left))
                if ok:
                    welcomed_ms.append(round((time.perf_counter() - start) * 1000, 2))
                    return v
                tries += 1
                if loop.time() >= deadline:
                    return v
                await asyncio.sleep(min(5.0, 0.25 * 2**tries) * (0.5 + rng.random()))

        self.viewers = list(await asyncio.gather(*(back(v) for v in old)))
        return {
            "t_drop": t0,
            "t_done": now_ms(),
            "reconnect_ms": welcomed_ms,
            "attempts": attempts[0],
            "resumed": sum(1 for v in self.viewers if v.ready and v.resumed),
            "failed": len(old) - len(welcomed_ms),
        }

    async def cmd_caught_up(self, seq: int, wait_s: float) -> dict[str, Any]:
        await until(lambda: all(v.last_seq >= seq for v in self.viewers if v.ready), wait_s)
        return {"behind": sum(1 for v in self.viewers if v.ready and v.last_seq < seq)}

    async def cmd_gaps(self, ordered: list[int], upto: int) -> dict[str, Any]:
        """Check each viewer got every ordered (never coalesced) room message after its
        first welcome up to `upto`, once each and in order."""
        want = sorted(ordered)
        missing_viewers, missing_total, dupes = 0, 0, 0
        for v in self.viewers:
            if v.seqs is None or not v.ready:
                continue
            got = set(v.seqs)
            dupes += len(v.seqs) - len(got)
            first = v.seqs[0] if v.seqs else upto
            miss = sum(1 for s in want if first <= s <= upto and s not in got)
            if miss:
                missing_viewers += 1
                missing_total += miss
        return {"missing_viewers": missing_viewers, "missing": missing_total, "dupes": dupes}

    async def cmd_churn(
        self, duration_s: float, rate: float, prefix: str, wait_s: float = 10.0
    ) -> dict[str, Any]:
        """For `duration_s`, `rate` times a second: close one ready viewer, open a new one."""
        loop = asyncio.get_running_loop()
        rng = random.Random(self.index)
        end = loop.time() + duration_s
        tasks: set[asyncio.Task[bool]] = set()
        closed: list[Viewer] = []
        fresh: list[Viewer] = []
        n = 0
        while loop.time() < end:
            ready = [v for v in self.viewers if v.ready and not v.closing]
            if ready:
                gone = rng.choice(ready)
                gone.closing = True
                assert gone.ws is not None
                gone.ws.close()
                closed.append(gone)
            n += 1
            v = self.new_viewer(f"{prefix}{n}")
            fresh.append(v)
            task = asyncio.create_task(self.open(v, wait_s))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            await asyncio.sleep(1.0 / rate)
        if tasks:
            await asyncio.wait(tasks, timeout=wait_s)
        self.viewers = [v for v in self.viewers if v not in closed]
        times = [round(v.connect_ms, 2) for v in fresh if v.connect_ms >= 0]
        return {"connect_ms": times, "opened": n, "closed": len(closed)}

    async def cmd_close(self) -> dict[str, Any]:
        await self.close_all(self.viewers)
        self.viewers.clear()
        return {"errors": dict(self.errors)}


async def _serve(conn: Connection, worker: Worker) -> None:
    # Commands are read on a thread: uvloop's add_reader would make the pipe
    # non-blocking, and a large reply would then fail with EAGAIN.
    try:
        while True:
            try:
                cmd, args = await asyncio.to_thread(conn.recv)
            except (EOFError, OSError):
                break
            if cmd == "quit":
                break
            try:
                reply = await worker.handle(cmd, args)
            except Exception as exc:  # report, never die silently mid-run
                reply = {"exception": f"{type(exc).__name__}: {exc}"}
            conn.send(reply)
    finally:
        await worker.close_all(worker.viewers, wait_s=2.0)


def main(conn: Connection, counters: SynchronizedArray[int], index: int) -> None:
    """Process entry point (multiprocessing spawn target)."""
    raise_nofile()
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(_serve(conn, Worker(index, counters)))
    conn.close()
