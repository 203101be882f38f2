"""The pure rules of a `mod` message: which fields each action needs and the ranges of
`seconds` (PROTOCOL.md); and how a device is recognised."""

from __future__ import annotations

from typing import Any

import pytest

from liveshop.commerce.moderation import device_cookie, device_key, refusal
from liveshop.core import protocol as p


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
