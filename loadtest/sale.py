"""Scenarios `flashsale`, `groupsale` and `purchases`.

flashsale: thousands of viewers in one room, the broadcaster opens a flash offer, and
every viewer taps buy within one second (a share taps twice). Checks the sale's
correctness end to end: exactly the offered units accepted, nobody over the per-user
limit, every accepted order in the database (REST) exactly once, every viewer shown
the final stock and the sold-out offer. With `--method naive` the same load and checks
against the naive peer, whose orders are checked in its outbox stream (it has no
database).

groupsale: the same burst joining one group (拼团, metric buyers, one unit each) whose
threshold is reached mid-burst: exactly `cap` joins accepted, the rest `group_full`
(or `limit_exceeded` for a member's second tap), the group `succeeded` with one member
per accepted join, every member's order in the database once and `accepted`, the
group's units off the shelf at its start and none returned when full, every viewer
shown the final group.

purchases: decisions per second through the whole websocket path: every buyer keeps
one `buy` in flight (under the per-connection rate limit) for a fixed time, on a SKU
with stock to spare, against liveshop or the naive SQLite shop; `lua` and `lua-bench`
run the raw-script baselines instead (no sockets).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, NamedTuple

from loadtest import harness, report, targets
from loadtest.baselines import raw_lua
from loadtest.pool import Progress
from loadtest.viewer import Viewer, now_ms

SKU = "flash-1"
ANSWER_WAIT_S = 30.0  # after the last tap, for every buy's final answer (with retries)
# (--answer-wait: the naive peer, fanning out after every sale, answers the last taps
# of a 5,000-viewer sale more than a minute after they were sent)
ORDERS_WAIT_S = 30.0  # after the last sale, for every accepted order in the database


async def flashsale(opts: harness.Options) -> report.Report:
    units: int = opts.extra.get("units", max(1, opts.viewers // 10))
    limit = 1
    rep = _report(opts, "flashsale", {"units": units}, limit)
    async with harness.run(
        opts,
        [(SKU, 1990, units)],
        measure=["stock", "offer"],
        watch_sku=SKU,
        retries=opts.extra.get("retries", 3),
    ) as r:
        await _connect(r, opts, rep)
        offer_id = await _open_offer(r, units, limit)
        decisions, expected, accepted, t0 = await _burst(r, opts, rep, offer_id=offer_id)
        # the server's truth, not what buyers were told (once it answers REST again)
        sold = await _sold(r.t, units, wait_s=rep.data["params"]["answer_wait_s"])
        left = units - sold
        seen = await r.p.all(
            "seen",
            timeout=30,
            sku=SKU,
            left=left,
            offer_id=offer_id,
            status="sold_out" if left == 0 else "live",
            wait_s=10.0,
        )
        zero_ts = max(x["zero_ts"] for x in seen)
        last_sale = zero_ts or max((d[8] for d in accepted), default=now_ms())
        found, orders_lag = await _orders(r.t, {d[4] for d in accepted}, sold, last_sale)
        stats = await r.p.all("stats", timeout=30)
        orders_in = r.t.orders_in
    rep.results["sold"] = sold
    if sold == units:
        rep.check("units sold == units on offer", True, f"{sold} == {units}")
    else:
        rep.check("units sold == units on offer", False, f"LOUD FAIL: {sold} sold of {units}")
    rep.check(
        "accepted == units (every sale acked to its buyer)",
        len(accepted) == sold == units,
        f"{len(accepted)} acked accepted, {sold} sold, {units} on offer",
    )
    _burst_results(rep, decisions, expected, accepted, limit, t0, seen, stats, FLASH)
    _flash_orders(rep, accepted, found, orders_lag, limit, sold, orders_in=orders_in)
    return rep


async def groupsale(opts: harness.Options) -> report.Report:
    cap: int = opts.extra.get("units", max(1, opts.viewers // 10))
    threshold: int = opts.extra.get("threshold", max(2, cap // 2))
    limit = 1
    stocked = 2 * cap  # units beside the group's, so that its start must take exactly cap
    rep = _report(opts, "groupsale", {"cap": cap, "threshold": threshold}, limit)
    async with harness.run(
        opts,
        [(SKU, 1990, stocked)],
        measure=["stock", "group"],
        retries=opts.extra.get("retries", 3),
    ) as r:
        await _connect(r, opts, rep)
        group_id = await _open_group(r, cap, threshold, limit)
        rep.results["taken_at_start"] = await _sold(r.t, stocked)
        decisions, expected, accepted, t0 = await _burst(
            r, opts, rep, offer_id=None, group_id=group_id
        )
        sold = await _sold(r.t, stocked)  # the group's units nobody joined are back
        members = len({d[0] for d in accepted})
        seen = await r.p.all(
            "seen",
            timeout=30,
            sku=SKU,
            left=stocked - sold,
            offer_id=None,
            status="succeeded",
            wait_s=10.0,
            group_id=group_id,
            value=members,
        )
        final = r.b.first.groups.get(group_id, ("", -1, -1, 0.0, 0.0))[:3]
        zero_ts = max(x["zero_ts"] for x in seen)
        last_sale = zero_ts or max((d[8] for d in accepted), default=now_ms())
        found, orders_lag = await _orders(
            r.t, {d[4] for d in accepted}, sold, last_sale, state="accepted"
        )
        stats = await r.p.all("stats", timeout=30)
    rep.results["sold"] = sold
    rep.results["group_final"] = dict(zip(("status", "value", "left"), final, strict=True))
    _group_checks(rep, decisions, accepted, group_id, cap, threshold)
    _burst_results(rep, decisions, expected, accepted, limit, t0, seen, stats, GROUP)
    _flash_orders(rep, accepted, found, orders_lag, limit, sold, state="accepted")
    return rep


def _report(
    opts: harness.Options, scenario: str, sizes: dict[str, int], limit: int
) -> report.Report:
    return report.Report(
        scenario,
        opts.method,
        {
            "viewers": opts.viewers,
            **sizes,
            "spread_s": opts.extra.get("spread_s", 1.0),
            "double_tap": opts.extra.get("double_tap", 0.1),
            "per_user_limit": limit,
            "retries": opts.extra.get("retries", 3),
            "answer_wait_s": opts.extra.get("answer_wait_s", ANSWER_WAIT_S),
            "workers": opts.workers,
        },
    )


async def _connect(r: harness.Run, opts: harness.Options, rep: report.Report) -> None:
    conn = await r.connect(opts.viewers)
    rep.results["connected"] = opts.viewers - conn["failed"]
    rep.results["connect"] = report.summary(conn["times"])
    rep.results["connect_all_s"] = round(max(conn["times"] or [0]) / 1000, 2)


async def _burst(
    r: harness.Run, opts: harness.Options, rep: report.Report, **tap: Any
) -> tuple[list[Any], int, list[Any], float]:
    """Every viewer taps within the spread from a second from now (`buy_burst` with `tap`:
    the offer, or the group to join); returns the decisions, the taps sent, the accepted
    decisions and the burst's start."""
    params = rep.data["params"]
    spread_ms = params["spread_s"] * 1000
    t0 = now_ms() + 1000
    await r.p.all("window", timeout=10, start=t0 - 1000, end=t0 + 600_000)
    meter = r.meter()
    meter.start()
    with Progress(r.p, opts.viewers, opts.progress) as bar:
        bar.phase = "joining" if tap.get("group_id") else "buying"
        async with r.profiled(rep.data["scenario"], spread_ms / 1000 + 6):
            replies = await r.p.all(
                "buy_burst",
                timeout=params["answer_wait_s"] + 60,
                at=t0,
                spread_ms=spread_ms,
                sku=SKU,
                double_tap=params["double_tap"],
                wait_s=params["answer_wait_s"],
                **tap,
            )
    rep.data["cpu"] = meter.stop()
    rep.data["profiles"] = r.profiles
    decisions = [d for rp in replies for d in rp["decisions"]]
    expected = sum(rp["expected"] for rp in replies)
    return decisions, expected, [d for d in decisions if d[2] == "accepted"], t0


def _group_checks(
    rep: report.Report,
    decisions: list[Any],
    accepted: list[Any],
    group_id: str,
    cap: int,
    threshold: int,
) -> None:
    res = rep.results
    joined = len({d[0] for d in decisions})
    members = {d[0] for d in accepted}
    units = sum(d[5] for d in accepted)
    rep.check(
        "cap units off the shelf at the group's start",
        res["taken_at_start"] == cap,
        f"{res['taken_at_start']} taken, cap {cap}",
    )
    rep.check(
        "accepted == cap (or every viewer, when fewer joined)",
        len(accepted) == min(cap, joined),
        f"{len(accepted)} accepted, {joined} viewers joined, cap {cap}",
    )
    rep.check(
        "units sold == units accepted (the rest back on the shelf)",
        res["sold"] == units,
        f"{res['sold']} sold, {units} accepted",
    )
    wrong = Counter(
        f"{d[2]}:{d[3]}"
        for d in decisions
        if d[2] != "accepted"
        and (d[2], d[3]) != ("rejected", "group_full")
        and not ((d[2], d[3]) == ("rejected", "limit_exceeded") and d[0] in members)
    )
    rep.check(
        "every other join group_full (or limit_exceeded: a member's 2nd)", not wrong, dict(wrong)
    )
    acks = [d for d in decisions if d[2] in ("accepted", "rejected")]  # not `error`s
    unnamed = sum(1 for d in acks if d[9] != group_id)
    rep.check("every order_ack names the group", not unnamed, f"{unnamed} of {len(acks)} without")
    final = res["group_final"]
    rep.check(
        "group succeeded, value == members",
        final["status"] == "succeeded"
        and final["value"] == len(members) >= threshold
        and final["left"] == cap - units,
        f"{final}, {len(members)} members, threshold {threshold}",
    )


async def _open_group(r: harness.Run, cap: int, threshold: int, limit: int) -> str:
    start = {
        "type": "group_start",
        "sku": SKU,
        "price": 990,
        "threshold": threshold,
        "metric": "buyers",
        "duration_s": 600,
        "cap": cap,
        "per_user_limit": limit,
    }
    return await _opened(
        r, start, lambda host: [i for i, g in host.groups.items() if g[0] == "open"]
    )


async def _open_offer(r: harness.Run, units: int, limit: int) -> str:
    start = {
        "type": "offer_start",
        "sku": SKU,
        "price": 990,
        "qty": units,
        "duration_s": 300,
        "per_user_limit": limit,
    }
    return await _opened(
        r, start, lambda host: [i for i, o in host.offers.items() if o[0] == "live"]
    )


async def _opened(
    r: harness.Run, start: dict[str, Any], opened: Callable[[Viewer], list[str]]
) -> str:
    """Send the broadcaster's `start` and wait until its socket shows what opened (the
    server answers a start only on the room stream)."""
    r.b.send(start)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        ids = opened(r.b.first)
        if ids:
            return ids[0]
        await asyncio.sleep(0.02)
    raise RuntimeError(f"{start['type']} opened nothing: {dict(r.b.local.errors)}")


async def _sold(target: targets.Target, units: int, wait_s: float = ORDERS_WAIT_S) -> int:
    """Units of the offer's SKU sold, from the room state (REST), retried for `wait_s`
    while the server is too busy to answer."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            state = await targets.room_state(target)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
            continue
        stock = {pr["sku"]: pr["stock"] for pr in state["products"]}
        return units - int(stock[SKU])


async def _orders(
    target: targets.Target,
    acked: set[str],
    sold: int,
    last_sale: float,
    state: str | None = None,
) -> tuple[list[dict[str, Any]], float | None]:
    """Poll the REST API until the database holds every sold unit's order and every
    acked one, each acked one in `state` when given (or give up after ORDERS_WAIT_S)."""
    rows: list[dict[str, Any]] = []
    deadline = time.monotonic() + ORDERS_WAIT_S
    while time.monotonic() < deadline:
        try:
            rows = await targets.orders(target)
        except OSError:  # a starved server answers REST late too: keep asking
            await asyncio.sleep(0.2)
            continue
        ids = {o["order_id"] for o in rows}
        moved = state is None or all(o["state"] == state for o in rows if o["order_id"] in acked)
        if len(ids) >= sold and acked <= ids and moved:
            return rows, round((now_ms() - last_sale) / 1000, 3)
        await asyncio.sleep(0.1)
    return rows, None


class Words(NamedTuple):
    """How a burst's report names its taps and the final state every viewer must see."""

    tap: str  # buy, join
    final: str  # the check's name for the final state
    seen: str  # the `seen` reply's counter of what viewers ended with
    lag: str  # results key: the last viewer's lag behind the final state, s
    moment: str  # the lag target's name for the final state


FLASH = Words("buy", "final stock and offer", "final_left", "saw_zero_lag_max_s", "0")
GROUP = Words("join", "the final group", "final_group", "saw_final_lag_max_s", "the final group")


def _burst_results(
    rep: report.Report,
    decisions: list[Any],
    expected: int,
    accepted: list[Any],
    limit: int,
    t0: float,
    seen: list[dict[str, Any]],
    stats: list[dict[str, Any]],
    words: Words,
) -> None:
    """What a burst of taps measured, and the checks a flash sale and a group share."""
    res = rep.results
    lat = [d[6] for d in decisions]
    res["buys_sent"] = expected
    res["decisions"] = len(decisions)
    res["unanswered"] = expected - len(decisions)
    res["accepted"] = len(accepted)
    res["outcomes"] = dict(Counter(d[2] + (":" + d[3] if d[3] else "") for d in decisions))
    res["decision"] = report.summary(lat)
    span = [d[8] for d in accepted]
    res["sold_out_after_s"] = round((max(span) - t0) / 1000, 3) if span else None
    fan = report.hist_merge(s["hist"] for s in stats)
    res["fanout"] = report.hist_summary(fan)
    ready = sum(s["ready"] for s in seen)
    done = sum(s["done"] for s in seen)
    zero_ts = max(s["zero_ts"] for s in seen)
    zero_at = [t for s in seen for t in s["zero_at"]]
    res["viewers_saw_final"] = f"{done}/{ready}"
    res[words.lag] = round((max(zero_at) - zero_ts) / 1000, 3) if zero_at and zero_ts else None
    res["errors"] = report.merge_errors(stats)
    res["_decision_ms"] = lat
    res["_accepted_at_s"] = [round((d[8] - t0) / 1000, 4) for d in accepted]
    res["_fanout_hist"] = fan
    per_user = Counter(d[0] for d in accepted)
    over = {u: n for u, n in per_user.items() if n > limit}
    rep.check(
        f"every {words.tap} answered", len(decisions) == expected, f"{len(decisions)}/{expected}"
    )
    rep.check("nobody over the per-user limit (acks)", not over, over)
    rep.check(
        f"every viewer saw {words.final}",
        done == ready and ready > 0,
        f"{done}/{ready}; {words.seen.replace('_', ' ')} seen:"
        f" {_merge_counters(s[words.seen] for s in seen)}",
    )
    rep.target("decision p99 ms", res["decision"]["p99_ms"], 250)
    rep.target(f"every viewer saw {words.moment} within s of last sale", res[words.lag], 1.0)


def _flash_orders(
    rep: report.Report,
    accepted: list[Any],
    found: list[dict[str, Any]],
    lag: float | None,
    limit: int,
    sold: int,
    state: str | None = None,
    orders_in: str = "the database",
) -> None:
    """The orders' checks on what `orders_in` holds: liveshop's database, or the naive
    peer's outbox stream (it has no database: no SQLite lag to measure)."""
    ids = [o["order_id"] for o in found]
    acked = {d[4] for d in accepted}
    if orders_in == "the database":
        rep.results["orders_in_db"] = len(ids)
        rep.results["orders_in_db_after_s"] = lag
    else:
        rep.results["orders_in_outbox"] = len(ids)
        rep.results["orders_in_db"] = rep.results["orders_in_db_after_s"] = None
        rep.results["orders_in_db_note"] = f"n/a for {rep.data['method']}: no database"
    rep.results["orders_not_acked"] = len(set(ids) - acked)
    rep.check(
        f"every sold unit's order in {orders_in}",
        len(set(ids)) == sold,
        f"{len(set(ids))} orders, {sold} sold",
    )
    rep.check(
        f"every acked order in {orders_in}",
        acked <= set(ids),
        f"{len(acked - set(ids))} missing",
    )
    rep.check("no duplicate order", len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} dupes")
    per_user = Counter(o["user_id"] for o in found)
    rep.check(
        f"nobody over the per-user limit ({orders_in.removeprefix('the ')})",
        all(n <= limit for n in per_user.values()),
        max(per_user.values(), default=0),
    )
    if state is not None:
        states = Counter(o["state"] for o in found)
        rep.check(f"every order in state {state}", set(states) == {state}, dict(states))
    if orders_in == "the database":
        rep.target("all orders in SQLite within s", lag, 2.0)


def _merge_counters(items: Any) -> dict[str, int]:
    total: Counter[str] = Counter()
    for c in items:
        total.update(c)
    return dict(total)


async def purchases(opts: harness.Options) -> report.Report:
    duration: float = opts.extra.get("duration_s", 8.0)
    rate: float = opts.extra.get("buy_rate", 15.0)
    sold_out: bool = opts.extra.get("sold_out", False)
    rep = report.Report(
        "purchases",
        opts.method,
        {"buyers": opts.viewers, "duration_s": duration, "rate_per_buyer": rate}
        | ({"sold_out": True} if sold_out else {}),
    )
    if opts.method in ("lua", "lua-bench"):
        res = await raw_lua.run(
            opts.method,
            opts.out / "servers" / f"{opts.method}-{int(time.time())}",
            seconds=duration,
            durability=opts.durability,
        )
        rep.results.update(res)
        rep.check(
            "every decision accepted",
            res["accepted"] >= res["decisions"] * 0.999,
            f"{res['accepted']}/{res['decisions']}",
        )
        return rep
    stock = 0 if sold_out else 10_000_000  # sold out: every buy is the room's own answer
    async with harness.run(opts, [("buy-1", 990, stock)], measure=[]) as r:
        conn = await r.connect(opts.viewers, prefix="buyer")
        start = now_ms() + 500
        meter = r.meter()
        meter.start()
        async with r.profiled("purchases", duration):
            replies = await r.p.all(
                "buy_loop",
                timeout=duration + 60,
                at=start,
                duration_s=duration,
                rate=rate,
                sku="buy-1",
            )
        rep.data["cpu"] = meter.stop()
        rep.data["profiles"] = r.profiles
        stats = await r.p.all("stats", timeout=30)
    decisions = [d for rp in replies for d in rp["decisions"]]
    in_window = [d for d in decisions if d[8] <= start + duration * 1000]
    accepted = sum(1 for d in decisions if d[2] == "accepted")
    rep.results["connected"] = opts.viewers - conn["failed"]
    rep.results["decisions"] = len(decisions)
    rep.results["accepted"] = accepted
    rep.results["decisions_per_s"] = round(len(in_window) / duration, 1)
    cpu = rep.data["cpu"]
    server_cores = cpu["cores_used"].get("server")
    if server_cores is not None and in_window:
        us = server_cores * cpu["wall_s"] / len(in_window) * 1e6
        rep.results["server_us_per_decision"] = round(us, 1)
    rep.results["decision"] = report.summary([d[6] for d in decisions])
    rep.results["outcomes"] = dict(Counter(d[2] + (":" + d[3] if d[3] else "") for d in decisions))
    rep.results["errors"] = report.merge_errors(stats)
    rep.check("every buyer connected", conn["failed"] == 0, f"{conn['failed']} failed")
    if sold_out:
        rejected = rep.results["outcomes"].get("rejected:sold_out", 0)
        rep.check("every decision sold_out", rejected == len(decisions), rep.results["outcomes"])
    else:
        rep.check("every decision accepted", accepted == len(decisions), rep.results["outcomes"])
    return rep
