"""Shared bits of the baseline servers: the command line and the wire formats of
liveshop's messages, byte for byte (same sizes on the wire)."""

from __future__ import annotations

import argparse
import time
from typing import Any

import orjson


def parser(description: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--skus", type=int, default=50, help="products fan-00 … in the catalog")
    return ap


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def stock_text(sku: str, left: int, seq: int) -> str:
    """Exactly the bytes liveshop's Lua `emit(stock_body(...))` produces."""
    return f'{{"type":"stock","sku":"{sku}","left":{left},"seq":{seq},"ts":{now_ms()}}}'


def welcome(room: str, seq: int, stock: dict[str, int], viewers: int) -> dict[str, Any]:
    return {
        "type": "welcome",
        "room": room,
        "role": "viewer",
        "seq": seq,
        "resumed": False,
        "state": {
            "live": True,
            "viewers": viewers,
            "offers": [],
            "products": [{"sku": s, "name": s, "price": 990, "stock": n} for s, n in stock.items()],
        },
    }


def dumps(msg: dict[str, Any]) -> str:
    return orjson.dumps(msg).decode()
