"""The pure rules of a campaign pack's preview (no engine): targeting, validity, unknown
SKUs, bands on every price of the pack, stock after the pack's own units, and offer
windows that overlap only when they share time (back to back is fine)."""

from __future__ import annotations

from liveshop.commerce.catalog import CatalogItem
from liveshop.commerce.packs import Pack, PackIn, PackOffer, PackProduct, RoomView, preview

ROOM = RoomView(
    region="north",
    products={"lychee": (1990, 10)},
    bands={"lychee": (1500, 2500), "navel": (3000, 4000)},
    marker=None,
)
NAVEL = CatalogItem("navel", 1, "脐橙", "", "fruit", 2990, "", "", 0)


def _pack(body: PackIn, withdrawn_at: int | None = None) -> Pack:
    return Pack("p", 3, 0, withdrawn_at, body)


def _kinds(pack: Pack, room: RoomView = ROOM, now: int = 1_000) -> list[tuple[str, bool]]:
    found = preview(pack, "s001", room, {"navel": NAVEL}, now)
    return [(c.kind, c.blocking) for c in found.conflicts]


def _offer(sku: str, at_s: int, duration_s: int = 60, qty: int = 1, price: int = 1990) -> PackOffer:
    return PackOffer(sku, price, qty, per_user_limit=1, duration_s=duration_s, at_s=at_s)


def test_targeting_validity_and_withdrawal_block() -> None:
    assert _kinds(_pack(PackIn("t", rooms=["s002"]))) == [("not_targeted", True)]
    assert _kinds(_pack(PackIn("t", regions=["south"]))) == [("not_targeted", True)]
    assert _kinds(_pack(PackIn("t", regions=["north"], rooms=["s001"]))) == []
    assert _kinds(_pack(PackIn("t", valid_from=2_000))) == [("not_valid_now", True)]
    assert _kinds(_pack(PackIn("t", valid_to=999))) == [("not_valid_now", True)]
    assert _kinds(_pack(PackIn("t", valid_from=1_000, valid_to=1_000))) == []
    assert _kinds(_pack(PackIn("t"), withdrawn_at=5)) == [("withdrawn", True)]


def test_every_price_of_the_pack_meets_the_rooms_band() -> None:
    # the catalog's base price 2990 is below the navel band: the product is refused
    new = _pack(PackIn("t", products=[PackProduct("navel", stock=5)]))
    found = preview(new, "s001", ROOM, {"navel": NAVEL}, 0)
    [conflict] = found.conflicts
    assert (conflict.kind, conflict.price, conflict.floor, conflict.ceiling) == (
        "out_of_band",
        2990,
        3000,
        4000,
    )
    priced = _pack(PackIn("t", products=[PackProduct("navel", stock=5, price=3200)]))
    assert _kinds(priced) == []
    assert _kinds(_pack(PackIn("t", offers=[_offer("lychee", 0, price=1499)]))) == [
        ("out_of_band", True)
    ]
    assert _kinds(_pack(PackIn("t", offers=[_offer("lychee", 0, price=1500)]))) == []
    assert _kinds(_pack(PackIn("t", products=[PackProduct("durian")]))) == [("unknown_sku", True)]
    assert _kinds(_pack(PackIn("t", offers=[_offer("durian", 0)]))) == [("unknown_sku", True)]


def test_stock_counts_the_packs_own_units_and_windows_overlap_only_when_they_share_time() -> None:
    more = [PackProduct("lychee", stock=5)]
    assert _kinds(_pack(PackIn("t", products=more, offers=[_offer("lychee", 0, qty=15)]))) == []
    assert _kinds(_pack(PackIn("t", products=more, offers=[_offer("lychee", 0, qty=16)]))) == [
        ("short_stock", False)
    ]
    back_to_back = [_offer("lychee", 0, 60), _offer("lychee", 60, 60)]
    assert _kinds(_pack(PackIn("t", offers=back_to_back))) == []
    overlapping = [_offer("lychee", 0, 60), _offer("lychee", 59, 60)]
    assert _kinds(_pack(PackIn("t", offers=overlapping))) == [("overlapping_offers", False)]


def test_an_applied_version_changes_nothing_again() -> None:
    room = RoomView(ROOM.region, ROOM.products, ROOM.bands, marker="applied:ls_1")
    found = preview(
        _pack(PackIn("t", products=[PackProduct("lychee", stock=5)])), "s001", room, {}, 0
    )
    assert found.applied and found.changes == []
