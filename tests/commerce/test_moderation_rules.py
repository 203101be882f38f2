"""The pure rules of a `mod` message: which fields each action needs and the ranges of
`seconds` (PROTOCOL.md); how a device is recognised; and (on the real engine) that an
expired mute leaves the room's moderation hash."""

from __future__ import annotations

import time
from typing import Any

import pytest
from redis.asyncio import Redis

from liveshop.commerce.moderation import Moderation, device_cookie, device_key, refusal
from liveshop.core import protocol as p
from liveshop.core.errors import ErrorCode, Rejected
from liveshop.core.keys import RoomKeys
from liveshop.engine.scripts import Scripts


def mod(action: str, **fields: Any) -> p.Mod:
    return p.Mod(request_id="r", action=action, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("msg", "why"),
    [
        (mod("mute", user="u", seconds=10), None),
        (mod("mute", user="u", seconds=604_800), None),
        (mod("mute", user="u", seconds=9), "out_of_range"),
        (mod("mute", user="u"), "bad_message"),
        (mod("mute", seconds=60), "bad_message"),
        (mod("kick", user="u", seconds=59), "out_of_range"),
        (mod("kick", user="u", seconds=86_400), None),
        (mod("kick", user="u", seconds=86_401), "out_of_range"),
        (mod("slow", seconds=0), None),
        (mod("slow", seconds=2), "out_of_range"),
        (mod("slow", seconds=3, user="u"), None),
        (mod("slow", seconds=121), "out_of_range"),
        (mod("delete", msg_id="12"), None),
        (mod("delete", msg_id="x"), "bad_message"),
        (mod("delete"), "bad_message"),
        (mod("words_add"), "bad_message"),
        (mod("words_add", words=["加微信"]), None),
        (mod("ban", user="u"), None),
        (mod("appoint"), "bad_message"),
        (mod("unmute", user="u", seconds=30), "out_of_range"),  # seconds mean nothing here
    ],
)
def test_fields_and_ranges(msg: p.Mod, why: str | None) -> None:
    assert refusal(msg) == why


def test_a_device_is_its_cookie_and_address() -> None:
    assert device_cookie("a=1; ls_device=abcdef123456; b=2") == "abcdef123456"
    assert device_cookie("ls_device=short") is None
    assert device_cookie(None) is None
    one = device_key("abcdef123456", "10.0.0.1")
    assert one is not None and one == device_key("abcdef123456", "10.0.0.1")
    assert one != device_key("abcdef123456", "10.0.0.2")
    assert device_key(None, "10.0.0.1") is None


async def test_a_mute_that_ran_out_is_dropped_when_its_user_next_speaks(
    redis: Redis, scripts: Scripts
) -> None:
    """The room's moderation hash does not keep every user ever muted or kicked: an
    expired entry goes at that user's next chat; one still running stays and refuses."""
    keys = RoomKeys.of("s001")
    now = int(time.time() * 1000)
    await redis.hset(keys.mod, mapping={"mute:u1": now - 1, "kick:u1": now - 1})
    await redis.hset(keys.mod, mapping={"mute:u2": now + 600_000})
    moderation = Moderation(redis, scripts)
    assert await moderation.chat("s001", "u1", "hello", host=False) is None
    with pytest.raises(Rejected) as refused:
        await moderation.chat("s001", "u2", "hello", host=False)
    assert refused.value.code == ErrorCode.MUTED
    left = await redis.hkeys(keys.mod)
    assert b"mute:u1" not in left and b"kick:u1" not in left and b"mute:u2" in left
