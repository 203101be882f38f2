"""Every example in docs/protocol.md round-trips through the protocol structs; bad
input decodes to a failure, never an exception."""

from __future__ import annotations

import json
import re
from pathlib import Path

import msgspec
import pytest

from liveshop.core import protocol as p

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
EXAMPLE = re.compile(r"^(→|←) (\{.*\})$", re.MULTILINE)
EXAMPLES = EXAMPLE.findall(DOC.read_text())


def test_the_doc_has_an_example_of_every_message_type() -> None:
    client = {json.loads(body)["type"] for arrow, body in EXAMPLES if arrow == "→"}
    server = {json.loads(body)["type"] for arrow, body in EXAMPLES if arrow == "←"}
    assert client == p.CLIENT_TYPES
    assert server == {
        "welcome",
        "viewers",
        "stock",
        "offer",
        "pinned",
        "live",
        "chat",
        "order_ack",
        "order",
        "cancel_ack",
        "group",
        "hint",
        "stats",
        "pong",
        "error",
        "bye",
        "chat_removed",
        "mod_ack",
        "moderation",
        "poll",
        "draw",
    }


@pytest.mark.parametrize(("arrow", "body"), EXAMPLES)
def test_example_round_trips(arrow: str, body: str) -> None:
    if arrow == "→":
        msg = p.decode_client(body)
        assert not isinstance(msg, p.DecodeFailure), msg
        # Everything the client said survives decoding (defaults aside).
        decoded = msgspec.to_builtins(msg)
        for key, value in json.loads(body).items():
            assert decoded[key] == value
    else:
        msg = p.decode_server(body)
        assert json.loads(p.encode(msg)) == json.loads(body)


def test_protocol_page_example_decodes() -> None:
    """The example at the end of ../shared/PROTOCOL.md, verbatim."""
    welcome = p.decode_server(
        '{"type":"welcome","room":"s001","role":"viewer","user":"u42","seq":1207,"resumed":false,'
        '"state":{"live":true,"session_id":"ls_9f2","viewers":318,"pinned":"lychee-500g",'
        '"products":[{"sku":"lychee-500g","name":"岭南荔枝 500g","price":1990,"stock":37}],'
        '"offers":[]}}'
    )
    assert isinstance(welcome, p.Welcome) and welcome.state.products[0].stock == 37
    ack = p.decode_server(
        '{"type":"order_ack","request_id":"r-1","status":"accepted","order_id":"o_7Qx",'
        '"pickup_code":"482913","sku":"lychee-500g","qty":2,"unit_price":1990}'
    )
    assert isinstance(ack, p.OrderAck) and ack.unit_price == 1990
    assert isinstance(
        p.decode_client('{"type":"buy","request_id":"r-1","sku":"lychee-500g","qty":2}'), p.Buy
    )


@pytest.mark.parametrize(
    "frame",
    [
        "",
        "null",
        "[]",
        "{}",
        '{"type":1}',
        '{"type":"nope"}',
        '{"type":"buy"}',
        '{"type":"buy","request_id":"","sku":"a","qty":1}',
        '{"type":"buy","request_id":"' + "x" * 65 + '","sku":"a","qty":1}',
        '{"type":"buy","request_id":"r","sku":"a","qty":0}',
        '{"type":"buy","request_id":"r","sku":"a","qty":1.5}',
        '{"type":"buy","request_id":"r","sku":"a","qty":true}',
        '{"type":"buy","request_id":"r","sku":"a","qty":99999999999999999999999}',
        '{"type":"chat","text":""}',
        '{"type":"chat","text":"' + "字" * 201 + '"}',
        '{"type":"hello","lang":"fr"}',
        '{"type":"hello","resume_from":-1}',
        '{"type":"offer_start","sku":"a","price":0,"qty":1,"duration_s":60,"per_user_limit":1}',
        '{"type":"offer_start","sku":"a","price":1,"qty":1,"duration_s":9,"per_user_limit":1}',
        '{"type":"offer_start","sku":"a","price":1,"qty":1,"duration_s":3601,"per_user_limit":1}',
        '{"type":"restock","sku":"a","qty":"5"}',
        b"\xff\xfe\xfd",
        "[" * 5000,
    ],
)
def test_bad_frames_decode_to_failures(frame: str | bytes) -> None:
    result = p.decode_client(frame)
    assert isinstance(result, p.DecodeFailure)
    assert result.message


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    msg = p.decode_client('{"type":"ping","t":1,"future_field":{"a":1}}')
    assert msg == p.Ping(t=1)


def test_offer_statuses_are_the_literal_ones() -> None:
    assert all(p.is_offer_status(s) for s in ("live", "sold_out", "ended"))
    assert not p.is_offer_status("paused")
