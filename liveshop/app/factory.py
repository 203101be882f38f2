"""The app factory: the one place that wires settings, engine, stores, services,
background tasks and routes together. The only module that imports Starlette.

Start-up order: engine (embedded, unless LIVESHOP_REDIS_URL) → Redis and scripts →
SQLite → services → hub → background tasks. Shutdown runs in reverse: the engine
stops last, after the persister has flushed the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import msgspec
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from liveshop import __version__
from liveshop.app import demo
from liveshop.app.admin import AdminApi, GatewaySockets
from liveshop.app.api import Api, ApiRequest, ApiResponse, guarded
from liveshop.app.gateway import Gateway, Services
from liveshop.app.gcpacer import GcPacer
from liveshop.app.hq_api import HqApi
from liveshop.app.insights_api import InsightsApi
from liveshop.app.league_socket import HQ_SOCKET_PATH, LeagueSockets
from liveshop.app.orders_api import OrdersApi
from liveshop.app.reservations_api import ReservationsApi
from liveshop.commerce.catalog import Catalog
from liveshop.commerce.chain_groups import ChainGroups
from liveshop.commerce.draws import Draws
from liveshop.commerce.groups import Groups
from liveshop.commerce.inventory import Inventory
from liveshop.commerce.joint_rooms import JointRooms
from liveshop.commerce.league import League
from liveshop.commerce.moderation import Moderation
from liveshop.commerce.offers import Offers
from liveshop.commerce.order_book import DueSweeper, OrderBook, OrderIds, QrSigner
from liveshop.commerce.orders import OrderStore, Persister
from liveshop.commerce.packs import Packs
from liveshop.commerce.payments import Payments, payment_key
from liveshop.commerce.polls import Polls
from liveshop.commerce.presence import Presence
from liveshop.commerce.price_bands import PriceBands
from liveshop.commerce.processes import Processes
from liveshop.commerce.purchases import Purchases
from liveshop.commerce.reconcile import Reconciler
from liveshop.commerce.refunds import DemoRefundProvider, Refunder, RefundLedger, RefundProvider
from liveshop.commerce.reservations import Reservations
from liveshop.commerce.reviews import Reviews
from liveshop.commerce.rooms import Rooms
from liveshop.commerce.stats import Broadcasters
from liveshop.commerce.webhooks import Webhooks
from liveshop.core import metrics
from liveshop.core.config import Settings
from liveshop.core.errors import ErrorCode
from liveshop.engine.connections import (
    check_persistence,
    connect_cluster,
    connect_redis,
)
from liveshop.engine.database import open_database
from liveshop.engine.embedded import EmbeddedEngine
from liveshop.engine.scripts import Scripts
from liveshop.realtime.hub import Hub

log = structlog.get_logger("liveshop.app.factory")
STATIC = resources.files("liveshop") / "static"
ROOM_SOCKET_PREFIX = "/ws/rooms/"


@dataclass
class Runtime:
    """Everything a running app holds; exposed as `app.state.runtime` for tests and CLI."""

    settings: Settings
    engine: EmbeddedEngine | None = None
    redis: Redis | None = None
    services: Services | None = None
    gateway: Gateway | None = None
    orders: OrderStore | None = None
    persister: Persister | None = None
    reconciler: Reconciler | None = None
    presence: Presence | None = None
    processes: Processes | None = None
    broadcasters: Broadcasters | None = None
    gc_pacer: GcPacer | None = None
    order_book: OrderBook | None = None
    sweeper: DueSweeper | None = None
    refunder: Refunder | None = None
    chain_groups: ChainGroups | None = None
    league: LeagueSockets | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    async def shutdown(self) -> None:
        """Graceful: bye to every socket, stop tasks, flush orders, stop the engine last."""
        if self.gateway is not None:
            await self.gateway.shutdown()
        if self.league is not None:
            await self.league.stop()
        # Loops stop between Redis commands; cancelling one mid-command is a last resort.
        for loop in (
            self.persister,
            self.reconciler,
            self.presence,
            self.processes,
            self.broadcasters,
            self.gc_pacer,
            self.sweeper,
            self.refunder,
            self.chain_groups,
        ):
            if loop is not None:
                loop.stop()
        if self.tasks:
            _, late = await asyncio.wait(self.tasks, timeout=5.0)
            for task in late:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()
        if self.presence is not None:
            with contextlib.suppress(RedisError, OSError):
                await self.presence.withdraw()
        if self.processes is not None:
            with contextlib.suppress(RedisError, OSError):
                await self.processes.withdraw()
        if self.persister is not None:
            with contextlib.suppress(RedisError, OSError):
                await asyncio.wait_for(self.persister.drain(), 10.0)


async def supervised(
    name: str,
    run: Callable[[], Awaitable[None]],
    *,
    on_restart: Callable[[], None] | None = None,
    delay_s: float = 1.0,
) -> None:
    """Run a background loop; if it ever raises, log it and start it again. A loop that
    returns has been stopped on purpose. Nothing here dies silently."""
    while True:
        try:
            await run()
            return
        except Exception:
            log.exception("background task died; restarting", task=name, restart_in=delay_s)
            if on_restart is not None:
                on_restart()
            await asyncio.sleep(delay_s)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such path, method not allowed) in the API's JSON
    error format, not plain text."""
    assert isinstance(exc, HTTPException)
    code = ErrorCode.NOT_FOUND if exc.status_code == 404 else ErrorCode.BAD_MESSAGE
    message = {404: f"no such path {request.url.path}", 405: f"{request.method} is not allowed"}
    body = {"error": {"code": code.value, "message": message.get(exc.status_code, exc.detail)}}
    return Response(
        msgspec.json.encode(body),
        exc.status_code,
        headers=exc.headers,
        media_type="application/json",
    )


def _json(resp: ApiResponse) -> Response:
    body = resp.raw or msgspec.json.encode(resp.body)
    return Response(body, resp.status, media_type=resp.content_type)


def _endpoint(handler: Callable[[ApiRequest], Awaitable[ApiResponse]]) -> Callable[..., Any]:
    async def endpoint(request: Request) -> Response:
        req = ApiRequest(
            path_params=request.path_params,
            query=request.query_params,
            authorization=request.headers.get("authorization"),
            body=await request.body(),
            headers=request.headers,
        )
        return _json(await guarded(handler, req))

    return endpoint


metrics.build_info.labels(__version__).set(1)


def create_app(
    settings: Settings,
    *,
    run_persister: bool = True,
    refund_provider: RefundProvider | None = None,
) -> LiveshopApp:
    """`refund_provider`: what pays refunds back (the demo's stand-in on a demo server;
    without one, refunds wait as `pending` on the store page)."""
    runtime = Runtime(settings)
    gateway_ref: dict[str, Gateway] = {}

    api_ref: dict[str, Api] = {}
    orders_ref: dict[str, OrdersApi] = {}
    admin_ref: dict[str, AdminApi] = {}
    hq_ref: dict[str, HqApi] = {}
    insights_ref: dict[str, InsightsApi] = {}

    def bound(handlers: dict[str, Any], key: str, name: str) -> Callable[..., Any]:
        """A route to the handler `name` of the object the lifespan puts in `handlers`
        (the handlers exist only once the engine and database are up)."""

        async def call(req: ApiRequest) -> ApiResponse:
            handler: Callable[[ApiRequest], Awaitable[ApiResponse]] = getattr(handlers[key], name)
            return await handler(req)

        return _endpoint(call)

    def api(name: str) -> Callable[..., Any]:
        return bound(api_ref, "api", name)

    def admin(name: str) -> Callable[..., Any]:
        return bound(admin_ref, "admin", name)

    def orders_api(name: str) -> Callable[..., Any]:
        return bound(orders_ref, "api", name)

    def hq_api(name: str) -> Callable[..., Any]:
        return bound(hq_ref, "api", name)

    reservations_ref: dict[str, ReservationsApi] = {}

    def reservations_api(name: str) -> Callable[..., Any]:
        return bound(reservations_ref, "api", name)

    async def metrics_endpoint(request: Request) -> Response:
        body, content_type = metrics.render(settings.metrics_dir)
        return Response(body, 200, headers={"Content-Type": content_type})

    def page(name: str) -> Callable[..., Any]:
        async def endpoint(request: Request) -> Response:
            response = FileResponse(str(STATIC / name), headers={"Cache-Control": "no-cache"})
            if "ls_device" not in request.cookies:
                # moderation's device: a kick also keeps out a new identity from this browser
                response.set_cookie(
                    "ls_device",
                    secrets.token_hex(12),
                    max_age=365 * 86400,
                    httponly=True,
                    samesite="lax",
                )
            return response

        return endpoint

    @contextlib.asynccontextmanager
    async def running() -> AsyncIterator[Runtime]:
        url = settings.redis_url
        if not settings.external_redis:
            runtime.engine = EmbeddedEngine(settings.data_dir, durability=settings.durability)
            # On this thread, not a worker: the engine's parent-death signal follows the
            # thread that started it, and this one lives as long as the server.
            runtime.engine.start()
            url = runtime.engine.url
        redis: Any = (
            connect_cluster(
                settings.redis_cluster,
                pool_size=settings.redis_pool_size,
                timeout_s=settings.redis_timeout_s,
            )
            if settings.redis_cluster
            else connect_redis(
                url, pool_size=settings.redis_pool_size, timeout_s=settings.redis_timeout_s
            )
        )
        runtime.redis = redis
        db = None
        try:
            if settings.external_redis:
                for warning in await check_persistence(redis):
                    log.warning("durability", problem=warning)
            scripts = Scripts(redis, sharded=bool(settings.redis_cluster))
            await scripts.load_all()
            db = await open_database(settings.database)
            rooms = Rooms(redis, scripts, db)
            await rooms.init_schema()
            orders = runtime.orders = OrderStore(db)
            await orders.init_schema()
            webhooks = Webhooks(
                db,
                settings.webhook_url,
                settings.webhook_secret,
                retry_ms=settings.webhook_retry_ms,
            )
            await webhooks.init_schema()
            if webhooks.enabled:
                orders.webhooks = webhooks  # order moves become order.changed events
            refund_ledger = RefundLedger(db)
            await refund_ledger.init_schema()
            catalog = Catalog(db)
            await catalog.init_schema()
            bands = PriceBands(redis, scripts, db, rooms)
            await bands.init_schema()
            await bands.sync()  # the rooms' copies, in case the engine lost them
            packs = Packs(redis, scripts, db, rooms, catalog, bands)
            await packs.init_schema()
            reviews = Reviews(db)
            await reviews.init_schema()
            order_book = runtime.order_book = OrderBook(scripts, redis, QrSigner(settings.secret))
            inventory = Inventory(
                redis,
                scripts,
                idempotency_ttl_s=settings.idempotency_ttl_s,
                timeout_s=settings.redis_timeout_s,
                qr=order_book.qr,
                order_ids=OrderIds(settings.secret),
            )
            joint = JointRooms(
                redis, scripts, inventory, idempotency_ttl_s=settings.idempotency_ttl_s
            )
            offers = Offers(redis, scripts)
            purchases = Purchases(inventory, redis)
            hub = Hub(
                redis,
                coalesce_ms=settings.coalesce_ms,
                on_stock=purchases.on_stock,
                on_room_closed=purchases.on_room_closed,
            )
            await hub.start()
            groups = Groups(
                scripts,
                idempotency_ttl_s=settings.idempotency_ttl_s,
                qr=order_book.qr,
                order_ids=OrderIds(settings.secret),
                batcher=inventory.batcher,
            )
            chain_groups = runtime.chain_groups = ChainGroups(
                redis,
                scripts,
                order_book,
                idempotency_ttl_s=settings.idempotency_ttl_s,
                qr=order_book.qr,
                order_ids=OrderIds(settings.secret),
                interval_s=settings.sweep_interval_s,
                batcher=inventory.batcher,
            )
            if webhooks.enabled:
                chain_groups.webhooks = webhooks  # a deal's close becomes group.closed
            moderation = Moderation(redis, scripts)
            polls = Polls(redis, scripts, db)
            await polls.init_schema()
            draws = Draws(redis, scripts, db)
            await draws.init_schema()
            services = runtime.services = Services(
                settings,
                rooms,
                inventory,
                offers,
                purchases,
                hub,
                redis,
                order_book,
                groups,
                chain_groups,
                packs,
                reviews,
                joint,
                moderation,
                polls,
                draws,
            )
            gateway_ref["gateway"] = runtime.gateway = Gateway(services)
            league = runtime.league = LeagueSockets(
                League(redis, scripts), rooms.all_ids, settings.secret
            )
            runtime.gateway.league = league

            async def ready() -> tuple[dict[str, bool], dict[str, object]]:
                checks = {"redis": False, "database": False}
                with contextlib.suppress(Exception):
                    checks["redis"] = bool(await asyncio.wait_for(redis.ping(), 1.0))
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(db.ping(), 1.0)
                    checks["database"] = True
                if runtime.persister is not None:
                    # Stuck or failing for 10 s: acked orders are not reaching the database.
                    now = asyncio.get_running_loop().time()
                    checks["persister"] = runtime.persister.health.ok(now)
                details: dict[str, object] = {}
                if runtime.reconciler is not None:
                    # An alarm is for people to look at; the process itself is fine.
                    details["reconciliation"] = {"alarms": runtime.reconciler.alarms}
                return checks, details

            api_ref["api"] = Api(settings, rooms, inventory, orders, ready, catalog, bands)
            hq_ref["api"] = HqApi(
                settings, rooms, catalog, bands, packs, reviews, moderation, draws
            )
            insights_ref["api"] = InsightsApi.build(settings, rooms, db)
            reservations_ref["api"] = ReservationsApi(settings, rooms, Reservations(redis))
            payments = Payments(
                order_book,
                payment_key(
                    settings.secret, payment_secret=settings.payment_secret, demo=settings.demo
                ),
            )
            orders_ref["api"] = OrdersApi(
                settings, rooms, order_book, orders, refund_ledger, payments, chain_groups
            )
            runtime.tasks.append(
                asyncio.create_task(supervised("chain-groups", chain_groups.run), name="chain")
            )
            sweeper = runtime.sweeper = DueSweeper(
                order_book,
                rooms.all_ids,
                interval_s=settings.sweep_interval_s,
                also=[packs.sweep, joint.sweep, polls.sweep, draws.sweep],
            )
            runtime.tasks.append(
                asyncio.create_task(supervised("sweeper", sweeper.run), name="sweeper")
            )
            if webhooks.enabled:
                runtime.tasks.append(
                    asyncio.create_task(supervised("webhooks", webhooks.run), name="webhooks")
                )
            provider = refund_provider or (DemoRefundProvider() if settings.demo else None)
            if provider is not None:
                refunder = runtime.refunder = Refunder(refund_ledger, provider, order_book)
                runtime.tasks.append(
                    asyncio.create_task(supervised("refunder", refunder.run), name="refunder")
                )
            else:
                log.warning("no refund provider: refunds stay pending on the store page")
            if settings.demo:
                await demo.load(rooms, inventory)
            runtime.presence = Presence(redis, scripts, hub, ttl_ms=settings.presence_ttl_ms)
            broadcasters = runtime.broadcasters = Broadcasters(redis, hub, offers, runtime.presence)
            gateway = runtime.gateway
            runtime.gc_pacer = GcPacer(inventory.quiet_for, lambda: len(gateway.sockets))
            processes = runtime.processes = Processes(
                redis,
                GatewaySockets(gateway, hub),
                process_id=runtime.presence.process_id,
                interval_s=settings.heartbeat_s,
                ttl_s=settings.heartbeat_ttl_s,
            )
            admin_ref["admin"] = AdminApi(settings, redis, rooms, offers, processes)
            runtime.tasks += [
                asyncio.create_task(supervised("presence", runtime.presence.run), name="presence"),
                asyncio.create_task(supervised("broadcasters", broadcasters.run), name="stats"),
                asyncio.create_task(supervised("gc-pacer", runtime.gc_pacer.run), name="gc-pacer"),
                asyncio.create_task(supervised("processes", processes.run), name="processes"),
            ]
            # In every process, its own loop: it must keep judging while a persister is
            # down; a lease makes one process the judge at a time.
            reconciler = runtime.reconciler = Reconciler(
                redis,
                scripts,
                orders,
                interval_s=settings.reconcile_interval_s,
                alarm_after_s=settings.reconcile_alarm_s,
                owner=runtime.presence.process_id,
            )
            runtime.tasks.append(
                asyncio.create_task(supervised("reconciler", reconciler.run), name="reconciler")
            )
            if run_persister:
                persister = runtime.persister = Persister(
                    redis,
                    orders,
                    batch=settings.persist_batch,
                    claim_idle_ms=settings.persist_claim_idle_ms,
                )

                def persister_restarted() -> None:
                    persister.health.restarts += 1

                runtime.tasks.append(
                    asyncio.create_task(
                        supervised("persister", persister.run, on_restart=persister_restarted),
                        name="persister",
                    )
                )
            log.info(
                "liveshop ready",
                redis="embedded" if runtime.engine else settings.redis_url,
                db=db.dialect,
            )
            yield runtime
        finally:
            await runtime.shutdown()
            if runtime.services is not None:
                await runtime.services.hub.stop()
                await runtime.services.inventory.aclose()
            if db is not None:
                await db.close()
            await redis.aclose()
            if runtime.engine is not None:
                await asyncio.to_thread(runtime.engine.stop)

    routes = [
        Route("/healthz", api("healthz")),
        Route("/readyz", api("readyz")),
        Route("/metrics", metrics_endpoint),
        Route("/api/rooms", api("list_rooms")),
        Route("/api/rooms/{room_id}", api("get_room"), methods=["GET"]),
        Route("/api/rooms/{room_id}", api("put_room"), methods=["PUT"]),
        Route("/api/rooms/{room_id}/products/{sku}", api("put_product"), methods=["PUT"]),
        Route("/api/rooms/{room_id}/sessions", api("list_sessions")),
        Route("/api/orders", api("list_orders")),
        Route("/api/rooms/{room_id}/orders", orders_api("room_orders")),
        Route("/api/rooms/{room_id}/refunds", orders_api("room_refunds")),
        Route("/api/rooms/{room_id}/pickups/verify", orders_api("verify"), methods=["POST"]),
        Route("/api/orders/{order_id}/undo_verify", orders_api("undo_verify"), methods=["POST"]),
        Route("/api/orders/{order_id}/state", orders_api("set_state"), methods=["POST"]),
        Route("/api/me/orders", orders_api("my_orders")),
        Route("/api/payments/notify", orders_api("payment_notify"), methods=["POST"]),
        Route("/api/deliveries/notify", orders_api("delivery_notify"), methods=["POST"]),
        Route("/api/demo/pay", orders_api("demo_pay"), methods=["POST"]),
        Route("/api/qr.svg", orders_api("qr_svg")),
        Route("/api/groups", orders_api("start_chain_group"), methods=["POST"]),
        Route("/api/groups/{group_id}", orders_api("get_chain_group"), methods=["GET"]),
        Route("/api/groups/{group_id}/cancel", orders_api("cancel_chain_group"), methods=["POST"]),
        Route("/api/catalog", hq_api("list_catalog")),
        Route("/api/catalog/{sku}", hq_api("get_catalog"), methods=["GET"]),
        Route("/api/catalog/{sku}", hq_api("put_catalog"), methods=["PUT"]),
        Route("/api/bands", hq_api("list_bands")),
        Route("/api/bands/{sku}", hq_api("put_band"), methods=["PUT"]),
        Route("/api/bands/{sku}", hq_api("delete_band"), methods=["DELETE"]),
        Route("/api/rooms/{room_id}/bands", hq_api("room_bands")),
        Route("/api/rooms/{room_id}/pack", hq_api("room_pack")),
        Route("/api/rooms/{room_id}/sessions/{session_id}/report", hq_api("session_report")),
        Route("/api/rooms/{room_id}/moderation", hq_api("room_moderation")),
        Route("/api/rooms/{room_id}/schedule", reservations_api("put_schedule"), methods=["PUT"]),
        Route("/api/rooms/{room_id}/reservations", reservations_api("status"), methods=["GET"]),
        Route("/api/rooms/{room_id}/reservations", reservations_api("reserve"), methods=["POST"]),
        Route("/api/rooms/{room_id}/reservations", reservations_api("cancel"), methods=["DELETE"]),
        Route("/api/rooms/{room_id}/draws/{draw_id}", hq_api("draw_result")),
        Route("/api/chain/words", hq_api("chain_words"), methods=["GET"]),
        Route("/api/chain/words", hq_api("put_chain_words"), methods=["PUT"]),
        Route("/api/packs", hq_api("list_packs")),
        Route("/api/packs/{pack_id}", hq_api("get_pack"), methods=["GET"]),
        Route("/api/packs/{pack_id}", hq_api("put_pack"), methods=["PUT"]),
        Route("/api/packs/{pack_id}/preview", hq_api("preview_pack"), methods=["POST"]),
        Route("/api/packs/{pack_id}/withdraw", hq_api("withdraw_pack"), methods=["POST"]),
        Route("/api/packs/{pack_id}/results", hq_api("pack_results")),
        # the store's dashboard, its customers and suggestions; HQ's chain-wide dashboard
        Route("/api/rooms/{room_id}/dashboard", bound(insights_ref, "api", "room_dashboard")),
        Route("/api/rooms/{room_id}/customers", bound(insights_ref, "api", "room_customers")),
        Route("/api/rooms/{room_id}/suggestions", bound(insights_ref, "api", "room_suggestions")),
        Route("/api/dashboard", bound(insights_ref, "api", "chain_dashboard")),
        Route("/dashboard", page("dashboard.html")),
        Route("/dashboard/{room_id}", page("dashboard.html")),
        Route("/api/demo/token", api("demo_token")),
        Route("/api/admin/processes", admin("processes")),
        Route("/api/admin/rooms", admin("rooms")),
        Route("/api/admin/rooms/{room_id}/messages", admin("room_messages")),
        Route("/api/admin/rooms/{room_id}/connections", admin("room_connections")),
        Route(
            "/api/admin/rooms/{room_id}/offers/{offer_id}/end",
            admin("end_offer"),
            methods=["POST"],
        ),
        Route("/api/admin/connections/{conn_id}/disconnect", admin("disconnect"), methods=["POST"]),
        Route("/admin", page("admin.html")),
        Route("/hq", page("hq.html")),
        Route("/rooms/{room_id}", page("viewer.html")),
        Route("/console/{room_id}", page("console.html")),
        Route("/store/{room_id}", page("store.html")),
        Route("/report/{room_id}/{session_id}", page("report.html")),
        Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with running():
            yield

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error},  # JSON errors everywhere
    )
    app.state.runtime = runtime
    return LiveshopApp(app, gateway_ref, running)


class LiveshopApp:
    """The ASGI app. Room sockets (`/ws/rooms/{room_id}`) go straight to the gateway:
    they are the most numerous, longest-lived connections, and Starlette's router and
    middleware would keep ~3 KB of frames and wrappers alive per socket for nothing
    they use. Everything else, and the lifespan, is Starlette's."""

    def __init__(
        self,
        starlette: Starlette,
        gateway_ref: dict[str, Gateway],
        running: Callable[[], contextlib.AbstractAsyncContextManager[Runtime]],
    ) -> None:
        self.starlette = starlette
        self.state = starlette.state
        self._gateway_ref = gateway_ref
        self._running = running

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.starlette.state.runtime
        return runtime

    def running(self) -> contextlib.AbstractAsyncContextManager[Runtime]:
        """Start the runtime (engine, stores, services, background tasks) and stop it on
        exit, engine last. The Starlette lifespan uses it for a foreign ASGI server;
        `liveshop serve` uses it directly (uvicorn with `lifespan="off"`), so it can stop
        the room sockets before HTTP and the runtime after both."""
        return self._running()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            room_id = _room_socket(scope)
            gateway = self._gateway_ref.get("gateway")
            if room_id is not None and gateway is not None:
                scope["path_params"] = {"room_id": room_id}
                await gateway(scope, receive, send)
                return
            if gateway is not None and _socket_path(scope) == HQ_SOCKET_PATH:
                await gateway.serve_hq(scope, receive, send)
                return
        await self.starlette(scope, receive, send)


def _socket_path(scope: Any) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path") or ""
    if root and path.startswith(root):
        path = path[len(root) :]
    return path


def _room_socket(scope: Any) -> str | None:
    path = _socket_path(scope)
    if not path.startswith(ROOM_SOCKET_PREFIX):
        return None
    room_id = path[len(ROOM_SOCKET_PREFIX) :]
    return room_id if room_id and "/" not in room_id else None
