"""The demo stores: two community fruit shops with Chinese product names.

Loaded by `liveshop serve --demo`. Only uses the public services (rooms, inventory),
exactly like HQ's REST calls would. s001 takes orders without payment (pay at the
counter); s002 asks for payment up front (a hold until pay_by; the viewer page's 去支付
goes through the demo's stand-in payment provider) and delivers within 3 km.
"""

from __future__ import annotations

from liveshop.commerce.inventory import Inventory
from liveshop.commerce.rooms import Rooms

DEMO_ROOM = "s001"
DEMO_NAME = "鲜果社区店·望京店"
DEMO_TITLE = "今晚荔枝专场 · Lychee night"
PAID_ROOM = "s002"
PAID_NAME = "鲜果社区店·酒仙桥店"
PAID_TITLE = "先付后取 · Pay first, pick up later"
# Where s002 is (Beijing, Jiuxianqiao) and what it asks of orders (PUT /api/rooms fields).
PAID_SETTINGS = {
    "payment": "required",
    "hold_s": "300",
    "offer_hold_s": "120",
    "pickup_days": "2",
    "lat": "39.9683",
    "lng": "116.4883",
    "address": "北京市朝阳区酒仙桥路 10 号",
    "region": "beijing-chaoyang",
    "delivery_radius_m": "3000",
}

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
    """Create the demo rooms that do not exist yet; never reset a running sale."""
    for room_id, name, title, settings in (
        (DEMO_ROOM, DEMO_NAME, DEMO_TITLE, None),
        (PAID_ROOM, PAID_NAME, PAID_TITLE, PAID_SETTINGS),
    ):
        if await rooms.exists(room_id):
            continue
        await rooms.put(room_id, name=name, title=title, settings=settings)
        for sku, product, price, stock in DEMO_PRODUCTS:
            await inventory.put_product(room_id, sku, name=product, price=price, stock=stock)
        await rooms.pin(room_id, DEMO_PRODUCTS[0][0])
        if go_live:
            await rooms.go_live(room_id, title)
