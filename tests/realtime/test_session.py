"""The per-connection state machine, driven with frames and a fake clock (no sockets)."""

from __future__ import annotations

import json

import pytest

from liveshop.core import protocol as p
from liveshop.core.errors import ErrorCode, Rejected
from liveshop.core.identity import Identity
from liveshop.realtime.session import (
    Close,
    ConnectionState,
    Handle,
    IllegalTransition,
    InteractionRules,
    Phase,
    Reply,
)

VIEWER = Identity(role="viewer", user="u1", room="s001")
ANON = Identity(role="viewer", user=None, room="s001")
HOST = Identity(role="broadcaster", user="boss", room="s001")


def ready(identity: Identity = VIEWER, now: float = 0.0) -> ConnectionState:
    state = ConnectionState("s001", now)
    decision = state.receive('{"type":"hello"}', now)
    assert isinstance(decision, Handle)
    state.greeted(identity)
    state.welcomed()
    return state


def test_hello_first_then_ready() -> None:
    state = ConnectionState("s001", 0.0)
    decision = state.receive('{"type":"ping"}', 0.0)
    assert isinstance(decision, Reply) and decision.message.code == "not_ready"
    decision = state.receive('{"type":"hello","lang":"en"}', 0.0)
    assert isinstance(decision, Handle) and state.phase is Phase.GREETING and state.lang == "en"
    assert isinstance(state.receive('{"type":"ping"}', 0.0), Reply)  # still not ready
    state.greeted(VIEWER)
    state.welcomed()
    assert isinstance(state.receive('{"type":"ping"}', 0.0), Handle)
    second = state.receive('{"type":"hello"}', 0.0)
    assert isinstance(second, Reply) and second.message.code == "bad_message"


def test_illegal_transitions_are_loud() -> None:
    state = ConnectionState("s001", 0.0)
    with pytest.raises(IllegalTransition, match="expected phase greeting"):
        state.welcomed()


def test_three_bad_in_a_row_close_but_a_good_one_resets() -> None:
    state = ready()
    for _ in range(2):
        assert isinstance(state.receive("nope", 0.0), Reply)
    assert isinstance(state.receive('{"type":"ping"}', 0.0), Handle)
    assert isinstance(state.receive("nope", 0.0), Reply)
    assert isinstance(state.receive("nope", 0.0), Reply)
    closing = state.receive("nope", 0.0)
    assert isinstance(closing, Close) and closing.code == 4400
    assert closing.message == p.Bye(reason="protocol_violation")


def test_twenty_bad_in_a_minute_close() -> None:
    state = ready()
    t = 0.0
    for i in range(19):
        t += 1.0
        assert isinstance(state.receive("nope", t), Reply), i
        assert isinstance(state.receive('{"type":"ping"}', t), Handle)
    closing = state.receive("nope", t + 1)
    assert isinstance(closing, Close) and closing.code == 4400


def test_bad_messages_spread_over_minutes_do_not_close() -> None:
    state = ready()
    for minute in range(5):
        for i in range(10):
            t = minute * 61.0 + i
            assert isinstance(state.receive("nope", t), Reply)
            assert isinstance(state.receive('{"type":"ping"}', t), Handle)


def test_oversized_frame_closes_with_1009() -> None:
    state = ready()
    closing = state.receive(json.dumps({"type": "chat", "text": "x" * 4100}), 0.0)
    assert isinstance(closing, Close) and closing.code == 1009
    assert isinstance(closing.message, p.Error) and closing.message.code == "too_large"
    # 4096 bytes exactly is allowed (multi-byte characters count as bytes)
    state = ready()
    frame = '{"type":"chat","text":"' + "a" * (4096 - 25) + '"}'
    assert len(frame.encode()) == 4096
    assert not isinstance(state.receive(frame, 0.0), Close)
    state = ready()
    assert isinstance(state.receive('{"type":"chat","text":"' + "字" * 1400 + '"}', 0.0), Close)


def test_anonymous_viewer_may_not_act_and_viewer_may_not_broadcast() -> None:
    anon = ready(ANON)
    for frame in (
        '{"type":"buy","request_id":"r","sku":"a","qty":1}',
        '{"type":"chat","text":"hi"}',
        '{"type":"like"}',
    ):
        d = anon.receive(frame, 0.0)
        assert isinstance(d, Reply) and d.message.code == "unauthorized"
    viewer = ready(VIEWER)
    d = viewer.receive('{"type":"end_live"}', 0.0)
    assert isinstance(d, Reply) and d.message.code == "forbidden"
    host = ready(HOST)
    assert isinstance(host.receive('{"type":"end_live"}', 0.0), Handle)


def test_token_bucket_limits_then_closes_a_flood() -> None:
    state = ConnectionState("s001", 0.0, msg_rate=20, msg_burst=50, flood_limit=10)
    state.receive('{"type":"hello"}', 0.0)
    state.greeted(VIEWER)
    state.welcomed()
    handled = sum(isinstance(state.receive('{"type":"ping"}', 0.0), Handle) for _ in range(49))
    assert handled == 49  # the burst, minus the hello
    limited = state.receive('{"type":"ping"}', 0.0)
    assert isinstance(limited, Reply) and limited.message.code == "rate_limited"
    assert isinstance(state.receive('{"type":"ping"}', 1.0), Handle)  # refilled 20/s
    decisions = []
    while not decisions or not isinstance(decisions[-1], Close):
        decisions.append(state.receive('{"type":"ping"}', 1.0))
    assert sum(isinstance(d, Handle) for d in decisions) == 19  # the rest of the refill
    assert sum(isinstance(d, Reply) for d in decisions) == 9
    assert isinstance(decisions[-1], Close) and decisions[-1].code == 4429


def test_chat_is_trimmed_and_refused_when_empty_or_with_control_characters() -> None:
    rules = InteractionRules()
    assert rules.chat("s001", "u1", "  荔枝甜吗?  ", 0.0) == "荔枝甜吗?"
    for bad in ("   ", "bell\x07", "rtl\u202eoverride"):
        with pytest.raises(Rejected) as refused:
            rules.chat("s001", "u2", bad, 0.0)
        assert refused.value.code is ErrorCode.BAD_MESSAGE
    assert rules.chat("s001", "u3", "family 👨\u200d👩\u200d👧", 0.0)  # ZWJ emoji are text


def test_one_chat_message_per_user_and_room_every_two_seconds() -> None:
    rules = InteractionRules()
    rules.chat("s001", "u1", "a", 10.0)
    with pytest.raises(Rejected) as refused:
        rules.chat("s001", "u1", "b", 11.9)
    assert refused.value.code is ErrorCode.RATE_LIMITED
    rules.chat("s002", "u1", "other room", 11.9)  # per room
    rules.chat("s001", "u2", "other user", 11.9)  # per user
    rules.chat("s001", "u1", "c", 12.0)  # two seconds after the first


def test_likes_are_limited_to_ten_a_second_with_a_burst_of_ten() -> None:
    rules = InteractionRules()
    for _ in range(10):
        rules.like("s001", "u1", 5.0)
    with pytest.raises(Rejected) as refused:
        rules.like("s001", "u1", 5.0)
    assert refused.value.code is ErrorCode.RATE_LIMITED
    rules.like("s001", "u2", 5.0)  # another user has their own
    rules.like("s001", "u1", 5.15)  # 0.15 s earns one and a half: one more
    with pytest.raises(Rejected):
        rules.like("s001", "u1", 5.15)
