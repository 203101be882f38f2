"""The coordinator's side of the worker processes: spawn, command, progress, stop.

Owns the worker processes and their pipes. Every call waits with a timeout; stop()
asks each worker to close its sockets and quit, and kills only its own children that
do not. Also measures CPU: how many cores the load generator and the server used.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import Any

import psutil  # type: ignore[import-untyped]  # no stubs in the lint extra

from loadtest import viewer as v
from loadtest import worker as w


class WorkerError(RuntimeError):
    pass


class Pool:
    """`n` worker processes; `call` sends one command to each and gathers the replies."""

    def __init__(self, n: int) -> None:
        self.n = n
        ctx = mp.get_context("spawn")
        self.counters: Any = ctx.RawArray("q", 4 * n)
        self._conns: list[Connection] = []
        self._procs: list[Any] = []
        self._inboxes: list[asyncio.Queue[Any]] = []
        for i in range(n):
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=w.main, args=(child, self.counters, i), daemon=True, name=f"lt-worker-{i}"
            )
            self._conns.append(parent)
            self._procs.append((proc, child))

    async def start(self) -> Pool:
        loop = asyncio.get_running_loop()
        for (proc, child), conn in zip(self._procs, self._conns, strict=True):
            proc.start()
            child.close()
            inbox: asyncio.Queue[Any] = asyncio.Queue()
            self._inboxes.append(inbox)

            def readable(c: Connection = conn, q: asyncio.Queue[Any] = inbox) -> None:
                try:
                    q.put_nowait(c.recv())
                except (EOFError, OSError):
                    loop.remove_reader(c.fileno())
                    q.put_nowait({"exception": "worker exited"})

            loop.add_reader(conn.fileno(), readable)
        return self

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc, _ in self._procs if proc.pid is not None]

    async def call(self, cmd: str, args: list[dict[str, Any]], timeout: float) -> list[Any]:
        """Send `cmd` with args[i] to worker i; wait for every reply."""
        for conn, a in zip(self._conns, args, strict=True):
            conn.send((cmd, a))
        replies = await asyncio.wait_for(asyncio.gather(*(q.get() for q in self._inboxes)), timeout)
        for r in replies:
            if isinstance(r, dict) and "exception" in r:
                raise WorkerError(f"{cmd}: {r['exception']}")
        return replies

    async def all(self, cmd: str, timeout: float, **args: Any) -> list[Any]:
        return await self.call(cmd, [args] * self.n, timeout)

    def totals(self) -> tuple[int, int, int, int]:
        c = self.counters
        return (
            sum(c[i * 4 + v.C_CONNECTED] for i in range(self.n)),
            sum(c[i * 4 + v.C_WELCOMED] for i in range(self.n)),
            sum(c[i * 4 + v.C_ACKS] for i in range(self.n)),
            sum(c[i * 4 + v.C_MSGS] for i in range(self.n)),
        )

    async def stop(self) -> None:
        loop = asyncio.get_running_loop()
        for conn in self._conns:
            with contextlib.suppress(OSError):
                loop.remove_reader(conn.fileno())
                conn.send(("quit", {}))
        for proc, _ in self._procs:
            await asyncio.to_thread(proc.join, 10)
            if proc.is_alive():
                proc.kill()
                await asyncio.to_thread(proc.join, 5)
        for conn in self._conns:
            conn.close()

    async def __aenter__(self) -> Pool:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def split(items: list[Any], n: int) -> list[list[Any]]:
    """Deal `items` round-robin into n lists."""
    return [items[i::n] for i in range(n)]


class Progress:
    """A tqdm bar fed from the workers' shared counters (silent without tqdm or a tty)."""

    def __init__(self, pool: Pool, total: int, enabled: bool = True) -> None:
        self.pool = pool
        self.total = total
        self.enabled = enabled
        self.phase = "connect"
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        try:
            from tqdm import tqdm  # type: ignore[import-untyped]
        except ImportError:
            return
        with tqdm(total=self.total, unit="viewer", dynamic_ncols=True, leave=False) as bar:
            while True:
                connected, welcomed, acks, msgs = self.pool.totals()
                bar.n = welcomed
                bar.set_description(self.phase, refresh=False)
                bar.set_postfix(tcp=connected, acks=acks, msgs=msgs, refresh=False)
                bar.refresh()
                await asyncio.sleep(0.25)

    def __enter__(self) -> Progress:
        if self.enabled:
            self._task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()


class CpuMeter:
    """CPU seconds used by named groups of processes over a window; a group's pids
    marked with children=True also count their descendants (the server's engine)."""

    def __init__(self, pids: dict[str, list[int]], children: frozenset[str] = frozenset()) -> None:
        self.pids = pids
        self.children = children
        self._start: dict[str, float] = {}
        self._t0 = 0.0
        self._sys0: Any = None

    @staticmethod
    def _procs(pids: list[int], children: bool) -> Iterator[psutil.Process]:
        for pid in pids:
            with contextlib.suppress(psutil.Error):
                p = psutil.Process(pid)
                yield p
                if children:
                    yield from p.children(recursive=True)

    def _sample(self) -> dict[str, float]:
        out = {}
        for name, pids in self.pids.items():
            total = 0.0
            for p in self._procs(pids, name in self.children):
                with contextlib.suppress(psutil.Error):
                    t = p.cpu_times()
                    total += t.user + t.system
            out[name] = total
        return out

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._start = self._sample()
        self._sys0 = psutil.cpu_times()

    def stop(self) -> dict[str, Any]:
        wall = max(1e-6, time.monotonic() - self._t0)
        end = self._sample()
        sys1 = psutil.cpu_times()
        busy0 = sum(self._sys0) - self._sys0.idle - getattr(self._sys0, "iowait", 0.0)
        busy1 = sum(sys1) - sys1.idle - getattr(sys1, "iowait", 0.0)
        cores = psutil.cpu_count() or 1
        used = {k: round((end.get(k, 0.0) - v) / wall, 3) for k, v in self._start.items()}
        machine = round((busy1 - busy0) / wall, 3)
        kinds = ("user", "system", "softirq", "steal")
        return {
            "machine": {
                k: round((getattr(sys1, k, 0.0) - getattr(self._sys0, k, 0.0)) / wall, 3)
                for k in kinds
            },
            "wall_s": round(wall, 2),
            "cores": cores,
            "cores_used": used,
            "machine_cores_busy": machine,
            "saturated": machine >= 0.95 * cores,
            # busy cores that are neither ours nor the server's: other work on the machine
            "other_cores": round(max(0.0, machine - sum(used.values())), 3),
        }


def rss_mb(pid: int) -> float:
    rss: int = psutil.Process(pid).memory_info().rss
    return rss / 2**20
