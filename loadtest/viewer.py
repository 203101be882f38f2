"""One simulated viewer (or broadcaster) socket and what it saw, plus the helpers the
worker processes share.

Owns the per-socket protocol handling of the load generator: hello, welcome, seq
bookkeeping, latency samples into its worker's histogram, buys and group joins and
their retries. It never opens sockets itself (the worker does) and never blocks.
"""

from __future__ import annotations

import asyncio
import random
import resource
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from loadtest.wsclient import WsClient

if TYPE_CHECKING:
    from loadtest.worker import Worker

HIST_MS = 10_000  # latency histogram: 1 ms buckets, the last one holds everything slower
# shared counters, one row of 4 per worker: connected, welcomed, acks, messages
C_CONNECTED, C_WELCOMED, C_ACKS, C_MSGS = range(4)
RETRY_CODES = frozenset({"unavailable"})
RETRY_BACKOFF_S = 0.2
ORDERED = frozenset({"pinned", "chat", "live"})  # room messages that are never coalesced


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (it comes with uvicorn[standard]): a cheaper client, and
    the same event loop the liveshop server runs on."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def now_ms() -> float:
    return time.time() * 1000.0


async def until(pred: Callable[[], bool], wait_s: float, every: float = 0.05) -> bool:
    """Poll `pred` until it holds or `wait_s` passed (the state lives in many sockets,
    so there is no single event to wait on)."""
    deadline = asyncio.get_running_loop().time() + wait_s
    while True:
        if pred():
            return True
        if asyncio.get_running_loop().time() >= deadline:
            return False
        await asyncio.sleep(every)


class Viewer:
    """One simulated client and what it saw."""

    __slots__ = (
        "closing",
        "connect_ms",
        "groups",
        "last_seq",
        "offers",
        "pending",
        "resume_from",
        "resumed",
        "seqs",
        "sold_out_at",
        "stock",
        "token",
        "user",
        "w",
        "welcome_seq",
        "welcomed",
        "ws",
        "zero_at",
    )

    def __init__(self, w: Worker, user: str, token: str | None) -> None:
        self.w = w
        self.user = user
        self.token = token
        self.ws: WsClient | None = None
        self.welcomed: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.closing = False
        self.connect_ms = -1.0
        self.welcome_seq = -1
        self.last_seq = 0
        self.resume_from: int | None = None
        self.resumed = False
        self.seqs: list[int] | None = [] if w.track_seqs else None
        self.stock: dict[str, int] = {}
        self.offers: dict[str, tuple[str, int]] = {}
        # group_id -> (status, value, left, when it got this state, its server ts)
        self.groups: dict[str, tuple[str, int, int, float, float]] = {}
        # request_id -> (perf, wall ms, the buy message, tries so far)
        self.pending: dict[str, tuple[float, float, dict[str, Any], int]] = {}
        self.zero_at = 0.0
        self.sold_out_at = 0.0

    # Owner protocol (called by WsClient) --------------------------------------------
    def on_open(self, ws: WsClient) -> None:
        self.ws = ws  # before connect() returns: the 101 may come first
        hello: dict[str, Any] = {"type": "hello"}
        if self.token:
            hello["token"] = self.token
        if self.resume_from is not None:
            hello["resume_from"] = self.resume_from
        self.send(hello)

    def on_text(self, data: bytes) -> None:
        w = self.w
        recv = now_ms()
        msg = orjson.loads(data)
        if w.socketio:
            msg = msg[1]
        w.counters[w.row + C_MSGS] += 1
        kind = msg.get("type")
        seq = msg.get("seq")
        ts = msg.get("ts")
        if ts is not None and seq is not None and kind not in ("stats", "hint"):
            if seq <= self.last_seq:
                w.errors["seq_out_of_order"] += 1
            self.last_seq = seq
            if self.seqs is not None:
                self.seqs.append(seq)
            if kind in w.measure and w.win_start <= ts <= w.win_end:
                lat = int(recv - ts)
                w.hist[lat if 0 <= lat < HIST_MS else (0 if lat < 0 else HIST_MS)] += 1
                w.win_count += 1
            if w.ordered is not None and kind in ORDERED:
                w.ordered.append(seq)
            if kind == "stock":
                left = msg["left"]
                self.stock[msg["sku"]] = left
                if left == 0 and not self.zero_at and msg["sku"] == w.watch_sku:
                    self.zero_at = recv
                    w.zero_ts = ts
            elif kind == "offer":
                self.offers[msg["offer_id"]] = (msg["status"], msg["left"])
                if msg["status"] == "sold_out" and not self.sold_out_at:
                    self.sold_out_at = recv
            elif kind == "group":
                self._group(msg, recv, ts)
            return
        if kind == "order_ack":
            self._decided(msg["request_id"], msg["status"], msg.get("reason"), msg, recv)
        elif kind == "welcome":
            self._welcome(msg)
        elif kind == "error":
            w.errors["error:" + msg["code"]] += 1
            ref = msg.get("ref")
            if ref in self.pending:
                if msg["code"] in RETRY_CODES and self.pending[ref][3] < w.retries:
                    self._retry(ref)
                else:
                    self._decided(ref, "error", msg["code"], msg, recv)
        elif kind == "bye":
            w.errors["bye:" + msg["reason"]] += 1

    def on_closed(self, code: int, reason: str) -> None:
        w = self.w
        if not self.closing:
            w.errors[f"close:{code}"] += 1
        w.counters[w.row + C_CONNECTED] -= 1
        if self.welcomed.done() and self.welcomed.result():
            w.counters[w.row + C_WELCOMED] -= 1
        elif not self.welcomed.done():
            self.welcomed.set_result(False)
        for rid in list(self.pending):
            self._decided(rid, "lost", f"close:{code}", {}, now_ms())

    # --------------------------------------------------------------------------------
    def _welcome(self, msg: dict[str, Any]) -> None:
        self.welcome_seq = msg["seq"]
        self.resumed = bool(msg.get("resumed"))
        if not (self.resumed and self.resume_from is not None):
            self.last_seq = msg["seq"]
        state = msg.get("state") or {}
        for product in state.get("products", ()):
            self.stock[product["sku"]] = product["stock"]
        for offer in state.get("offers", ()):
            self.offers[offer["offer_id"]] = (offer["status"], offer["left"])
        for group in state.get("groups") or ():
            self._group(group, now_ms(), 0.0)
        if not self.welcomed.done():
            self.welcomed.set_result(True)
            self.w.counters[self.w.row + C_WELCOMED] += 1

    def _group(self, msg: dict[str, Any], recv: float, ts: float) -> None:
        """Keep when the group's state last changed: a coalesced repeat of the same
        state is not news."""
        seen = (msg["status"], msg["value"], msg.get("left", -1))
        old = self.groups.get(msg["group_id"])
        if old is None or old[:3] != seen:
            self.groups[msg["group_id"]] = (*seen, recv, ts)

    def _decided(
        self, rid: str, status: str, reason: str | None, msg: dict[str, Any], recv: float
    ) -> None:
        sent = self.pending.pop(rid, None)
        if sent is None:
            return
        w = self.w
        w.counters[w.row + C_ACKS] += 1
        w.decisions.append(
            (
                self.user,
                rid,
                status,
                reason or "",
                msg.get("order_id") or "",
                int(msg.get("qty") or 0),
                round((time.perf_counter() - sent[0]) * 1000, 3),
                sent[1],
                recv,
                msg.get("group_id") or "",
            )
        )
        if w.on_decision is not None:
            w.on_decision(self)

    def send(self, msg: dict[str, Any]) -> None:
        if self.ws is not None:
            if self.w.socketio:
                self.ws.send_text(orjson.dumps([msg["type"], msg]))
            else:
                self.ws.send_text(orjson.dumps(msg))

    def buy(
        self, rid: str, sku: str, qty: int, offer_id: str | None, group_id: str | None = None
    ) -> None:
        """A buy, or with `group_id` a join of that group (answered alike: `order_ack`)."""
        msg: dict[str, Any] = {"type": "buy", "request_id": rid, "sku": sku, "qty": qty}
        if group_id:
            msg = {"type": "group_join", "request_id": rid, "group_id": group_id, "qty": qty}
        elif offer_id:
            msg["offer_id"] = offer_id
        self.pending[rid] = (time.perf_counter(), now_ms(), msg, 0)
        self.send(msg)

    def _retry(self, rid: str) -> None:
        """What the protocol asks of a client told `unavailable, retry`: the same
        request_id again (idempotent), after a backoff with jitter."""
        perf, wall, msg, tries = self.pending[rid]
        self.pending[rid] = (perf, wall, msg, tries + 1)
        self.w.errors["retried"] += 1
        delay = RETRY_BACKOFF_S * 2**tries * (0.5 + random.random())
        asyncio.get_running_loop().call_later(delay, self._resend, rid)

    def _resend(self, rid: str) -> None:
        if rid in self.pending and self.ws is not None:
            self.send(self.pending[rid][2])

    @property
    def ready(self) -> bool:
        return self.welcomed.done() and self.welcomed.result() and self.ws is not None
