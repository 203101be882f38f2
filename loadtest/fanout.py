"""Scenarios `fanout` and `memory`: one room, many viewers, the broadcaster changing
stock at fixed rates; and the server's memory per idle viewer.

Same load for every method (liveshop, raw, socketio): the same stock messages, sent
as `restock`s round-robin over 50 SKUs so that a 50 ms coalescing window never
merges two of them, at each rate of a ladder for a fixed time. Delivered counts only
messages emitted inside the step window and received before the step's grace ends.
"""

from __future__ import annotations

import asyncio
import math
import time
import urllib.request
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from loadtest import harness, report
from loadtest.pool import rss_mb
from loadtest.viewer import now_ms

SKUS = 50
GRACE_S = 2.0


def _restock(i: int) -> dict[str, Any]:
    return {"type": "restock", "sku": f"fan-{i % SKUS:02d}", "qty": 1}


async def fanout(opts: harness.Options) -> report.Report:
    rates: list[float] = opts.extra.get("rates", [5.0, 20.0, 50.0])
    step_s: float = opts.extra.get("step_s", 8.0)
    rep = report.Report(
        "fanout", opts.method, {"viewers": opts.viewers, "rates": rates, "step_s": step_s}
    )
    products = [(f"fan-{i:02d}", 990, 0) for i in range(SKUS)]
    async with harness.run(
        opts, products, broadcasters=harness.sockets_for(max(rates)), measure=["stock"]
    ) as r:
        conn = await r.connect(opts.viewers)
        rep.results["connected"] = opts.viewers - conn["failed"]
        rep.results["connect"] = report.summary(conn["times"])
        steps = []
        expect = {sku: 0 for sku, _, _ in products}
        final: list[dict[str, Any]] = []
        for rate in rates:
            steps.append(await _step(r, rate, step_s))
            for i in range(steps[-1]["sent"]):
                expect[_restock(i)["sku"]] += 1
            if not final:
                # Correctness at the lowest rate, before higher rates pile up a backlog:
                # every viewer must end up with the latest value of every SKU.
                t0 = time.monotonic()
                final = await r.p.all("final", timeout=60, expect=expect, wait_s=30.0)
                rep.results["latest_stock_everywhere_after_s"] = round(
                    time.monotonic() - t0 + GRACE_S, 2
                )
        rep.results["steps"] = steps
        rep.data["profiles"] = r.profiles
        errors = report.merge_errors(await r.p.all("stats", timeout=30))
        rep.results["errors"] = errors
        if r.t.pid:
            rep.results["server_rss_mb"] = round(rss_mb(r.t.pid), 1)
    best = max(steps, key=lambda s: s["delivered_msgs_s"])
    rep.results["max_delivered_msgs_s"] = best["delivered_msgs_s"]
    rep.results["p99_at_lowest_rate_ms"] = steps[0]["latency"]["p99_ms"]
    rep.check("every viewer connected", conn["failed"] == 0, f"{conn['failed']} failed")
    rep.results["delivered_in_time_at_lowest_rate"] = round(
        steps[0]["delivered"] / max(1, steps[0]["expected"]), 4
    )
    matched, ready = sum(f["matched"] for f in final), sum(f["ready"] for f in final)
    rep.check(
        f"every viewer ends with the latest stock of every SKU ({rates[0]:g}/s)",
        matched == ready == opts.viewers - conn["failed"],
        f"{matched}/{ready}",
    )
    rep.check("no seq out of order", not errors.get("seq_out_of_order"), errors)
    return rep


async def _step(r: harness.Run, rate: float, step_s: float) -> dict[str, Any]:
    start = now_ms() + 300
    end = start + step_s * 1000
    await r.p.all("window", timeout=10, start=start, end=end)
    meter = r.meter()
    lag_before = await _server_lag(r)
    await asyncio.sleep(max(0.0, (start - now_ms()) / 1000))
    meter.start()
    async with r.profiled(f"fanout{rate:g}", step_s):
        sent = await r.b.paced(rate, step_s, _restock)
    await asyncio.sleep(max(0.0, (end - now_ms()) / 1000))
    cpu = meter.stop()
    await asyncio.sleep(GRACE_S)
    stats = await r.p.all("stats", timeout=30)
    server_p99 = _p99_ms(lag_before, await _server_lag(r))
    hist = report.hist_merge(s["hist"] for s in stats)
    delivered = sum(s["count"] for s in stats)
    viewers = sum(s["open"] for s in stats)
    return {
        "rate": rate,
        "sent": sent,
        "viewers_open": viewers,
        "expected": sent * viewers,
        "delivered": delivered,
        "offered_msgs_s": round(sent * viewers / step_s, 1),
        "delivered_msgs_s": round(delivered / step_s, 1),
        "latency": report.hist_summary(hist),
        # what liveshop's own /metrics says (liveshop_fanout_lag_seconds), for comparison
        "server_lag_p99_ms": server_p99,
        "cpu": cpu,
        # CPU time per delivered message: robust to the load generator sharing the cores
        "server_us_per_msg": _per_msg(cpu, "server", delivered),
        "loadgen_us_per_msg": _per_msg(cpu, "loadgen", delivered),
    }


async def _server_lag(r: harness.Run) -> dict[float, float] | None:
    """liveshop_fanout_lag_seconds buckets (upper bound -> cumulative count) from the
    target's /metrics; None for targets that are not liveshop."""
    if r.opts.method != "liveshop":
        return None

    def fetch() -> str:
        with urllib.request.urlopen(r.t.http + "/metrics", timeout=10) as resp:
            return str(resp.read().decode())

    try:
        text = await asyncio.to_thread(fetch)
    except OSError:
        return None
    return {
        float(s.labels["le"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "liveshop_fanout_lag_seconds_bucket"
    }


def _p99_ms(before: dict[float, float] | None, after: dict[float, float] | None) -> float | None:
    """histogram_quantile(0.99) over what the step added, as Prometheus computes it."""
    if before is None or after is None:
        return None
    pairs = sorted((bound, after[bound] - before.get(bound, 0.0)) for bound in after)
    if not pairs or pairs[-1][1] <= 0:
        return None
    rank = 0.99 * pairs[-1][1]
    lower, below = 0.0, 0.0
    for bound, count in pairs:
        if count >= rank:
            if math.isinf(bound):
                return round(lower * 1000, 2)
            share = (rank - below) / max(count - below, 1e-9)
            return round((lower + (bound - lower) * share) * 1000, 2)
        lower, below = bound, count
    return round(lower * 1000, 2)


def _per_msg(cpu: dict[str, Any], who: str, delivered: int) -> float | None:
    cores: float | None = cpu["cores_used"].get(who)
    if cores is None or not delivered:
        return None
    wall_s: float = cpu["wall_s"]
    return round(cores * wall_s / delivered * 1e6, 2)


async def memory(opts: harness.Options) -> report.Report:
    """Server RSS growth per idle viewer (welcomed, then quiet for a few seconds)."""
    rep = report.Report("memory", opts.method, {"viewers": opts.viewers})
    async with harness.run(opts, [(f"fan-{i:02d}", 990, 0) for i in range(SKUS)]) as r:
        pid = r.t.pid
        if pid is None:
            raise SystemExit("loadtest memory: needs the server's pid (--pid with --url)")
        # Warm up first: a handful of viewers allocate what every later one reuses.
        await r.connect(min(50, opts.viewers), prefix="warm")
        await asyncio.sleep(2.0)
        before = rss_mb(pid)
        conn = await r.connect(opts.viewers)
        await asyncio.sleep(5.0)
        after = rss_mb(pid)
        engine = _children_rss(pid)
        rep.results["connected"] = opts.viewers - conn["failed"]
        rep.results["connect"] = report.summary(conn["times"])
        rep.results["rss_before_mb"] = round(before, 1)
        rep.results["rss_after_mb"] = round(after, 1)
        rep.results["engine_rss_mb"] = round(engine, 1)
        n = max(1, opts.viewers - conn["failed"])
        rep.results["kb_per_viewer"] = round((after - before) * 1024 / n, 2)
    rep.check("every viewer connected", conn["failed"] == 0, f"{conn['failed']} failed")
    return rep


def _children_rss(pid: int) -> float:
    import psutil  # type: ignore[import-untyped]

    total = 0.0
    for child in psutil.Process(pid).children(recursive=True):
        total += child.memory_info().rss / 2**20
    return total
