"""One viewer among 1,000 stops reading (SIGSTOP): once its kernel buffers and its
bounded queue are full it is cut off with its own close code (4508, `bye slow_consumer`),
everyone else keeps getting every message, and server memory stays bounded.

Prints the figures (delivery latency with and without the stopped viewer); the latency
target itself is a benchmark, not asserted here."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from liveshop.commerce.inventory import Inventory
from liveshop.commerce.rooms import Rooms
from tests.conftest import ROOM
from tests.support import ROOT, UNIT, Client, ServerProcess, eventually

pytestmark = pytest.mark.slow
VIEWERS = 1000


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def chatter(
    rooms: Rooms, seconds: float, rate: float = 20.0, until: asyncio.Event | None = None
) -> None:
    """Put `rate` chat lines a second (about 3 KB each) on the room for `seconds`: 1,000
    viewers then need 20,000 deliveries a second, well within one process's reach."""
    line = "今晚的荔枝又大又甜," * 100
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline and not (until and until.is_set()):
        await rooms.chat(ROOM, f"host{n % 7}", line + str(n))
        n += 1
        await asyncio.sleep(1 / rate)


WINDOW_S = 4.0  # both phases are measured over the same length of time
ROUNDS = 3


def p99(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=100)[98] if len(xs) > 1 else float("nan")


def quiet_collector(clients: list[Client]) -> None:
    """Start a phase with empty message lists and no garbage collection: otherwise this
    process's own GC pauses (it keeps every message of 1,000 viewers) land in the figures."""
    for c in clients:
        c.received.clear()
        c.arrivals.clear()
    gc.collect()
    gc.disable()


def latencies(clients: list[Client], since_ms: int) -> list[float]:
    out = []
    for c in clients:
        for m, at in zip(c.received, c.arrivals, strict=False):
            if m["type"] == "chat" and since_ms <= m["ts"] < since_ms + WINDOW_S * 1000:
                out.append(at - m["ts"])
    return out


async def test_a_stopped_viewer_is_cut_off_and_others_keep_up(
    domain: tuple[Rooms, Inventory], redis_url: str, tmp_path: Path
) -> None:
    rooms, _ = domain
    server = ServerProcess(
        tmp_path,
        redis_url=redis_url,
        extra_env={"LIVESHOP_MAX_QUEUE": "64", "LIVESHOP_SOCKET_SNDBUF": "16384"},
    ).start()
    slow = None
    viewers: list[Client] = []
    try:
        url = server.ws_url(ROOM)
        for start in range(0, VIEWERS - 1, 100):
            batch = await asyncio.gather(
                *(Client.connect(url) for _ in range(start, min(start + 100, VIEWERS - 1)))
            )
            await asyncio.gather(*(c.hello() for c in batch))
            viewers += batch
        assert server.proc is not None
        rss_idle = rss_kib(server.proc.pid)

        # The room talks steadily throughout (10 lines/s of ~3 KB: 10,000 deliveries a
        # second, well below saturation, so p99 reflects the server and not a backlog);
        # in each round we measure the others over a window without a stopped viewer,
        # then over an equal window while one is stopped.
        talk_done = asyncio.Event()
        talk = asyncio.create_task(chatter(rooms, 600 * UNIT, rate=10.0, until=talk_done))
        baselines: list[float] = []
        stopped: list[float] = []
        outs: list[str] = []
        cut_offs = 0
        try:
            for _ in range(ROUNDS):
                quiet_collector(viewers)
                a = int(time.time() * 1000)
                await asyncio.sleep(WINDOW_S + 1.0)  # the window, and a second for stragglers
                baselines.append(p99(latencies(viewers, a)))
                slow = subprocess.Popen(  # noqa: ASYNC220 - the stopped viewer is its own process
                    [sys.executable, str(ROOT / "tests" / "slow_reader.py"), url],
                    stdout=subprocess.PIPE,
                    text=True,
                    cwd=ROOT,
                )
                assert slow.stdout is not None
                assert slow.stdout.readline().strip() == "ready"
                os.kill(slow.pid, signal.SIGSTOP)
                quiet_collector(viewers)
                b = int(time.time() * 1000)
                await asyncio.sleep(WINDOW_S + 1.0)
                stopped.append(p99(latencies(viewers, b)))
                gc.enable()
                # keep talking until the server gives up on it (kernel buffers, then its
                # bounded queue, fill up)
                cut_offs += 1
                await eventually(
                    lambda n=cut_offs: (
                        server.log.read_text().count("slow consumer disconnected") >= n
                    ),
                    timeout=60,
                    every=0.2,
                )
                os.kill(slow.pid, signal.SIGCONT)
                try:
                    out, _ = slow.communicate(timeout=30)
                except subprocess.TimeoutExpired:
                    raise AssertionError(
                        f"stopped viewer never closed; log: {server.log.read_text()[-1500:]}"
                    ) from None
                outs.append(out)
        finally:
            gc.enable()
            talk_done.set()
            await talk
        rss_after = rss_kib(server.proc.pid)
        ratio = statistics.median(stopped) / statistics.median(baselines)
        print(
            f"\nviewers={VIEWERS}, {ROUNDS} rounds of {WINDOW_S:.0f} s windows: others' p99 "
            f"without a stopped viewer {[round(x) for x in baselines]} ms, with one "
            f"{[round(x) for x in stopped]} ms; median ratio {ratio:.2f} | server RSS "
            f"{rss_idle // 1024} MiB idle -> {rss_after // 1024} MiB"
        )
        for out in outs:
            assert '"slow_consumer"' in out and "closed 4508" in out, out
        assert rss_after - rss_idle < 200 * 1024  # bounded: queues are capped
        for c in viewers:
            assert not c.closed.is_set()
    finally:
        if slow is not None and slow.poll() is None:
            os.kill(slow.pid, signal.SIGCONT)
            slow.kill()
            slow.wait()
        await asyncio.gather(*(c.close() for c in viewers), return_exceptions=True)
        server.stop()
