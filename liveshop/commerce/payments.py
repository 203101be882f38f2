"""Payments: a provider's signed notification, checked and applied once per txn_id.

Owns the notification's format and signature (HMAC-SHA256 of the raw body, hex, in
`X-Liveshop-Signature`) and the demo's stand-in provider, which signs a real
notification and sends it down the same path. Applying it is order_book's
`orders_pay.lua`: idempotent on txn_id, amount checked, late payments re-reserved or
refunded once. Pure apart from that one call.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Annotated

import msgspec

from liveshop.commerce.order_book import OrderBook, Payment

SIGNATURE_HEADER = "x-liveshop-signature"
TxnId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class Notification(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    order_id: Annotated[str, msgspec.Meta(min_length=1, max_length=160)]
    txn_id: TxnId
    amount: Annotated[int, msgspec.Meta(gt=0)]
    paid_at: Annotated[int, msgspec.Meta(ge=0)]


def payment_key(secret: str, *, payment_secret: str, demo: bool) -> bytes | None:
    """The HMAC key: LIVESHOP_PAYMENT_SECRET, or on a demo server one derived from its
    secret (so the stand-in can sign). None: notifications are refused."""
    if payment_secret:
        return payment_secret.encode()
    if demo and secret:
        return hmac.new(secret.encode(), b"liveshop demo payments", hashlib.sha256).digest()
    return None


def sign(key: bytes, body: bytes) -> str:
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def signature_ok(key: bytes, body: bytes, signature: str | None) -> bool:
    return signature is not None and hmac.compare_digest(sign(key, body), signature.strip())


class Payments:
    def __init__(self, book: OrderBook, key: bytes | None) -> None:
        self._book = book
        self.key = key

    async def notify(self, body: bytes, signature: str | None) -> Payment:
        """A provider's call. Raises BadSignature, msgspec errors for a bad body, or
        Rejected(not_found / amount_mismatch); none of them records anything."""
        if self.key is None or not signature_ok(self.key, body, signature):
            raise BadSignature
        note = msgspec.json.decode(body, type=Notification)
        return await self._book.pay(note.order_id, note.txn_id, note.amount, note.paid_at)

    def demo_notification(self, order_id: str, amount: int, txn_id: str) -> tuple[bytes, str]:
        """What the demo's stand-in provider sends: a body and its signature."""
        assert self.key is not None
        body = msgspec.json.encode(
            Notification(
                order_id=order_id, txn_id=txn_id, amount=amount, paid_at=time.time_ns() // 1_000_000
            )
        )
        return body, sign(self.key, body)


class BadSignature(Exception):
    """The notification's signature is missing or wrong (or no key is configured)."""
