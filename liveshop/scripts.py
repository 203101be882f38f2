"""Loads the Lua scripts in liveshop/lua once and calls them by SHA.

Each `<concept>_<op>.lua` is prefixed with `_prelude.lua` (the room-stream `emit`).
redis-py's Script runs EVALSHA and falls back to loading the source on NOSCRIPT, so a
restarted or failed-over engine needs no special handling here.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

NAMES = (
    "inventory_buy",
    "inventory_restock",
    "inventory_put_product",
    "rooms_snapshot",
    "rooms_set_live",
    "rooms_pin",
    "rooms_emit",
    "presence_report",
    "offers_start",
    "offers_close",
)


def source(name: str, *, sharded: bool = False) -> str:
    lua = resources.files("liveshop") / "lua"
    prelude = (lua / "_prelude.lua").read_text()
    body = (lua / f"{name}.lua").read_text()
    # Sharded pub/sub keeps a room's messages on the shard that owns its slot.
    return (prelude + "\n" + body).replace("__PUBLISH__", "SPUBLISH" if sharded else "PUBLISH")


class Scripts:
    """One registered script per operation; call as `await scripts.inventory_buy(keys, args)`."""

    def __init__(self, redis: Redis, *, sharded: bool = False) -> None:
        self._scripts: dict[str, AsyncScript] = {
            name: redis.register_script(source(name, sharded=sharded)) for name in NAMES
        }

    def __getattr__(self, name: str) -> AsyncScript:
        try:
            return self._scripts[name]
        except KeyError:
            raise AttributeError(name) from None

    async def load_all(self) -> None:
        """Load every script up front so the first purchase pays no SCRIPT LOAD."""
        for script in self._scripts.values():
            client: Any = script.registered_client
            script.sha = await client.script_load(script.script)
