"""Scenarios `storm` and `churn`: viewers coming and going while the room broadcasts.

storm: every viewer's TCP link drops at once (abort, no closing handshake) while the
broadcaster keeps pinning products (ordered room messages, never coalesced); every
viewer reconnects with `resume_from` = its last seq. Measures the time until all are
welcomed again and checks that each got every ordered message exactly once, in order.

churn: a steady stream of connects and disconnects (a share of the room every second)
while the broadcaster restocks; measures connect latency and delivery latency under
churn, and checks that the server's viewer count and memory come back.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from loadtest import harness, report
from loadtest.pool import rss_mb
from loadtest.viewer import now_ms

STORM_WAIT_S = 90.0  # for every viewer to be welcomed again (clients retry with backoff)
STORM_PROFILE_S = 20.0  # --profile: the reconnects' first seconds, where the work piles up
PINS = [f"pin-{i}" for i in range(10)]


async def storm(opts: harness.Options) -> report.Report:
    pin_rate: float = opts.extra.get("pin_rate", 10.0)
    rep = report.Report("storm", opts.method, {"viewers": opts.viewers, "pin_rate": pin_rate})
    products = [(sku, 990, 100) for sku in PINS]
    async with harness.run(
        opts,
        products,
        broadcasters=harness.sockets_for(pin_rate),
        ordered=True,
        track_seqs=True,
        measure=["pinned"],
    ) as r:
        conn = await r.connect(opts.viewers)
        rep.results["connected"] = opts.viewers - conn["failed"]
        await r.p.all("window", timeout=10, start=now_ms(), end=now_ms() + 3_600_000)
        stop = asyncio.Event()
        pins = asyncio.create_task(_pin(r.b, pin_rate, stop))
        try:
            await asyncio.sleep(1.0)
            meter = r.meter()
            meter.start()
            inflight = max(4, opts.extra.get("storm_inflight", opts.viewers) // r.p.n)
            async with r.profiled("storm", STORM_PROFILE_S):
                replies = await r.p.all(
                    "storm", timeout=STORM_WAIT_S + 60, inflight=inflight, wait_s=STORM_WAIT_S
                )
            rep.data["cpu"] = meter.stop()
            await asyncio.sleep(1.0)
        finally:
            stop.set()
            await pins
        ordered = list(r.b.local.ordered or [])
        upto = max(ordered) if ordered else 0
        await _settle(r, upto)
        gaps = await r.p.all("gaps", timeout=60, ordered=ordered, upto=upto)
        stats = await r.p.all("stats", timeout=30)
    t_drop = min(x["t_drop"] for x in replies)
    t_done = max(x["t_done"] for x in replies)
    times = [t for x in replies for t in x["reconnect_ms"]]
    failed = sum(x["failed"] for x in replies)
    resumed = sum(x["resumed"] for x in replies)
    missing = sum(g["missing"] for g in gaps)
    res = rep.results
    res["reaccept_all_s"] = round((t_done - t_drop) / 1000, 3)
    res["reconnect"] = report.summary(times)
    res["resumed"] = f"{resumed}/{len(times)}"
    res["attempts"] = sum(x.get("attempts", 0) for x in replies)
    res["ordered_msgs"] = len(ordered)
    res["missing_msgs"] = missing
    res["viewers_with_gaps"] = sum(g["missing_viewers"] for g in gaps)
    res["duplicates"] = sum(g["dupes"] for g in gaps)
    res["fanout"] = report.hist_summary(report.hist_merge(s["hist"] for s in stats))
    errors = report.merge_errors(stats)
    res["errors"] = errors
    rep.check("every viewer connected", conn["failed"] == 0, f"{conn['failed']} failed")
    rep.check("every viewer re-accepted", failed == 0, f"{failed} failed")
    rep.check("every reconnect resumed", resumed == len(times), res["resumed"])
    rep.check(
        "no gaps in seq (ordered messages)",
        missing == 0,
        f"{missing} missing at {res['viewers_with_gaps']} viewers",
    )
    rep.check("no duplicates", res["duplicates"] == 0, res["duplicates"])
    rep.check("no seq out of order", not errors.get("seq_out_of_order"), errors)
    return rep


async def _pin(b: harness.Broadcasters, rate: float, stop: asyncio.Event) -> None:
    i = 0
    loop = asyncio.get_running_loop()
    start = loop.time()
    deadline = start + 300  # bounded even if the caller forgets to stop us
    while not stop.is_set() and loop.time() < deadline:
        b.send({"type": "pin", "sku": PINS[i % len(PINS)]})
        i += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.0, start + i / rate - loop.time()))


async def _settle(r: harness.Run, upto: int) -> None:
    """Wait until every viewer has seen the last ordered message (bounded)."""
    await r.p.all("caught_up", timeout=30, seq=upto, wait_s=10.0)


async def churn(opts: harness.Options) -> report.Report:
    duration: float = opts.extra.get("duration_s", 15.0)
    churn_rate: float = opts.extra.get("churn_rate", max(1.0, opts.viewers / 20))
    rate: float = opts.extra.get("restock_rate", 5.0)
    rep = report.Report(
        "churn",
        opts.method,
        {
            "viewers": opts.viewers,
            "churn_per_s": churn_rate,
            "duration_s": duration,
            "restock_rate": rate,
        },
    )
    products = [(f"fan-{i:02d}", 990, 0) for i in range(10)]
    async with harness.run(opts, products, measure=["stock"]) as r:
        conn = await r.connect(opts.viewers)
        pid = r.t.pid
        rss0 = rss_mb(pid) if pid else None
        start = now_ms() + 200
        await r.p.all("window", timeout=10, start=start, end=start + duration * 1000)
        meter = r.meter()
        meter.start()
        restocks = asyncio.create_task(
            r.b.paced(
                rate, duration, lambda i: {"type": "restock", "sku": f"fan-{i % 10:02d}", "qty": 1}
            )
        )
        replies = await r.p.call(
            "churn",
            [
                {
                    "duration_s": duration,
                    "rate": churn_rate / r.p.n,
                    "prefix": f"c{w}-",
                    "wait_s": 15.0,
                }
                for w in range(r.p.n)
            ],
            timeout=duration + 60,
        )
        sent = await restocks
        rep.data["cpu"] = meter.stop()
        await asyncio.sleep(2.0)
        stats = await r.p.all("stats", timeout=30)
        open_now = sum(s["open"] for s in stats)
        counted = await _server_viewers(r, open_now)
        rss1 = rss_mb(pid) if pid else None
    times = [t for x in replies for t in x["connect_ms"]]
    opened = sum(x["opened"] for x in replies)
    res = rep.results
    res["connected"] = opts.viewers - conn["failed"]
    res["churned"] = {"opened": opened, "closed": sum(x["closed"] for x in replies)}
    res["connect_under_churn"] = report.summary(times)
    res["restocks"] = sent
    res["fanout"] = report.hist_summary(report.hist_merge(s["hist"] for s in stats))
    res["viewers_open"] = open_now
    res["server_viewer_count"] = counted
    if rss0 is not None and rss1 is not None:
        res["rss_before_mb"], res["rss_after_mb"] = round(rss0, 1), round(rss1, 1)
    errors = report.merge_errors(stats)
    res["errors"] = errors
    rep.check("every viewer connected", conn["failed"] == 0, f"{conn['failed']} failed")
    rep.check("every churn connect welcomed", len(times) == opened, f"{len(times)}/{opened}")
    rep.check("server viewer count matches", counted == open_now, f"{counted} vs {open_now}")
    unexpected = {k: v for k, v in errors.items() if not k.startswith("close:10")}
    rep.check("no errors", not unexpected, unexpected)
    return rep


async def _server_viewers(r: harness.Run, expect: int, wait_s: float = 8.0) -> Any:
    """The room's viewer count as the server reports it (presence, once a second)."""
    if r.t.method != "liveshop":
        return None
    deadline = time.monotonic() + wait_s
    count = None
    while time.monotonic() < deadline:
        count = (await r.t.api("GET", f"/api/rooms/{r.t.room}"))["viewers"]
        if count == expect:
            break
        await asyncio.sleep(0.25)
    return count
