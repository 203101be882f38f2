"""The purchase gate: what a room holds back between the engine's answers (pure, no
engine), and Purchases wired to a real hub's stream."""

from __future__ import annotations

import asyncio

from liveshop.commerce.purchases import PurchaseGate


async def test_purchase_gate_holds_taps_beyond_what_is_left_until_answers_come() -> None:
    gate = PurchaseGate()
    gate.seed(1, {"a": 2})
    assert await gate.admit("a", 1) and await gate.admit("a", 1)  # two units, two in flight
    third = asyncio.create_task(gate.admit("a", 1))
    fourth = asyncio.create_task(gate.admit("a", 1))
    await asyncio.sleep(0.01)
    assert not third.done() and not fourth.done()  # both would need units in flight
    gate.release("a", 1)  # one answer came back (say, a rejection): stock still 2
    assert await asyncio.wait_for(third, 1) is True  # first in line goes first
    assert not fourth.done()
    gate.seen("a", 0, 2)  # the stream says: sold out
    assert await asyncio.wait_for(fourth, 1) is False
    assert await gate.admit("a", 1) is False  # known sold out: no waiting, no engine
    gate.release("a", 1)
    gate.release("a", 1)
    assert gate.in_flight == {} and gate.idle


async def test_purchase_gate_lets_everything_through_when_nothing_is_known() -> None:
    gate = PurchaseGate()
    assert all([await gate.admit("b", 5) for _ in range(10)])
    assert gate.in_flight == {"b": 50}


def test_a_snapshot_older_than_the_stream_does_not_overwrite_it() -> None:
    gate = PurchaseGate()
    gate.seen("a", 3, 10)
    gate.seed(7, {"a": 9, "b": 4})  # taken before seq 10: stale
    assert gate.stock == {"a": 3}
    gate.seed(12, {"a": 2, "b": 4})
    assert gate.stock == {"a": 2, "b": 4}


async def test_a_buyer_who_leaves_the_line_gives_back_nothing_it_did_not_hold() -> None:
    gate = PurchaseGate()
    gate.seed(1, {"a": 1})
    assert await gate.admit("a", 1)
    waiting = asyncio.create_task(gate.admit("a", 1))
    await asyncio.sleep(0.01)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    gate.release("a", 1)
    assert gate.in_flight == {} and gate.idle
