"""The order state machine of protocol v1.1 ("Orders after the tap"), as a table.

Pure: no I/O, no clock. Owns the legal moves — from, to, which path may make it, and
what the move does to stock and money — and one function that applies a move or
refuses it by name. The scripts that move orders in the engine follow this table;
tests walk every row and every refusal.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from liveshop.core.errors import ErrorCode, Rejected


class State(enum.StrEnum):
    AWAITING_PAYMENT = "awaiting_payment"
    ACCEPTED = "accepted"
    PAID = "paid"
    READY = "ready"
    OUT_FOR_DELIVERY = "out_for_delivery"
    PICKED_UP = "picked_up"
    UNCOLLECTED = "uncollected"
    DELIVERED = "delivered"
    DELIVERY_FAILED = "delivery_failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    PENDING_GROUP = "pending_group"


class By(enum.StrEnum):
    """The only path through which a move may be made (the protocol's "by" column)."""

    PAYMENT = "payment"  # a valid payment notification before pay_by
    CLOCK = "clock"  # a guarded sweep at pay_by / pickup_by
    STAFF = "staff"  # POST /api/orders/{id}/state
    VERIFY = "verify"  # pickup verification at the counter
    UNDO_VERIFY = "undo_verify"  # within 15 min of a verification
    DELIVERY = "delivery"  # store staff or a delivery provider's callback
    BUYER = "buyer"  # the buyer's `cancel`
    GROUP = "group"  # the group succeeding, failing or being cancelled


class Effect(enum.Flag):
    NONE = 0
    RELEASE_UNITS = enum.auto()  # units go back to stock (or to the group's shelf)
    REFUND_IF_PAID = enum.auto()  # a refund, once per (order, reason), if it was paid


@dataclass(frozen=True, slots=True)
class Move:
    source: State
    target: State
    by: frozenset[By]
    effect: Effect = Effect.NONE


S = State
_STAFF_OR_BUYER = frozenset({By.STAFF, By.BUYER})

MOVES: tuple[Move, ...] = (
    Move(S.AWAITING_PAYMENT, S.PAID, frozenset({By.PAYMENT})),
    Move(S.AWAITING_PAYMENT, S.EXPIRED, frozenset({By.CLOCK}), Effect.RELEASE_UNITS),
    Move(S.ACCEPTED, S.READY, frozenset({By.STAFF})),
    Move(S.PAID, S.READY, frozenset({By.STAFF})),
    Move(S.ACCEPTED, S.OUT_FOR_DELIVERY, frozenset({By.STAFF})),
    Move(S.PAID, S.OUT_FOR_DELIVERY, frozenset({By.STAFF})),
    Move(S.READY, S.PICKED_UP, frozenset({By.VERIFY})),
    Move(
        S.READY,
        S.UNCOLLECTED,
        frozenset({By.CLOCK}),
        Effect.RELEASE_UNITS | Effect.REFUND_IF_PAID,
    ),
    Move(S.OUT_FOR_DELIVERY, S.DELIVERED, frozenset({By.STAFF, By.DELIVERY})),
    Move(
        S.OUT_FOR_DELIVERY,
        S.DELIVERY_FAILED,
        frozenset({By.STAFF, By.DELIVERY}),
        Effect.REFUND_IF_PAID,
    ),
    Move(S.AWAITING_PAYMENT, S.CANCELLED, _STAFF_OR_BUYER, Effect.RELEASE_UNITS),
    Move(S.ACCEPTED, S.CANCELLED, _STAFF_OR_BUYER, Effect.RELEASE_UNITS),
    Move(S.PAID, S.CANCELLED, _STAFF_OR_BUYER, Effect.RELEASE_UNITS | Effect.REFUND_IF_PAID),
    Move(S.PICKED_UP, S.READY, frozenset({By.UNDO_VERIFY})),
    Move(S.PENDING_GROUP, S.ACCEPTED, frozenset({By.GROUP})),
    Move(S.PENDING_GROUP, S.CANCELLED, frozenset({By.GROUP}), Effect.RELEASE_UNITS),
    # A paid member's units count as sold while the group runs (the database sees `paid`),
    # so a failed group gives them back too ("units back, refunds made once").
    Move(
        S.PAID,
        S.CANCELLED,
        frozenset({By.GROUP}),
        Effect.RELEASE_UNITS | Effect.REFUND_IF_PAID,
    ),
    # "A late payment (after `expired`) ... is re-reserved as `paid` if left >= qty"
    # (otherwise refunded, and the order stays expired).
    Move(S.EXPIRED, S.PAID, frozenset({By.PAYMENT})),
)

# (from, to) -> the moves between them (PAID -> CANCELLED has two: a group's and others')
_TABLE: dict[tuple[State, State], list[Move]] = {}
for _move in MOVES:
    _TABLE.setdefault((_move.source, _move.target), []).append(_move)

# No person moves an order out of these (picked_up is not one: a verification may be
# undone for 15 min; an expired order takes only a late payment).
TERMINAL = frozenset({S.UNCOLLECTED, S.DELIVERED, S.DELIVERY_FAILED, S.EXPIRED, S.CANCELLED})


def move(source: State, target: State, by: By) -> Move:
    """The legal move from `source` to `target` by `by`, or Rejected(illegal_transition)
    naming what was expected. Nothing changes when it is refused."""
    candidates = _TABLE.get((source, target), [])
    for candidate in candidates:
        if by in candidate.by:
            return candidate
    if candidates:
        paths = sorted({b.value for c in candidates for b in c.by})
        raise Rejected(
            ErrorCode.ILLEGAL_TRANSITION,
            f"{source.value} -> {target.value} is made only by {', '.join(paths)}, not {by.value}",
        )
    allowed = sorted(t.value for (s, t) in _TABLE if s is source)
    raise Rejected(
        ErrorCode.ILLEGAL_TRANSITION,
        f"an order {source.value} can move to {', '.join(allowed) or 'nothing'}, "
        f"not {target.value}",
    )


def targets(source: State, by: By) -> list[State]:
    """Where `by` may move an order that is `source` (e.g. the staff's buttons)."""
    return sorted({m.target for m in MOVES if m.source is source and by in m.by})


def spec(target: State, by: By, *, sources: frozenset[State] | None = None) -> str:
    """The moves into `target` made by `by` (only from `sources` when given), as the
    engine's scripts take them: "<from,from>|<to>|<effects>", R = units back, F = refund
    if paid. The scripts check the order's state against it: the table stays here."""
    moves = [
        m
        for m in MOVES
        if m.target is target and by in m.by and (sources is None or m.source in sources)
    ]
    if not moves:
        raise ValueError(f"no move to {target.value} by {by.value}")
    if len({Effect.RELEASE_UNITS in m.effect for m in moves}) > 1:
        raise ValueError(f"moves to {target.value} by {by.value} differ in units: split them")
    effect = Effect.NONE
    for m in moves:
        effect |= m.effect  # F only acts on a paid order, so its union is exact
    flags = ("R" if Effect.RELEASE_UNITS in effect else "") + (
        "F" if Effect.REFUND_IF_PAID in effect else ""
    )
    return f"{','.join(sorted(m.source.value for m in moves))}|{target.value}|{flags}"
