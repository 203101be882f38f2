"""Command line: `liveshop serve | persist | token | check-config`. The only module
that imports uvicorn, and only its documented `Config` and `Server.serve(sockets=...)`
(plus the `should_exit` flag, see `Serving.stop`); starts and stops a process in order."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
import uvicorn

from liveshop.app import logs
from liveshop.core import identity
from liveshop.core.config import Settings, describe, load, unknown_variables
from liveshop.core.errors import ConfigError, LiveshopError
from liveshop.realtime.wire import WireOptions, WireServer

if TYPE_CHECKING:
    from liveshop.app.factory import LiveshopApp


class Serving:
    """One `liveshop serve` process: the runtime, the room-socket wire and uvicorn for
    HTTP, on sockets bound beforehand (so the ports are known before anything starts).

    Start: runtime (engine, stores, services), then the wire, then HTTP. Stop: stop
    accepting room sockets, `gateway.shutdown()` (bye `server_shutdown` to every room
    socket, in-flight purchases answered), HTTP, then the runtime (persister drain,
    engine last)."""

    def __init__(
        self,
        app: LiveshopApp,
        settings: Settings,
        http_socket: socket.socket,
        wire_socket: socket.socket | None,
    ) -> None:
        self.app = app
        self.settings = settings
        self.http_socket = http_socket
        self.wire_socket = wire_socket
        self.port: int = http_socket.getsockname()[1]
        self.wire_port: int | None = wire_socket.getsockname()[1] if wire_socket else None
        self.http = uvicorn.Server(uvicorn_config(app, settings))
        self.wire: WireServer | None = None
        self._stack = contextlib.AsyncExitStack()
        self._http_task: asyncio.Task[None] | None = None
        self._stopped = False

    async def start(self) -> None:
        runtime = await self._stack.enter_async_context(self.app.running())
        assert runtime.gateway is not None
        if self.wire_socket is not None:
            self.wire = WireServer(runtime.gateway.upgrade, WIRE_OPTIONS)
            await self.wire.start(self.wire_socket)
        # uvicorn serves HTTP (and room sockets on the HTTP port, through its own
        # websockets implementation); the listening socket is ours, already bound.
        self._http_task = asyncio.create_task(self.http.serve(sockets=[self.http_socket]))

    @property
    def http_task(self) -> asyncio.Task[None] | None:
        return self._http_task

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        try:
            if self.wire is not None:
                self.wire.close()
            gateway = self.app.runtime.gateway
            if gateway is not None:
                await gateway.shutdown()
            if self._http_task is not None:
                # uvicorn's documented way to stop a programmatic `serve()` is none; its
                # `should_exit` flag is what its own signal handler sets.
                self.http.should_exit = True
                await asyncio.gather(self._http_task, return_exceptions=True)
            if self.wire is not None:
                await self.wire.aclose(self.settings.shutdown_grace_s)
        finally:
            await self._stack.aclose()

    async def run(self, *, banner: bool) -> bool:
        """Serve until SIGINT/SIGTERM (or until uvicorn stops), then stop in order;
        False when it stopped without being asked to (uvicorn failed)."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        # Installed before uvicorn's serve(): uvicorn captures these signals while it
        # serves and re-raises them once it is done (its "cooperative signal handling",
        # 0.29), and asyncio delivers each to this handler as well: setting an Event
        # twice is harmless.
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await self.start()
            if banner:
                print_banner(self.settings, self.port, self.wire_port)
            assert self._http_task is not None
            waiter = asyncio.create_task(stop.wait())
            await asyncio.wait({waiter, self._http_task}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            return stop.is_set()
        finally:
            await self.stop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)


def print_banner(settings: Settings, port: int, wire_port: int | None) -> None:
    base = f"http://{settings.host}:{port}"
    ws_port = wire_port if wire_port is not None else port
    lines = [f"liveshop listening on {base}"]
    if wire_port is not None:
        lines += [
            f"  room sockets: ws://{settings.host}:{wire_port}/ws/rooms/<room>  (fast wire)",
            f"           and ws://{settings.host}:{port}/ws/rooms/<room>  (same protocol, slower)",
            "  two ports because uvicorn takes no custom websocket protocol through a public"
            " API; put /ws/ on the wire port behind your proxy (docs/scaling.md)",
        ]
    else:
        lines.append(f"  room sockets: ws://{settings.host}:{port}/ws/rooms/<room>")
    if settings.demo:
        from liveshop.app.demo import DEMO_ROOM, PAID_ROOM

        viewer = identity.issue(settings.secret, user="demo-viewer", role="viewer", room="*")
        host = identity.issue(settings.secret, user="demo-host", role="broadcaster", room=DEMO_ROOM)
        staff = identity.issue(settings.secret, user="demo-clerk", role="staff", room="*")
        hq = identity.issue(settings.secret, user="demo-hq", role="hq", room="*")
        lines += [
            "",
            f"  Viewer page:          {base}/rooms/{DEMO_ROOM}",
            f"  Broadcaster console:  {base}/console/{DEMO_ROOM}",
            f"  Store counter:        {base}/store/{DEMO_ROOM}   (pickup, order board)",
            f"  Pay-first store:      {base}/rooms/{PAID_ROOM}  and  {base}/store/{PAID_ROOM}",
            f"  HQ:                   {base}/hq   (league, catalog, price bands, packs)",
            f"  Room state (REST):    {base}/api/rooms/{DEMO_ROOM}",
            "",
            f"  LIVESHOP_SECRET={settings.secret}",
            f"  viewer token:       {viewer}",
            f"  broadcaster token:  {host}",
            f"  staff token:        {staff}",
            f"  hq token:           {hq}",
            "",
            "  Try:  python -m websockets "
            + f"ws://{settings.host}:{ws_port}/ws/rooms/{DEMO_ROOM}",
            '        then send {"type":"hello","token":"<viewer token>"}',
        ]
    print("\n".join(lines), flush=True)


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    overrides = {
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "ws_port": getattr(args, "ws_port", None),
        "data_dir": getattr(args, "data_dir", None),
        **extra,
    }
    return load(**overrides)


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (uvicorn[standard] brings it on Linux),
    as uvicorn's own `loop="auto"` would choose: its selector and transports cost a
    fraction of asyncio's per socket operation (a flash sale is many of them)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def demo_secret(settings: Settings) -> str:
    """The demo's secret, made once and kept in the data dir (mode 0600), so yesterday's
    tokens still verify after a restart on the same data."""
    path = Path(settings.data_dir) / "demo-secret"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secret + "\n")
    return secret


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args, demo=True if args.demo else None)
    if not settings.secret:
        if not settings.demo:
            raise ConfigError("LIVESHOP_SECRET: required to verify tokens (or run with --demo)")
        settings = load(**{**_overrides(settings), "secret": demo_secret(settings)})
    logs.configure(settings.log_format, settings.log_level)
    for line in unknown_variables():
        print(f"liveshop: warning: {line}", file=sys.stderr)
    if args.workers > 1:
        return supervise(settings, args.workers, no_persister=args.no_persister)
    from liveshop.app.factory import create_app

    app = create_app(settings, run_persister=not args.no_persister)
    wire_port = settings.wire_port
    serving = Serving(
        app,
        settings,
        listen_socket(settings, reuse_port=args.worker),
        None
        if wire_port is None
        else listen_socket(settings, port=wire_port, reuse_port=args.worker),
    )
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return 0 if runner.run(serving.run(banner=not args.worker)) else 1


def supervise(settings: Settings, workers: int, *, no_persister: bool) -> int:
    """`serve --workers N`: one embedded engine (unless Redis is external), N server
    processes sharing the port through SO_REUSEPORT, restarted if one dies. Worker 0
    runs the persister. SIGTERM/SIGINT stop the workers first and the engine last."""
    import subprocess
    import time

    from liveshop.engine.embedded import EmbeddedEngine

    if settings.port == 0:
        raise ConfigError("LIVESHOP_PORT: --workers needs a fixed port to share")
    if settings.wire_port == 0:
        raise ConfigError("LIVESHOP_WS_PORT: --workers needs a fixed port to share")
    log = structlog.get_logger("liveshop.supervisor")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVESHOP_")}
    env.update(
        {
            f"LIVESHOP_{k.upper()}": str(v)
            for k, v in _overrides(settings).items()
            if k not in ("host", "port", "ws_port", "data_dir")
        }
    )
    # One /metrics scrape sums every worker: prometheus-client's multiprocess files,
    # made anew at each start (old pids' files would count as live workers).
    metrics_dir = Path(settings.data_dir) / "metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    env["PROMETHEUS_MULTIPROC_DIR"] = env["LIVESHOP_METRICS_DIR"] = str(metrics_dir)
    engine = None
    if not settings.external_redis:
        engine = EmbeddedEngine(settings.data_dir, durability=settings.durability)
        engine.start()
        env["LIVESHOP_REDIS_URL"] = engine.url
    if settings.demo:  # create the demo room once, before the workers race to
        asyncio.run(_load_demo(load(env)))

    def spawn(i: int) -> subprocess.Popen[bytes]:
        cmd = [
            sys.executable,
            "-m",
            "liveshop",
            "serve",
            "--worker",
            "--host",
            settings.host,
            "--port",
            str(settings.port),
            "--ws-port",
            str(settings.ws_port if settings.ws_port is not None else settings.wire_port),
            "--data-dir",
            settings.data_dir,
        ]
        if i > 0 or no_persister:
            cmd.append("--no-persister")
        return subprocess.Popen(cmd, env={**env, "LIVESHOP_WORKER_INDEX": str(i)})

    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    procs = [spawn(i) for i in range(workers)]
    print_banner(settings, settings.port, settings.wire_port)
    print(f"  {workers} workers: pids {' '.join(str(p.pid) for p in procs)}", flush=True)
    try:
        while not stopping:
            time.sleep(0.2)
            for i, proc in enumerate(procs):
                if proc.poll() is not None and not stopping:
                    log.warning("worker exited, restarting", worker=i, code=proc.returncode)
                    procs[i] = spawn(i)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + settings.shutdown_grace_s + 15
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if engine is not None:
            engine.stop()
    return 0


async def _load_demo(settings: Settings) -> None:
    from liveshop.app import demo
    from liveshop.commerce.inventory import Inventory
    from liveshop.commerce.rooms import Rooms
    from liveshop.engine.connections import connect_redis
    from liveshop.engine.database import open_database
    from liveshop.engine.scripts import Scripts

    redis = connect_redis(settings.redis_url)
    db = await open_database(settings.database)
    try:
        scripts = Scripts(redis)
        rooms = Rooms(redis, scripts, db)
        await rooms.init_schema()
        inventory = Inventory(redis, scripts, idempotency_ttl_s=60)
        await demo.load(rooms, inventory)
        await inventory.aclose()
    finally:
        await db.close()
        await redis.aclose()


WIRE_OPTIONS = WireOptions(
    max_frame=64 * 1024,  # our own 4 KiB check answers `too_large` first
    ping_interval_s=20.0,
    ping_timeout_s=20.0,
)


def uvicorn_config(app: Any, settings: Settings) -> uvicorn.Config:
    """HTTP, and room sockets on the HTTP port through uvicorn's stock sans-I/O
    websockets (`ws="websockets-sansio"`, a documented option) and `AsgiWire`."""
    return uvicorn.Config(
        app,
        ws="websockets-sansio",
        ws_max_size=64 * 1024,  # our own 4 KiB check answers `too_large` first
        ws_per_message_deflate=False,  # no compression on room sockets: no inflate bombs
        ws_ping_interval=20,
        ws_ping_timeout=20,
        log_level="warning",
        access_log=False,
        lifespan="off",  # Serving runs the runtime: it must outlive HTTP at shutdown
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s) + 5,
    )


def listen_socket(
    settings: Settings, *, port: int | None = None, reuse_port: bool = False
) -> socket.socket:
    """A listening socket on `settings.host` and `port` (default: the HTTP port).
    Accepted sockets inherit its send buffer size: a fixed, small kernel buffer per
    viewer bounds the memory a stalled client can pin (with autotuning it grows to
    megabytes) and lets the bounded queue notice a slow consumer."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if settings.socket_sndbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, settings.socket_sndbuf)
    where = (settings.host, settings.port if port is None else port)
    try:
        sock.bind(where)
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {where[0]}:{where[1]}: {exc.strerror} "
            "(is another liveshop running? choose another --port / --ws-port)"
        ) from None
    sock.listen(socket.SOMAXCONN)  # reconnect storms: let the kernel queue handshakes
    sock.set_inheritable(True)
    return sock


def _overrides(settings: Settings) -> dict[str, Any]:
    return {name: getattr(settings, name) for name in Settings.__struct_fields__}


def cmd_persist(args: argparse.Namespace) -> int:
    settings = _settings(args)
    logs.configure(settings.log_format, settings.log_level)
    from liveshop.commerce.orders import OrderStore, Persister
    from liveshop.commerce.refunds import RefundLedger
    from liveshop.commerce.webhooks import Webhooks
    from liveshop.engine.connections import connect_redis
    from liveshop.engine.database import open_database
    from liveshop.engine.embedded import EmbeddedEngine, ping_unix

    async def main() -> None:
        engine = None
        url = settings.redis_url
        if not url:
            engine = EmbeddedEngine(settings.data_dir, durability=settings.durability)
            if not ping_unix(engine.socket_path):
                engine.start()
            else:
                engine = None  # a running server owns it; share it
            url = EmbeddedEngine(settings.data_dir).url
        redis = connect_redis(url, pool_size=4)
        db = await open_database(settings.database)
        store = OrderStore(db)
        await store.init_schema()
        await RefundLedger(db).init_schema()
        webhooks = Webhooks(
            db, settings.webhook_url, settings.webhook_secret, retry_ms=settings.webhook_retry_ms
        )
        await webhooks.init_schema()
        if webhooks.enabled:  # written here, delivered by the serving processes
            store.webhooks = webhooks
        persister = Persister(
            redis, store, batch=settings.persist_batch, claim_idle_ms=settings.persist_claim_idle_ms
        )
        task = asyncio.create_task(persister.run())
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        structlog.get_logger("liveshop").info("persister running", consumer=persister.consumer)
        await stop.wait()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await persister.drain()
        await db.close()
        await redis.aclose()
        if engine is not None:
            await asyncio.to_thread(engine.stop)

    asyncio.run(main())
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    if args.ttl <= 0:
        raise ConfigError(f"--ttl: {args.ttl} s would issue a token that has already expired")
    settings = load()
    if not settings.secret:
        raise ConfigError("LIVESHOP_SECRET: required to sign tokens")
    print(
        identity.issue(
            settings.secret, user=args.user, role=args.role, room=args.room, ttl_s=args.ttl
        )
    )
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    settings = _settings(args)
    problems = unknown_variables()
    if not settings.secret:
        problems.append("LIVESHOP_SECRET is missing: `serve` refuses to start without it")
    for name in Settings.__struct_fields__:
        value = getattr(settings, name)
        if name == "secret":
            value = "(set)" if value else "(missing: required unless --demo)"
        print(f"LIVESHOP_{name.upper():<24} {value}")
    if settings.redis_url:
        import redis as redis_sync

        try:
            redis_sync.Redis.from_url(settings.redis_url, socket_connect_timeout=2).ping()
            print(f"redis: reachable at {settings.redis_url}")
        except redis_sync.RedisError as exc:
            print(f"redis: NOT reachable at {settings.redis_url}: {exc}")
            return 1
    else:
        from liveshop.engine.embedded import engine_binary

        print(f"redis: embedded engine {engine_binary()} in {settings.data_dir}/engine")
    for line in problems:
        print(f"problem: {line}")
    return 1 if problems else 0


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="liveshop", description="Real-time live-commerce server.")
    sub = ap.add_subparsers(dest="command", required=True)

    serve = sub.add_parser(
        "serve", help="run the server (embedded engine unless LIVESHOP_REDIS_URL)"
    )
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument(
        "--ws-port", type=int, help="room-socket wire port (default: --port + 1; -1: off)"
    )
    serve.add_argument("--data-dir")
    serve.add_argument("--demo", action="store_true", help="load the demo store room, print tokens")
    serve.add_argument(
        "--no-persister",
        action="store_true",
        help="leave the outbox to a separate `liveshop persist`",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes sharing the port (one embedded engine for all)",
    )
    serve.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    serve.set_defaults(func=cmd_serve)

    persist = sub.add_parser("persist", help="run only the outbox → database persister")
    persist.add_argument("--data-dir")
    persist.set_defaults(func=cmd_persist)

    token = sub.add_parser("token", help="print a signed token (needs LIVESHOP_SECRET)")
    token.add_argument("--role", required=True, choices=identity.ROLES)
    token.add_argument("--user", required=True)
    token.add_argument("--room", default="*")
    token.add_argument("--ttl", type=int, default=12 * 3600, help="seconds")
    token.set_defaults(func=cmd_token)

    check = sub.add_parser("check-config", help="validate LIVESHOP_* settings and reach Redis")
    check.add_argument("--data-dir")
    check.set_defaults(func=cmd_check_config)

    sub.add_parser("settings", help="list every LIVESHOP_ variable and its default").set_defaults(
        func=lambda _: [print(f"{var:<32} {default}") for var, default in describe()] and 0
    )
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ConfigError, LiveshopError) as exc:
        print(f"liveshop: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
