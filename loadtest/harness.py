"""One experiment's scaffolding: the target server, the worker pool, the broadcaster
sockets (in this process), CPU metering and clean teardown.

Owns the order of setup and teardown so that every scenario gets the same: the
target first (spawned or attached), then the room, the broadcasters, the workers;
teardown in reverse, every step bounded, even after a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import shutil
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtest import targets
from loadtest.pool import CpuMeter, Pool, Progress, split
from loadtest.report import RESULTS
from loadtest.viewer import Viewer, raise_nofile
from loadtest.worker import Worker

PER_SOCKET_RATE = 15.0  # what one broadcaster socket sends a second (server allows 20)


@dataclass
class Options:
    """Knobs shared by every scenario (see `python -m loadtest --help`)."""

    viewers: int = 200
    method: str = "liveshop"
    url: str = ""
    secret: str = ""
    pid: int | None = None
    workers: int = 3
    inflight: int = 256
    durability: str = "strict"
    out: Path = RESULTS
    progress: bool = True
    plot: bool = True
    timeout: float = 120.0
    profile: bool = False  # py-spy the server during the measured phase
    server_workers: int = 1  # liveshop serve --workers N (processes sharing the port)
    extra: dict[str, Any] = field(default_factory=dict)


class Broadcasters:
    """`n` broadcaster sockets of the room, run on this process's event loop."""

    def __init__(self, target: targets.Target, n: int, *, ordered: bool = False) -> None:
        from multiprocessing.sharedctypes import RawArray

        self.local = Worker(0, RawArray("q", 4))
        self.local.host, self.local.port = target.host, target.ws_port
        self.local.path, self.local.socketio = target.ws_path, target.socketio
        self.local.secret = target.secret
        self.local.measure = frozenset()
        if ordered:
            self.local.ordered = []
        self.socks = [self.local.new_viewer(f"lt-host-{i}", "broadcaster") for i in range(n)]
        self._next = 0

    async def open(self) -> None:
        oks = await asyncio.gather(*(self.local.open(s, 15.0) for s in self.socks))
        if not all(oks):
            raise RuntimeError(f"broadcaster sockets failed: {dict(self.local.errors)}")

    @property
    def first(self) -> Viewer:
        return self.socks[0]

    def send(self, msg: dict[str, Any]) -> None:
        """Send on the next socket, round-robin (each socket has its own rate limit)."""
        sock = self.socks[self._next % len(self.socks)]
        self._next += 1
        sock.send(msg)

    async def go_live(self, target: targets.Target) -> None:
        self.first.send({"type": "go_live", "title": "load test"})
        await targets.wait_live(target)

    async def paced(self, rate: float, seconds: float, make: Any) -> int:
        """Send make(i) at `rate` a second for `seconds`, on a fixed schedule; returns
        how many were sent."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        n = int(rate * seconds)
        for i in range(n):
            delay = start + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.send(make(i))
        return n

    async def close(self) -> None:
        await self.local.close_all(self.socks, wait_s=3.0)


def sockets_for(rate: float) -> int:
    return max(1, math.ceil(rate / PER_SOCKET_RATE))


class Run:
    """Everything one scenario run holds; build with `async with run(opts, ...)`."""

    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.target: targets.Target | None = None
        self.pool: Pool | None = None
        self.bcast: Broadcasters | None = None
        self.spawned = False
        self.profiles: list[str] = []

    @property
    def t(self) -> targets.Target:
        assert self.target is not None
        return self.target

    @property
    def p(self) -> Pool:
        assert self.pool is not None
        return self.pool

    @property
    def b(self) -> Broadcasters:
        assert self.bcast is not None
        return self.bcast

    def meter(self) -> CpuMeter:
        pids: dict[str, list[int]] = {"loadgen": [os.getpid(), *self.p.pids]}
        if self.t.pid:
            pids["server"] = [self.t.pid]
        return CpuMeter(pids, children=frozenset({"server"}))

    @contextlib.asynccontextmanager
    async def profiled(self, name: str, seconds: float) -> AsyncIterator[None]:
        """py-spy the server (collapsed stacks, idle frames excluded) while the block runs."""
        if not self.opts.profile or not self.t.pid:
            yield
            return
        self.opts.out.mkdir(parents=True, exist_ok=True)
        raw = self.opts.out / f"profile-{name}-{self.opts.method}-{os.getpid()}.txt"
        spy = Path(sys.executable).with_name("py-spy")
        proc = await asyncio.create_subprocess_exec(
            str(spy) if spy.exists() else "py-spy",
            "record",
            "--pid",
            str(self.t.pid),
            "--format",
            "raw",
            "--rate",
            "200",
            "--duration",
            str(int(seconds)),
            # Blocking (the server pauses ~0.1 ms per sample): --nonblocking read torn
            # stacks, e.g. 16 % "self" time on the first line of a coroutine.
            "-o",
            str(raw),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            yield
        finally:
            try:
                await asyncio.wait_for(proc.wait(), seconds + 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()
            self.profiles.append(str(raw))

    async def connect(self, n: int, prefix: str = "v", phase: str = "connect") -> dict[str, Any]:
        """Connect and greet n viewers spread over the workers."""
        users = [f"{prefix}{i}" for i in range(n)]
        parts = split(users, self.p.n)
        inflight = max(4, self.opts.inflight // self.p.n)
        with Progress(self.p, n, self.opts.progress) as bar:
            bar.phase = phase
            replies = await self.p.call(
                "connect",
                [{"users": part, "inflight": inflight, "wait_s": 30.0} for part in parts],
                timeout=self.opts.timeout + n / 50,
            )
        times = [t for r in replies for t in r["connect_ms"]]
        return {"times": times, "failed": sum(r["failed"] for r in replies)}


@contextlib.asynccontextmanager
async def run(
    opts: Options,
    products: list[tuple[str, int, int]],
    *,
    broadcasters: int = 1,
    ordered: bool = False,
    go_live: bool = True,
    **setup: Any,
) -> AsyncIterator[Run]:
    """Target, room, broadcasters, workers; torn down in reverse whatever happens."""
    raise_nofile()  # before spawning: the server inherits the raised limit
    r = Run(opts)
    work = opts.out / "servers"
    try:
        if opts.url:
            r.target = targets.attach(opts.url, opts.secret, opts.pid)
        elif opts.method == "liveshop":
            r.target = await asyncio.to_thread(
                targets.spawn_liveshop,
                work,
                durability=opts.durability,
                workers=opts.server_workers,
            )
            r.spawned = True
        else:
            r.target = await asyncio.to_thread(targets.spawn_baseline, opts.method, work, products)
            r.spawned = True
        await targets.new_room(r.t, products)
        r.bcast = Broadcasters(r.t, broadcasters, ordered=ordered)
        await r.b.open()
        if go_live:
            await r.b.go_live(r.t)
        r.pool = await Pool(max(1, min(opts.workers, opts.viewers))).start()
        await r.p.all("setup", timeout=60.0, **r.t.worker_setup(**setup))
        yield r
    finally:
        if r.pool is not None:
            with contextlib.suppress(Exception):
                await r.p.all("close", timeout=30.0)
            await r.p.stop()
        if r.bcast is not None:
            await r.b.close()
        if r.spawned and r.target is not None:
            await asyncio.to_thread(r.target.stop)
            if r.target.data_dir is not None:  # AOF and databases grow fast under load
                await asyncio.to_thread(shutil.rmtree, r.target.data_dir, True)
