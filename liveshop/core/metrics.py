"""Prometheus metrics: every metric liveshop exports, its labels and their closed sets.

Base module (imports only prometheus-client). Labels come only from closed sets —
role, message type, reason, outcome — never a room, user or SKU: per-room figures
belong to the admin page and the HQ league. With `serve --workers N` each worker
writes its figures into LIVESHOP_METRICS_DIR (prometheus-client's multiprocess mode,
set up by the CLI before this module is imported) and any worker's `/metrics` sums
them; gauges say how (`livesum`, `max`).
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

# Latency buckets: sockets on a LAN answer in ms; a flash sale's p99 is 10-1000 ms. Steps
# of at most ~25 % from 10 ms to 300 ms, so a p99 read from the buckets is close to true.
LATENCY = (
    0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.0125, 0.015, 0.0175, 0.02, 0.025, 0.03,
    0.035, 0.04, 0.045, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1, 0.12, 0.14, 0.16, 0.18, 0.2,
    0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0,
)  # fmt: skip

ROLES = ("viewer", "broadcaster", "staff", "hq")

build_info = Gauge(
    "liveshop_build_info",
    "The running version (value 1).",
    ["version"],
    multiprocess_mode="max",
)
connections = Gauge(
    "liveshop_connections",
    "Open room sockets, by role (anonymous viewers count as viewer).",
    ["role"],
    multiprocess_mode="livesum",
)
connects = Counter(
    "liveshop_connects_total",
    "Room socket upgrades, by outcome (accepted, or why it was refused).",
    ["outcome"],
)
disconnects = Counter(
    "liveshop_disconnects_total",
    "Room sockets closed, by reason (a bye reason, client_closed, lost).",
    ["reason"],
)
messages_received = Counter(
    "liveshop_messages_received_total",
    "Client messages, by type (invalid: not a protocol message).",
    ["type"],
)
messages_sent = Counter(
    "liveshop_messages_sent_total",
    "Server messages written to sockets, by type (a room message counts once a socket).",
    ["type"],
)
bytes_sent = Counter("liveshop_bytes_sent_total", "Bytes of websocket frames written to sockets.")
fanout_lag = Histogram(
    "liveshop_fanout_lag_seconds",
    "From the script that made a room message (its ts) to the end of writing it to every "
    "local socket of the room.",
    buckets=LATENCY,
)
slow_consumer_drops = Counter(
    "liveshop_slow_consumer_drops_total",
    "Sockets closed because they did not read their room's messages.",
)
resumes = Counter(
    "liveshop_resumes_total",
    "hello with resume_from, by outcome (resumed: missed messages replayed; fresh).",
    ["outcome"],
)
purchase_seconds = Histogram(
    "liveshop_purchase_decision_seconds",
    "From a buy reaching the purchase service to its answer (gate, script, recording).",
    buckets=LATENCY,
)
purchases = Counter(
    "liveshop_purchases_total",
    "Purchase answers, by outcome (accepted, rejected) and reason (none when accepted).",
    ["outcome", "reason"],
)
outbox_entries = Gauge(
    "liveshop_outbox_entries",
    "Accepted orders not yet in the order database, over all rooms (the judge's last check).",
    multiprocess_mode="max",
)
outbox_oldest = Gauge(
    "liveshop_outbox_oldest_seconds",
    "Age of the oldest order not yet in the order database.",
    multiprocess_mode="max",
)
persist_commit = Histogram(
    "liveshop_persist_commit_seconds",
    "One persister commit: the database write and the outbox acknowledgement.",
    buckets=LATENCY,
)
persist_batch = Histogram(
    "liveshop_persist_batch_size",
    "Orders per persister commit.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
)
reconcile_delta = Gauge(
    "liveshop_reconcile_unexplained_units",
    "Units sold by the engine and neither in the database nor in the outbox, summed over "
    "rooms as absolute values (0 when all is well).",
    multiprocess_mode="max",
)
reconcile_alarms = Gauge(
    "liveshop_reconcile_alarms",
    "Rooms with a reconciliation alarm, by kind.",
    ["alarm"],
    multiprocess_mode="max",
)
loop_lag = Gauge(
    "liveshop_event_loop_lag_seconds",
    "The worst event-loop lag of the last heartbeat interval.",
    multiprocess_mode="max",
)
engine_round_trip = Histogram(
    "liveshop_engine_round_trip_seconds",
    "A PING to the engine and its answer, from the heartbeat loop.",
    buckets=LATENCY,
)


_children: dict[tuple[int, tuple[str, ...]], Counter] = {}


def count(counter: Counter, *labels: str, amount: float = 1) -> None:
    """`counter.labels(*labels).inc(amount)` without prometheus-client's per-call label
    validation and lock: the children are made once (every tap of a flash sale counts)."""
    key = (id(counter), labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = counter.labels(*labels)
    child.inc(amount)


def render(metrics_dir: str) -> tuple[bytes, str]:
    """The exposition text and its content type: this process's, or with
    `metrics_dir` every worker's, summed (prometheus-client's multiprocess collector)."""
    if not metrics_dir:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    # prometheus-client leaves this constructor unannotated: a library-forced ignore
    multiprocess.MultiProcessCollector(registry, path=metrics_dir)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST


def message_type(text: str) -> str:
    """The `type` of an encoded server message: every one starts `{"type":"<t>"`."""
    end = text.find('"', 9)
    return text[9:end] if text.startswith('{"type":"') and end > 9 else "unknown"


def message_ts_ms(text: str) -> int | None:
    """A room message's `ts`, which the scripts always write last (`…,"ts":<ms>}`)."""
    at = text.rfind('"ts":')
    if at < 0:
        return None
    try:
        return int(text[at + 5 : -1])
    except ValueError:
        return None
