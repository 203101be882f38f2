"""What the load is pointed at: a liveshop server (spawned here or given by --url) or
one of the baseline servers in `loadtest/baselines`, each a subprocess on 127.0.0.1.

Owns starting and stopping those subprocesses, minting tokens, and setting up a
fresh room through the REST API. Never points anywhere but 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from liveshop.core import identity

ROOT = Path(__file__).resolve().parent.parent
BASELINES = {
    "raw": "loadtest.baselines.raw_broadcast",
    "socketio": "loadtest.baselines.socketio_server",
    "sqlite": "loadtest.baselines.sqlite_shop",
    "naive": "loadtest.baselines.naive_peer",
}
# Baselines that take the scenario's products on their command line (`--product
# sku:price:stock`); the others have a fixed catalog of their own.
TAKES_PRODUCTS = frozenset({"naive"})


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


@dataclass
class Target:
    """A server under load: where it listens and, if we started it, its process."""

    method: str  # liveshop | raw | socketio | sqlite | naive
    port: int
    secret: str
    proc: subprocess.Popen[bytes] | None = None
    data_dir: Path | None = None
    log: Path | None = None
    room: str = "s001"
    extra: dict[str, Any] = field(default_factory=dict)
    wire_port: int | None = None  # liveshop's room-socket wire; None: sockets on `port`

    @property
    def ws_port(self) -> int:
        """Where room sockets connect: liveshop's fast wire, or the one port."""
        return self.wire_port or self.port

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_path(self) -> str:
        return f"/ws/rooms/{self.room}"

    @property
    def orders_in(self) -> str:
        """Where `orders()` finds them: liveshop's order database, or the naive peer's
        outbox stream (XRANGE: it has no database)."""
        return "the outbox stream" if self.method == "naive" else "the database"

    @property
    def socketio(self) -> bool:
        return self.method == "socketio"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else self.extra.get("pid")

    def token(self, user: str, role: str) -> str:
        return identity.issue(self.secret, user=user, role=role, room="*")

    def http_json(self, method: str, path: str, body: Any = None, timeout: float = 10.0) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.http + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + self.token("loadtest-hq", "hq"))
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())

    async def api(self, method: str, path: str, body: Any = None) -> Any:
        return await asyncio.to_thread(self.http_json, method, path, body)

    def worker_setup(self, **extra: Any) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.ws_port,
            "path": self.ws_path,
            "socketio": self.socketio,
            "secret": self.secret,
            **extra,
        }

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None


def wait_ready(target: Target, path: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if target.proc is not None and target.proc.poll() is not None:
            tail = target.log.read_text()[-3000:] if target.log else ""
            raise RuntimeError(f"{target.method} server exited during start-up:\n{tail}")
        try:
            with urllib.request.urlopen(target.http + path, timeout=1) as resp:
                if resp.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.1)
    target.stop()
    raise TimeoutError(f"{target.method} server not ready on {target.http}{path}")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVESHOP_")}
    env.update(extra)
    return env


def spawn_liveshop(
    work: Path,
    *,
    durability: str = "strict",
    redis_url: str = "",
    log_level: str = "warning",
    workers: int = 1,
) -> Target:
    """`liveshop serve` with its own embedded engine in a fresh data dir."""
    work.mkdir(parents=True, exist_ok=True)
    data_dir = Path(tempfile.mkdtemp(prefix="liveshop-", dir=work))
    port = free_port()
    wire_port = free_port()
    secret = secrets.token_urlsafe(32)
    env = _env(
        LIVESHOP_SECRET=secret,
        LIVESHOP_LOG_LEVEL=log_level,
        LIVESHOP_LOG_FORMAT="json",
        LIVESHOP_DURABILITY=durability,
    )
    if redis_url:
        env["LIVESHOP_REDIS_URL"] = redis_url
    log = data_dir / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "liveshop",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--ws-port",
                str(wire_port),
                "--data-dir",
                str(data_dir),
                *(["--workers", str(workers)] if workers > 1 else []),
            ],
            env=env,
            stdout=out,
            stderr=out,
            cwd=ROOT,
        )
    target = Target("liveshop", port, secret, proc, data_dir, log, wire_port=wire_port)
    wait_ready(target, "/readyz")
    return target


def spawn_baseline(
    method: str, work: Path, products: Sequence[tuple[str, int, int]] = (), **args: Any
) -> Target:
    """A baseline server from loadtest/baselines as a subprocess, given the token secret
    (LIVESHOP_SECRET) and, if it takes them (TAKES_PRODUCTS), the products."""
    work.mkdir(parents=True, exist_ok=True)
    data_dir = Path(tempfile.mkdtemp(prefix=f"{method}-", dir=work))
    port = free_port()
    secret = secrets.token_urlsafe(32)
    log = data_dir / "server.log"
    cmd = [
        sys.executable,
        "-m",
        BASELINES[method],
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
    ]
    for k, v in args.items():
        cmd += [f"--{k.replace('_', '-')}", str(v)]
    if method in TAKES_PRODUCTS:
        for sku, price, stock in products:
            cmd += ["--product", f"{sku}:{price}:{stock}"]
    with open(log, "wb") as out:
        env = _env(LIVESHOP_SECRET=secret)
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=out, cwd=ROOT)
    target = Target(method, port, secret, proc, data_dir, log)
    wait_ready(target, "/readyz")
    return target


def attach(url: str, secret: str, pid: int | None = None, ws_port: int | None = None) -> Target:
    """A liveshop server someone else runs: `ws://127.0.0.1:PORT` (its HTTP port); room
    sockets go to `ws_port`, by default liveshop's: PORT + 1 (-1: PORT itself)."""
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost"):
        raise SystemExit("loadtest: only 127.0.0.1 may be loaded")
    if len(secret.encode()) < 32:
        raise SystemExit("loadtest: set LIVESHOP_SECRET (the server's, >= 32 bytes) to mint tokens")
    port = parts.port or 80
    wire = port + 1 if ws_port is None else (None if ws_port == -1 else ws_port)
    target = Target("liveshop", port, secret, extra={"pid": pid} if pid else {}, wire_port=wire)
    wait_ready(target, "/readyz", timeout=10)
    return target


async def new_room(target: Target, products: list[tuple[str, int, int]], prefix: str = "lt") -> str:
    """Create a fresh room with products [(sku, price, stock)]; returns its id. Baselines
    have one implicit room and a fixed catalog set by their command line."""
    if target.method != "liveshop":
        return target.room
    room = f"{prefix}{secrets.token_hex(4)}"
    await target.api("PUT", f"/api/rooms/{room}", {"name": "loadtest", "title": "load test"})
    for sku, price, stock in products:
        await target.api(
            "PUT",
            f"/api/rooms/{room}/products/{sku}",
            {"name": sku, "price": price, "stock": stock},
        )
    target.room = room
    return room


async def wait_live(target: Target, timeout: float = 10.0) -> None:
    if target.method != "liveshop":
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = await target.api("GET", f"/api/rooms/{target.room}")
        if state.get("live"):
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("room did not go live")


async def orders(target: Target, limit: int = 10_000) -> list[dict[str, Any]]:
    reply = await target.api("GET", f"/api/orders?room_id={target.room}&limit={limit}")
    return list(reply["orders"])


async def room_state(target: Target) -> dict[str, Any]:
    return dict(await target.api("GET", f"/api/rooms/{target.room}"))
