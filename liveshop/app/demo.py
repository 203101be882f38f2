"""The demo store room: a community fruit shop with Chinese product names.

Loaded by `liveshop serve --demo`. Only uses the public services (rooms, inventory),
exactly like HQ's REST calls would.
"""

from __future__ import annotations

from liveshop.commerce.inventory import Inventory
from liveshop.commerce.rooms import Rooms

DEMO_ROOM = "s001"
DEMO_NAME = "鲜果社区店·望京店"
DEMO_TITLE = "今晚荔枝专场 · Lychee night"

DEMO_PRODUCTS: list[tuple[str, str, int, int]] = [
    # sku, name, price (分), stock
    ("lychee-500g", "岭南荔枝 500g", 1990, 200),
    ("mango-2pc", "海南贵妃芒 2个装", 1590, 120),
    ("durian-1kg", "泰国金枕榴莲 1kg", 8800, 30),
    ("eggs-10", "散养土鸡蛋 10枚", 1280, 80),
    ("milk-1l", "鲜牛奶 1L", 1150, 60),
    ("bokchoy-500g", "本地小油菜 500g", 390, 150),
]


async def load(rooms: Rooms, inventory: Inventory, *, go_live: bool = True) -> None:
    """Create the demo room if it does not exist yet; never reset a running sale."""
    if await rooms.exists(DEMO_ROOM):
        return
    await rooms.put(DEMO_ROOM, name=DEMO_NAME, title=DEMO_TITLE)
    for sku, name, price, stock in DEMO_PRODUCTS:
        await inventory.put_product(DEMO_ROOM, sku, name=name, price=price, stock=stock)
    await rooms.pin(DEMO_ROOM, DEMO_PRODUCTS[0][0])
    if go_live:
        await rooms.go_live(DEMO_ROOM, DEMO_TITLE)
