"""Fuzzing with hypothesis: random and mutated frames never crash the decoder or the
connection rules, and against a live server every answer is a protocol `error` and
nothing changes.

The suite runs a fast subset. The dedicated run (see docs/security.md):
    LIVESHOP_FUZZ_EXAMPLES=100000 .venv/bin/python -m pytest tests/test_fuzz.py -p no:randomly -s
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liveshop.core import protocol as p
from liveshop.core.identity import Identity
from liveshop.realtime.session import Close, ConnectionState, Handle, Reply
from tests.conftest import ROOM
from tests.support import Client, RunningServer, token

EXAMPLES = int(os.environ.get("LIVESHOP_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

TYPES: list[object] = [*sorted(p.CLIENT_TYPES), "welcome", "", "BUY", None, 1]
FIELDS = [
    "token",
    "resume_from",
    "lang",
    "request_id",
    "sku",
    "qty",
    "offer_id",
    "text",
    "t",
    "title",
    "pack_id",
    "price",
    "duration_s",
    "per_user_limit",
    "type",
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=50)
    | st.integers(min_value=2**63, max_value=2**80),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)

# Every message type with every field given a value of any shape.
wrong_shapes = st.builds(
    lambda kind, fields: {"type": kind, **fields},
    st.sampled_from(TYPES),
    st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6),
)


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


frames = st.one_of(
    st.binary(max_size=300),  # anything, including invalid UTF-8
    st.text(max_size=300),
    json_values.map(json.dumps),
    wrong_shapes.map(json.dumps),
    st.integers(min_value=1, max_value=3000).map(_deep),  # deep nesting
    st.builds(
        lambda s, i, c: s[:i] + c + s[i:],  # a valid message with a byte spliced in
        st.sampled_from(
            [
                '{"type":"buy","request_id":"r","sku":"lychee-500g","qty":1}',
                '{"type":"hello","token":"x"}',
                '{"type":"chat","text":"hi"}',
            ]
        ),
        st.integers(min_value=0, max_value=40),
        st.sampled_from(['"', "}", "\\", "\x00", "9"]),
    ),
)


@FUZZ
@given(frame=frames)
def test_decoder_never_raises(frame: str | bytes) -> None:
    result = p.decode_client(frame)
    assert isinstance(result, p.DecodeFailure | p._Client)


@FUZZ
@given(frames=st.lists(frames, max_size=30))
def test_connection_rules_never_raise_and_always_answer(frames: list[str | bytes]) -> None:
    state = ConnectionState(ROOM, 0.0)
    greeted = False
    for i, frame in enumerate(frames):
        decision = state.receive(frame, float(i))
        assert isinstance(decision, Handle | Reply | Close)
        if isinstance(decision, Close):
            return
        if isinstance(decision, Reply):
            assert decision.message.code in {
                "not_ready",
                "bad_message",
                "rate_limited",
                "unauthorized",
                "forbidden",
            }
        if isinstance(decision, Handle) and isinstance(decision.message, p.Hello) and not greeted:
            state.greeted(Identity(role="viewer", user="u1", room=ROOM))
            state.welcomed()
            greeted = True


def _is_valid(frame: str | bytes) -> bool:
    return not isinstance(p.decode_client(frame), p.DecodeFailure)


@pytest.mark.slow
async def test_live_server_answers_garbage_with_errors_and_changes_nothing(
    server: RunningServer,
) -> None:
    services = server.runtime.services
    assert services is not None
    before = (await services.rooms.snapshot(ROOM)).state
    ledger = await services.inventory.ledger(ROOM)
    seen_codes: set[str] = set()
    sent = 0

    @FUZZ
    @given(frame=frames.filter(lambda f: not _is_valid(f)))
    def one_frame(frame: str | bytes) -> None:
        nonlocal sent
        sent += 1
        batch.append(frame)

    batch: list[str | bytes] = []
    one_frame()  # collects the generated frames
    c = await Client.connect(server.ws_url(ROOM))
    await c.hello(token(user="fuzzer"))
    for frame in batch:
        if c.closed.is_set():  # three bad in a row: reconnect and go on
            await c.close()
            c = await Client.connect(server.ws_url(ROOM))
            await c.hello(token(user="fuzzer"))
        start = len(c.received)
        await (c.ws.send(frame) if isinstance(frame, str) else c.ws.send(frame, text=False))
        try:
            reply: dict[str, Any] = await c.wait_for(
                lambda m: m["type"] in ("error", "bye"), timeout=5, start=start
            )
        except ConnectionError:
            continue  # closed right after a bye we already counted
        seen_codes.add(reply.get("code") or reply.get("reason"))
        if reply["type"] == "error" and reply["code"] != "too_large":
            # keep the streak short so the socket survives: one good message between
            await c.request({"type": "ping"}, "pong")
    await c.close()
    await asyncio.sleep(0)
    assert sent == len(batch) > 0
    assert seen_codes <= {"bad_message", "too_large", "protocol_violation", "rate_limited"}
    after = (await services.rooms.snapshot(ROOM)).state
    assert (after.products, after.offers, after.live, after.pinned) == (
        before.products,
        before.offers,
        before.live,
        before.pinned,
    )
    assert await services.inventory.ledger(ROOM) == ledger
