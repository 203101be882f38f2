"""The order state machine walked whole: every row of the protocol's table is legal by
its path and only by it; every other (from, to, by) is refused `illegal_transition`."""

from __future__ import annotations

import itertools

import pytest

from liveshop.commerce.order_states import MOVES, TERMINAL, By, Effect, State, move, spec, targets
from liveshop.core.errors import ErrorCode, Rejected

S = State
# The protocol's table (v1.1 "Orders after the tap"), written out again on purpose: the
# module must say exactly this.
PROTOCOL = {
    (S.AWAITING_PAYMENT, S.PAID): {By.PAYMENT},
    (S.AWAITING_PAYMENT, S.EXPIRED): {By.CLOCK},
    (S.ACCEPTED, S.READY): {By.STAFF},
    (S.PAID, S.READY): {By.STAFF},
    (S.ACCEPTED, S.OUT_FOR_DELIVERY): {By.STAFF},
    (S.PAID, S.OUT_FOR_DELIVERY): {By.STAFF},
    (S.READY, S.PICKED_UP): {By.VERIFY},
    (S.READY, S.UNCOLLECTED): {By.CLOCK},
    (S.OUT_FOR_DELIVERY, S.DELIVERED): {By.STAFF, By.DELIVERY},
    (S.OUT_FOR_DELIVERY, S.DELIVERY_FAILED): {By.STAFF, By.DELIVERY},
    (S.AWAITING_PAYMENT, S.CANCELLED): {By.STAFF, By.BUYER},
    (S.ACCEPTED, S.CANCELLED): {By.STAFF, By.BUYER},
    (S.PAID, S.CANCELLED): {By.STAFF, By.BUYER, By.GROUP},
    (S.PICKED_UP, S.READY): {By.UNDO_VERIFY},
    (S.PENDING_GROUP, S.ACCEPTED): {By.GROUP},
    (S.PENDING_GROUP, S.CANCELLED): {By.GROUP},
    # "A late payment (after expired) ... is re-reserved as paid if left >= qty"
    (S.EXPIRED, S.PAID): {By.PAYMENT},
}


def test_the_table_is_the_protocols() -> None:
    table: dict[tuple[State, State], set[By]] = {}
    for m in MOVES:
        table.setdefault((m.source, m.target), set()).update(m.by)
    assert table == PROTOCOL


def test_every_move_is_legal_only_through_its_path() -> None:
    """All 12 x 12 x 8 (from, to, by): the protocol's are made, every other is refused."""
    for source, target, by in itertools.product(State, State, By):
        if by in PROTOCOL.get((source, target), set()):
            made = move(source, target, by)
            assert (made.source, made.target) == (source, target)
            continue
        with pytest.raises(Rejected) as refused:
            move(source, target, by)
        assert refused.value.code is ErrorCode.ILLEGAL_TRANSITION, (source, target, by)
        assert source.value in refused.value.message and target.value in refused.value.message


def test_what_moves_give_back_and_refund() -> None:
    assert move(S.AWAITING_PAYMENT, S.EXPIRED, By.CLOCK).effect is Effect.RELEASE_UNITS
    assert move(S.READY, S.UNCOLLECTED, By.CLOCK).effect == (
        Effect.RELEASE_UNITS | Effect.REFUND_IF_PAID
    )
    assert move(S.PAID, S.CANCELLED, By.BUYER).effect == (
        Effect.RELEASE_UNITS | Effect.REFUND_IF_PAID
    )
    # a failed group gives a paid member's units back and refunds them
    assert move(S.PAID, S.CANCELLED, By.GROUP).effect == (
        Effect.RELEASE_UNITS | Effect.REFUND_IF_PAID
    )
    assert move(S.OUT_FOR_DELIVERY, S.DELIVERY_FAILED, By.DELIVERY).effect is Effect.REFUND_IF_PAID
    assert move(S.READY, S.PICKED_UP, By.VERIFY).effect is Effect.NONE


def test_terminal_states_have_no_way_out_and_staff_buttons_follow_the_table() -> None:
    for state in TERMINAL:
        ways_out = {by: targets(state, by) for by in By if targets(state, by)}
        # an expired order takes a late payment, and nothing else
        assert ways_out == ({By.PAYMENT: [S.PAID]} if state is S.EXPIRED else {})
    assert targets(S.PAID, By.STAFF) == [S.CANCELLED, S.OUT_FOR_DELIVERY, S.READY]
    assert targets(S.PICKED_UP, By.STAFF) == []  # only undo_verify goes back
    with pytest.raises(Rejected, match="only by undo_verify"):
        move(S.PICKED_UP, S.READY, By.STAFF)


def test_specs_for_the_scripts_come_from_the_table() -> None:
    """The engine's scripts check orders against specs made here, never a copy."""
    assert spec(S.CANCELLED, By.BUYER) == "accepted,awaiting_payment,paid|cancelled|RF"
    assert spec(S.EXPIRED, By.CLOCK) == "awaiting_payment|expired|R"
    assert spec(S.UNCOLLECTED, By.CLOCK) == "ready|uncollected|RF"
    assert spec(S.PAID, By.PAYMENT, sources=frozenset({S.EXPIRED})) == "expired|paid|"
    assert spec(S.READY, By.STAFF) == "accepted,paid|ready|"
    with pytest.raises(ValueError, match="no move"):
        spec(S.PICKED_UP, By.STAFF)
    for m in MOVES:  # every row has a spec that names its source
        for by in m.by:
            assert m.source.value in spec(m.target, by, sources=frozenset({m.source}))
