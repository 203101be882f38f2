"""GET /metrics after a small sale: the names, closed label sets and values the
operations issue asks for, and the fan-out lag the server reports agreeing with the
lag its clients see (within 25 % at p99)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from loadtest import fanout, harness
from tests.conftest import ROOM
from tests.support import RunningServer, clients, token

# Label names any sample may carry: closed sets only, never a room, user or SKU.
ALLOWED_LABELS = {"role", "type", "reason", "outcome", "alarm", "version", "le"}

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(server: RunningServer) -> tuple[Samples, str]:
    async with httpx.AsyncClient() as http:
        resp = await http.get(f"{server.http}/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(resp.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples, resp.text


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def test_metrics_after_a_small_sale(server: RunningServer) -> None:
    before, _ = await scrape(server)
    services = server.runtime.services
    assert services is not None
    await services.inventory.put_product(ROOM, "flash", name="秒杀荔枝", price=990, stock=5)
    n = 12
    async with clients([server.ws_url(ROOM)] * n, [token(user=f"m{i}") for i in range(n)]) as cs:
        acks = await asyncio.gather(
            *(
                c.request(
                    {"type": "buy", "request_id": "t1", "sku": "flash", "qty": 1}, "order_ack"
                )
                for c in cs
            )
        )
        accepted = sum(a["status"] == "accepted" for a in acks)
        assert accepted == 5
        for c in cs:
            await c.wait_for(
                lambda m: m["type"] == "stock" and m["sku"] == "flash" and m["left"] == 0
            )
    assert server.runtime.persister is not None
    await server.runtime.persister.drain()
    after, text = await scrape(server)

    for (name, labels), _ in after.items():
        if name.startswith("liveshop_"):
            assert {k for k, _ in labels} <= ALLOWED_LABELS, (name, labels)
    for family in (
        "liveshop_build_info",
        "liveshop_purchase_decision_seconds",
        "liveshop_purchases_total",
        "liveshop_messages_sent_total",
        "liveshop_bytes_sent_total",
        "liveshop_fanout_lag_seconds",
        "liveshop_persist_commit_seconds",
        "liveshop_persist_batch_size",
        "liveshop_outbox_entries",
        "liveshop_outbox_oldest_seconds",
        "liveshop_reconcile_unexplained_units",
        "liveshop_event_loop_lag_seconds",
        "liveshop_engine_round_trip_seconds",
        "liveshop_slow_consumer_drops_total",
    ):
        assert f"# TYPE {family} " in text, family
    assert delta(before, after, "liveshop_purchases_total", outcome="accepted", reason="none") == 5
    rejected = delta(
        before, after, "liveshop_purchases_total", outcome="rejected", reason="sold_out"
    )
    assert rejected == n - 5
    assert delta(before, after, "liveshop_purchase_decision_seconds_count") == n
    # every one of the n sockets got the stock messages of the sale
    assert delta(before, after, "liveshop_messages_sent_total", type="stock") >= n
    assert delta(before, after, "liveshop_bytes_sent_total") > 0
    assert delta(before, after, "liveshop_fanout_lag_seconds_count") >= 1
    assert delta(before, after, "liveshop_persist_batch_size_sum") >= 5
    assert value(after, "liveshop_build_info", version=_version()) == 1
    assert delta(before, after, "liveshop_messages_received_total", type="buy") == n
    assert delta(before, after, "liveshop_messages_received_total", type="hello") >= n
    assert delta(before, after, "liveshop_connects_total", outcome="accepted") >= n
    assert delta(before, after, "liveshop_disconnects_total", reason="client_closed") >= n
    assert delta(before, after, "liveshop_messages_sent_total", type="order_ack") == n
    assert value(after, "liveshop_connections", role="viewer") == value(
        before, "liveshop_connections", role="viewer"
    )  # every one of them closed again


def _version() -> str:
    from liveshop import __version__

    return __version__


@pytest.mark.slow
async def test_fan_out_lag_agrees_with_the_load_tests_client_side_p99(tmp_path: Path) -> None:
    """The load test's viewers (their own processes) measure arrival - ts; the server's
    /metrics histogram of the same messages gives its p99 within 25 % of theirs."""
    rep = await fanout.fanout(
        harness.Options(
            viewers=400,
            method="liveshop",
            workers=2,
            inflight=64,
            out=tmp_path,
            progress=False,
            plot=False,
            timeout=60.0,
            extra={"rates": [20.0], "step_s": 3.0},
        )
    )
    [step] = rep.results["steps"]
    client_p99 = step["latency"]["p99_ms"]
    server_p99 = step["server_lag_p99_ms"]
    assert server_p99 is not None and client_p99 > 0
    assert abs(server_p99 - client_p99) <= 0.25 * client_p99, (server_p99, client_p99)
