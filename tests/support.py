"""Test helpers: real engine, real servers on port 0, real websocket clients.

Waits are multiples of one scaled unit (`UNIT`, seconds; LIVESHOP_TEST_UNIT scales
it on a slow machine), never bare sleeps standing in for synchronisation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from liveshop.app.cli import Serving, listen_socket
from liveshop.app.factory import Runtime, create_app
from liveshop.core import identity
from liveshop.core.config import Settings, load

UNIT = float(os.environ.get("LIVESHOP_TEST_UNIT", "1.0"))
SECRET = "test-secret-not-for-production-0123456789"
ROOT = Path(__file__).resolve().parent.parent


def token(role: str = "viewer", user: str = "u1", room: str = "*") -> str:
    return identity.issue(SECRET, user=user, role=role, room=room)


def settings_for(redis_url: str, data_dir: Path, **extra: Any) -> Settings:
    return load(
        {},
        port=0,
        secret=SECRET,
        redis_url=redis_url,
        data_dir=str(data_dir),
        log_format="json",
        log_level="warning",
        **extra,
    )


class RunningServer:
    """A liveshop process in this event loop, as `liveshop serve` runs it (`Serving`):
    HTTP on uvicorn and the room-socket wire, on 127.0.0.1 and ports of the sockets it
    binds first (port 0: random free ports)."""

    def __init__(self, settings: Settings, **app_kwargs: Any) -> None:
        self.settings = settings
        self.app = create_app(settings, **app_kwargs)
        wire_port = settings.wire_port
        self.serving = Serving(
            self.app,
            settings,
            listen_socket(settings),
            None if wire_port is None else listen_socket(settings, port=wire_port),
        )

    @property
    def runtime(self) -> Runtime:
        return self.app.runtime

    @property
    def port(self) -> int:
        return self.serving.port

    @property
    def wire_port(self) -> int:
        """Where room sockets go: the wire's port, or the HTTP port when it is off."""
        return self.serving.wire_port or self.serving.port

    def ws_url(self, room: str) -> str:
        """A room socket on the fast wire (as clients of `liveshop serve` connect)."""
        return f"ws://127.0.0.1:{self.wire_port}/ws/rooms/{room}"

    def http_ws_url(self, room: str) -> str:
        """A room socket on the HTTP port: uvicorn's websockets and `AsgiWire`."""
        return f"ws://127.0.0.1:{self.port}/ws/rooms/{room}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> RunningServer:
        await asyncio.wait_for(self.serving.start(), 20 * UNIT)
        return self

    async def stop(self) -> None:
        try:
            await asyncio.wait_for(self.serving.stop(), 30 * UNIT)
        except TimeoutError:
            for task in asyncio.all_tasks():
                task.print_stack(limit=6)
            raise
        http = self.serving.http_task
        if http is not None and http.done() and not http.cancelled():
            failure = http.exception()
            if failure is not None:
                raise failure


class Client:
    """A websocket client that records everything it receives."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.received: list[dict[str, Any]] = []
        self.arrivals: list[float] = []
        self._new = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())
        self.closed = asyncio.Event()

    @classmethod
    async def connect(cls, url: str, **kwargs: Any) -> Client:
        ws = await websockets.connect(url, open_timeout=10 * UNIT, max_size=2**22, **kwargs)
        return cls(ws)

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                msg = json.loads(raw)
                async with self._new:
                    self.received.append(msg)
                    self.arrivals.append(time.time() * 1000)  # epoch ms, for latency figures
                    self._new.notify_all()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed.set()
            async with self._new:
                self._new.notify_all()

    async def send(self, msg: dict[str, Any] | str) -> None:
        await self.ws.send(msg if isinstance(msg, str) else json.dumps(msg))

    async def wait_for(
        self, pred: Callable[[dict[str, Any]], bool], timeout: float = 5.0, *, start: int = 0
    ) -> dict[str, Any]:
        """The first message (from index `start`) matching `pred`."""

        async def find() -> dict[str, Any]:
            async with self._new:
                while True:
                    for msg in self.received[start:]:
                        if pred(msg):
                            return msg
                    if self.closed.is_set():
                        raise ConnectionError(f"closed; received {self.received[-5:]}")
                    await self._new.wait()

        return await asyncio.wait_for(find(), timeout * UNIT)

    async def next_of(self, kind: str, timeout: float = 5.0) -> dict[str, Any]:
        """The next message of `kind` after everything received so far."""
        start = len(self.received)
        return await self.wait_for(lambda m: m["type"] == kind, timeout, start=start)

    async def hello(self, tok: str | None = None, **fields: Any) -> dict[str, Any]:
        start = len(self.received)
        msg: dict[str, Any] = {"type": "hello", **fields}
        if tok is not None:
            msg["token"] = tok
        await self.send(msg)
        return await self.wait_for(lambda m: m["type"] in ("welcome", "bye"), start=start)

    async def request(self, msg: dict[str, Any], kind: str, timeout: float = 5.0) -> dict[str, Any]:
        start = len(self.received)
        await self.send(msg)
        return await self.wait_for(
            lambda m: m["type"] in (kind, "error", "bye"), timeout, start=start
        )

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.received if m["type"] == kind]

    async def close(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


async def eventually(check: Callable[[], Any], timeout: float = 5.0, every: float = 0.02) -> Any:
    """Poll an (async or plain) check until it returns truthy; its value is returned."""
    deadline = time.monotonic() + timeout * UNIT
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout * UNIT:.1f}s")
        await asyncio.sleep(every)


_handed_out: set[int] = set()


def free_port() -> int:
    """A port nothing listens on, never the same one twice in this process.

    The kernel may hand a just-closed ephemeral port out again, so two calls in a row
    (a server's HTTP and wire ports) could otherwise return the same number.
    """
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port


class ServerProcess:
    """`liveshop serve` as a real subprocess (for kill -9 and multi-process tests)."""

    def __init__(
        self,
        data_dir: Path,
        *,
        redis_url: str = "",
        port: int | None = None,
        wire_port: int | None = None,
        demo: bool = False,
        extra_env: dict[str, str] | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.wire_port = wire_port or free_port()
        self.redis_url = redis_url
        self.demo = demo
        self.extra_env = extra_env or {}
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir / f"server-{self.port}.log"

    def start(self) -> ServerProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIVESHOP_")}
        env.update(
            {
                "LIVESHOP_SECRET": SECRET,
                "LIVESHOP_LOG_FORMAT": "json",
                "LIVESHOP_LOG_LEVEL": "warning",
                **self.extra_env,
            }
        )
        if self.redis_url:
            env["LIVESHOP_REDIS_URL"] = self.redis_url
        cmd = [
            sys.executable,
            "-m",
            "liveshop",
            "serve",
            "--port",
            str(self.port),
            "--ws-port",
            str(self.wire_port),
            "--data-dir",
            str(self.data_dir),
        ]
        if self.demo:
            cmd.append("--demo")
        cmd += self.extra_args
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log, cwd=ROOT)
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout * UNIT
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"server not ready: {self.log.read_text()[-2000:]}")

    def ws_url(self, room: str) -> str:
        return f"ws://127.0.0.1:{self.wire_port}/ws/rooms/{room}"

    def http_ws_url(self, room: str) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/rooms/{room}"

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextlib.asynccontextmanager
async def clients(urls: list[str], tokens: list[str | None]) -> AsyncIterator[list[Client]]:
    """Connect and greet many clients at once; close them all afterwards."""
    conns = await asyncio.gather(*(Client.connect(u) for u in urls))
    try:
        welcomes = await asyncio.gather(*(c.hello(t) for c, t in zip(conns, tokens, strict=True)))
        assert all(w["type"] == "welcome" for w in welcomes), [
            w for w in welcomes if w["type"] != "welcome"
        ][:3]
        yield list(conns)
    finally:
        await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)
