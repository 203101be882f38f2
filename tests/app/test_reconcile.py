"""The reconciliation alarm end to end: a server without its own persister, the
persister as a `liveshop persist` process beside it; SIGKILL the persister mid-sale, the
alarm rises on /readyz and on the broadcaster's console; restart it and the alarm
clears with every acked order stored exactly once — and, the webhooks being on, each one's
`order.changed` event written by that persister and delivered by the server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.app.test_webhooks import Receiver, free_port
from tests.databases import database_for_test, order_rows
from tests.support import ROOT, Client, ServerProcess, eventually, token

pytestmark = pytest.mark.slow
ROOM = "s001"  # the demo room
FAST = {"LIVESHOP_RECONCILE_INTERVAL_S": "0.2", "LIVESHOP_RECONCILE_ALARM_S": "1.5"}


def start_persister(data: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    liveshop = Path(sys.executable).with_name("liveshop")
    with open(log, "ab") as out:
        return subprocess.Popen(
            [str(liveshop), "persist", "--data-dir", str(data)],
            env=env,
            stdout=out,
            stderr=out,
            cwd=ROOT,
        )


async def test_a_killed_persister_raises_the_alarm_and_a_restart_clears_it(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    receiver = Receiver(free_port())
    await receiver.start()
    hooks = {
        "LIVESHOP_WEBHOOK_URL": f"http://127.0.0.1:{receiver.port}/hooks",
        "LIVESHOP_WEBHOOK_SECRET": "webhook-secret-for-tests-0123456789",
        "LIVESHOP_WEBHOOK_RETRY_MS": "100",
    }
    async with database_for_test(data) as database_url:
        env = {"LIVESHOP_DATABASE_URL": database_url, **FAST, **hooks}
        server = ServerProcess(data, demo=True, extra_env=env, extra_args=["--no-persister"])
        server.start()
        child_env = {**_plain_env(), "LIVESHOP_LOG_FORMAT": "json", **env}
        persister = start_persister(data, child_env, data / "persist.log")
        try:
            acked = await _scenario(server, data, database_url, child_env, persister)

            def hooked() -> set[str]:
                events = receiver.events().values()
                return {e["data"]["order_id"] for e in events if e["event"] == "order.changed"}

            assert await eventually(lambda: hooked() == set(acked), timeout=20)
        finally:
            await receiver.stop()
            for proc in (persister,):
                if proc.poll() is None:
                    proc.terminate()
                    proc.wait(10)
            server.stop()


async def _scenario(
    server: ServerProcess,
    data: Path,
    database_url: str,
    env: dict[str, str],
    persister: subprocess.Popen[bytes],
) -> list[str]:
    http = f"http://127.0.0.1:{server.port}"
    host = await Client.connect(server.ws_url(ROOM))
    await host.hello(token("broadcaster", "boss", room=ROOM))
    buyer = await Client.connect(server.ws_url(ROOM))
    await buyer.hello(token(user="b1"))
    acked: list[str] = []

    async def buy(n: int, tag: str) -> None:
        for i in range(n):
            ack = await buyer.request(
                {"type": "buy", "request_id": f"{tag}{i}", "sku": "lychee-500g", "qty": 1},
                "order_ack",
            )
            assert ack["status"] == "accepted"
            acked.append(ack["order_id"])

    async def alarms() -> dict[str, str]:
        async with httpx.AsyncClient() as client:
            body: dict[str, Any] = (await client.get(f"{http}/readyz")).json()
        assert body["ready"] is True  # an alarm is for people: the process stays in service
        result: dict[str, str] = body["reconciliation"]["alarms"]
        return result

    async def stored() -> set[str]:
        return {o for o, _ in await order_rows(database_url, ROOM)}

    await buy(5, "a")
    await eventually(lambda: _contains(stored(), acked), timeout=10)
    # going live's entry waited for the persister to start: lagging clears once it runs
    await eventually(lambda: _none(alarms()), timeout=15)
    persister.kill()  # SIGKILL mid-sale
    persister.wait(10)
    await buy(5, "b")
    assert await eventually(lambda: _alarm(alarms()), timeout=15) == {ROOM: "lagging"}
    red = await host.wait_for(
        lambda m: m["type"] == "stats" and m.get("reconcile", {}).get("alarm") == "lagging",
        timeout=10,
    )
    assert red["reconcile"]["delta"] == 5  # five units sold, not in the database
    restarted = start_persister(data, env, data / "persist.log")
    try:
        await eventually(lambda: _contains(stored(), acked), timeout=20)
        await eventually(lambda: _none(alarms()), timeout=15)
        calm = await host.wait_for(
            lambda m: m["type"] == "stats" and m.get("reconcile") == {"delta": 0}, timeout=10
        )
        assert "alarm" not in calm["reconcile"]
        rows = await order_rows(database_url, ROOM)
        assert sorted(o for o, _ in rows) == sorted(acked)  # each exactly once
    finally:
        restarted.terminate()
        restarted.wait(10)
    await host.close()
    await buyer.close()
    return acked


def _plain_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("LIVESHOP_")}


async def _contains(ids: Any, wanted: list[str]) -> bool:
    return set(wanted) <= await ids


async def _alarm(found: Any) -> dict[str, str] | None:
    value: dict[str, str] = await found
    return value or None


async def _none(found: Any) -> bool:
    return await found == {}
