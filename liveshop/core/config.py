"""Settings, loaded once from `LIVESHOP_*` variables into a frozen, validated object.

Base module: the one reader of `LIVESHOP_*` settings (the CLI's `--workers` supervisor
only copies the environment to its workers; prometheus-client reads its own
PROMETHEUS_MULTIPROC_DIR). CLI flags override the environment through `load(...,
overrides)`. Errors name the variable at fault.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import msgspec

from liveshop.core.errors import ConfigError


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Every knob of a liveshop process. Field `x` comes from `LIVESHOP_X`."""

    secret: str = ""
    redis_url: str = ""  # empty: start the embedded engine in data_dir
    redis_cluster: str = ""  # "host:port,host:port": a Redis Cluster's seed nodes
    data_dir: str = "./data"
    db_path: str = ""  # empty: <data_dir>/liveshop.db
    # sqlite:///path or postgresql://user@host:port/db; empty: SQLite at db_path
    database_url: str = ""
    durability: Literal["strict", "fast"] = "strict"
    host: str = "127.0.0.1"
    port: int = 8000
    # The room-socket wire's own port (uvicorn cannot be handed our protocol): None is
    # the HTTP port + 1 (0 when that is 0: a random free port), -1 is off (room sockets
    # only on the HTTP port, through uvicorn's websockets and AsgiWire).
    ws_port: int | None = None
    demo: bool = False
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    allowed_origins: str = "*"  # comma-separated origins, or * for any
    max_sockets: int = 20_000  # per process; beyond it new sockets get HTTP 503
    max_sockets_per_ip: int = 1000  # open sockets per client address (429 beyond)
    connects_per_ip_per_s: float = 100.0  # new sockets per address per second, burst 4x
    limit_loopback: bool = False  # apply the per-IP caps to 127.0.0.1/::1 too
    forwarded_allow_ips: str = "127.0.0.1"  # proxies whose X-Forwarded-For is trusted
    socket_sndbuf: int = 65_536  # kernel send buffer per socket, bytes (0: kernel autotuning)
    shutdown_grace_s: float = 5.0  # in-flight requests get this long to finish on SIGTERM
    coalesce_ms: int = 50
    max_queue: int = 1024
    presence_ttl_ms: int = 3500  # reports come every second: three may be late
    idempotency_ttl_s: int = 86_400
    persist_batch: int = 500
    persist_claim_idle_ms: int = 5000
    # prometheus-client multiprocess files of `serve --workers N` (set by the CLI)
    metrics_dir: str = ""
    reconcile_interval_s: float = 2.0  # engine vs database, per room and SKU
    reconcile_alarm_s: float = 10.0  # a difference lasting this long is an alarm
    redis_timeout_s: float = 1.0
    redis_pool_size: int = 64
    heartbeat_s: float = 2.0  # how often each process writes its heartbeat (admin page)
    heartbeat_ttl_s: float = 10.0  # a process silent this long drops out of the list
    admin_write: bool = False  # /admin may act (disconnect, end an offer); else read-only
    # HMAC key of POST /api/payments/notify (the payment provider signs with it); empty:
    # notifications are refused (503), except on a demo server, which makes one.
    payment_secret: str = ""
    # HMAC key of POST /api/deliveries/notify (the delivery provider's status callbacks)
    delivery_secret: str = ""
    sweep_interval_s: float = 0.5  # how often each process sweeps due holds and pickups
    # Webhooks out (commerce.webhooks): POSTed JSON events, signed with the secret
    webhook_url: str = ""
    webhook_secret: str = ""
    webhook_retry_ms: int = 1000  # the first retry's delay; doubled per attempt, ≤ 10 min

    @property
    def database_path(self) -> Path:
        return Path(self.db_path) if self.db_path else Path(self.data_dir) / "liveshop.db"

    @property
    def database(self) -> str:
        """The order database's URL (SQLite in the data dir unless configured)."""
        return self.database_url or f"sqlite:///{self.database_path}"

    @property
    def wire_port(self) -> int | None:
        """The port the room-socket wire listens on; None when it is off."""
        if self.ws_port == WS_PORT_OFF:
            return None
        if self.ws_port is None:
            return self.port + 1 if self.port else 0
        return self.ws_port

    @property
    def external_redis(self) -> bool:
        return bool(self.redis_url or self.redis_cluster)

    @property
    def origins(self) -> frozenset[str] | None:
        """Allowed `Origin` values, or None when any origin is allowed."""
        if self.allowed_origins.strip() == "*":
            return None
        return frozenset(o.strip().rstrip("/") for o in self.allowed_origins.split(",") if o)


WS_PORT_OFF = -1
_FIELDS = {name: f"LIVESHOP_{name.upper()}" for name in Settings.__struct_fields__}
# Variables that are read elsewhere on purpose: the CLI's worker bookkeeping, the tests'.
_NOT_SETTINGS = {
    "LIVESHOP_WORKER_INDEX",
    "LIVESHOP_BIN",
    "LIVESHOP_TEST_REDIS_URL",
    "LIVESHOP_TEST_DATABASE_URL",
    "LIVESHOP_TEST_UNIT",
    "LIVESHOP_FUZZ_EXAMPLES",
}
_BOOL = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False, "": False}


def _check(settings: Settings) -> None:
    if settings.secret and len(settings.secret.encode()) < 32:
        raise ConfigError(f"{_FIELDS['secret']}: use at least 32 bytes (HS256 key length)")
    for name in ("payment_secret", "delivery_secret"):
        value = getattr(settings, name)
        if value and len(value.encode()) < 16:
            raise ConfigError(f"{_FIELDS[name]}: use at least 16 bytes")
    if settings.port < 0 or settings.port > 65535:
        raise ConfigError(f"{_FIELDS['port']}: {settings.port} is not a TCP port")
    ws = settings.ws_port
    if ws is not None and ws != WS_PORT_OFF and not 0 <= ws <= 65535:
        raise ConfigError(f"{_FIELDS['ws_port']}: {ws} is not a TCP port (or -1 for off)")
    if ws is None and settings.port == 65535:
        raise ConfigError(f"{_FIELDS['ws_port']}: the HTTP port + 1 is not a port; set one")
    if settings.port and settings.wire_port == settings.port:
        raise ConfigError(f"{_FIELDS['ws_port']}: must differ from {_FIELDS['port']}")
    for name in (
        "coalesce_ms",
        "max_queue",
        "presence_ttl_ms",
        "persist_batch",
        "max_sockets",
        "max_sockets_per_ip",
        "connects_per_ip_per_s",
        "heartbeat_s",
        "sweep_interval_s",
    ):
        if getattr(settings, name) <= 0:
            raise ConfigError(f"{_FIELDS[name]}: must be > 0")
    # A dead process must leave the admin list within 30 s, and a live one never flicker.
    if not settings.heartbeat_s < settings.heartbeat_ttl_s <= 30:
        raise ConfigError(f"{_FIELDS['heartbeat_ttl_s']}: must be > heartbeat_s and <= 30")
    for node in filter(None, settings.redis_cluster.split(",")):
        host, _, port = node.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"{_FIELDS['redis_cluster']}: {node!r} is not host:port")
    if settings.database_url and not settings.database_url.startswith(
        ("sqlite:///", "postgresql://", "postgres://")
    ):
        raise ConfigError(
            f"{_FIELDS['database_url']}: expected sqlite:///path or postgresql://host/db"
        )
    if settings.redis_url and not settings.redis_url.startswith(
        ("redis://", "rediss://", "unix://")
    ):
        raise ConfigError(f"{_FIELDS['redis_url']}: expected redis://, rediss:// or unix://")


def load(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Read settings from `environ` (default: the process environment) plus overrides."""
    env = os.environ if environ is None else environ
    raw: dict[str, object] = {}
    for name, var in _FIELDS.items():
        if var in env:
            raw[name] = env[var]
    raw.update({k: v for k, v in overrides.items() if v is not None})
    kinds = Settings.__annotations__
    for name, value in list(raw.items()):
        if name not in _FIELDS:
            raise ConfigError(f"unknown setting {name!r}")
        if not isinstance(value, str):
            continue
        kind = str(kinds[name])
        try:
            if kind == "bool":
                raw[name] = _BOOL[value.strip().lower()]
            elif kind == "int | None":
                raw[name] = int(value) if value.strip() else None
            elif kind == "int":
                raw[name] = int(value)
            elif kind == "float":
                raw[name] = float(value)
        except (KeyError, ValueError):
            raise ConfigError(f"{_FIELDS[name]}: {value!r} is not a valid {kind}") from None
    try:
        settings = msgspec.convert(raw, Settings)
    except msgspec.ValidationError as exc:
        path = str(exc).rsplit("$.", 1)[-1].rstrip("`")
        var = _FIELDS.get(path, "settings")
        raise ConfigError(f"{var}: {exc}") from None
    _check(settings)
    return settings


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """A line for every `LIVESHOP_*` variable that is no setting (a typo is otherwise
    silently ignored), naming the closest real one."""
    env = os.environ if environ is None else environ
    known = set(_FIELDS.values()) | _NOT_SETTINGS
    lines = []
    for var in sorted(v for v in env if v.startswith("LIVESHOP_") and v not in known):
        close = difflib.get_close_matches(var, sorted(known), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else ""
        lines.append(f"{var} is not a liveshop setting{hint}")
    return lines


def describe() -> list[tuple[str, str]]:
    """(variable, default) for every setting: the README's configuration table."""
    defaults = Settings()
    return [(var, repr(getattr(defaults, name))) for name, var in _FIELDS.items()]
