"""The Redis key schema: every key and channel liveshop uses, in one place.

Base module. Every key of a room carries the room's hash tag `{room_id}`, so one
purchase script touches one slot of a Redis Cluster. Room ids are restricted to
[A-Za-z0-9_-] so a tag can never be broken by a brace.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

ROOM_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SKU = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

ROOMS_INDEX = "ls:rooms"  # set of room ids (the persister and HQ iterate it)
OUTBOX_GROUP = "persister"
PROCESSES = "ls:processes"  # zset process id -> heartbeat expiry (epoch ms)
RECONCILE = "ls:reconcile"  # hash room id -> JSON reconcile.RoomFigures (the reconciler)
OPEN_DRAWS = "ls:draws:open"  # zset "<room>|<draw_id>" -> ends_at: draws the sweep draws
OPEN_POLLS = "ls:polls:open"  # set "<room>|<poll_id>": the polls every process's sweep ticks
CHAIN_WORDS = "ls:chain:words"  # set: HQ's blocked words for every room (≤ 5,000)
CHAIN_WORDS_VERSION = "ls:chain:words_v"  # string counter: bumped on every change
NETWORK_ROOMS = "ls:rooms:network"  # set: the joint rooms (kind network, commerce.joint_rooms)
RECONCILE_LEASE = "ls:reconcile:lease"  # string: the process that judges now, with a TTL


def process_heartbeat(process_id: str) -> str:
    """hash: one server process's last heartbeat (pid, host, figures); expires by TTL."""
    return f"ls:process:{process_id}"


def process_inbox(process_id: str) -> str:
    """list: admin requests for that process (JSON), taken by its heartbeat loop."""
    return f"ls:process:{process_id}:inbox"


def admin_reply(request_id: str) -> str:
    """string, short TTL: the answer of the process that carried out an admin request."""
    return f"ls:admin:reply:{request_id}"


@dataclass(frozen=True, slots=True)
class RoomKeys:
    """Names of one room's keys. Build with `RoomKeys.of(room_id)`."""

    room_id: str
    room: str  # hash: name, title, live, session_id, pinned, stream_url, peak, ...
    products: str  # hash sku -> JSON {name, image}
    price: str  # hash sku -> regular unit price (minor units)
    stock: str  # hash sku -> units left
    stocked: str  # hash sku -> units ever stocked (stock + held + sold == stocked)
    sold: str  # hash sku -> units sold in orders that still hold them
    outbox: str  # stream of accepted orders, consumer group `persister`
    seq: str  # string counter: the room stream's last seq
    history: str  # stream of room messages with id `<seq>-0`, capped
    channel: str  # pub/sub channel carrying "<seq> <coalesce-key> <json>"
    stats: str  # hash: live-session totals (orders, units, gmv, u:<sku>, g:<sku>, ...)
    buyers: str  # set: distinct buyers of the live session
    audience: str  # set: distinct viewers of the live session
    offers: str  # hash offer_id -> sku for offers that are live
    presence: str  # hash process_id -> local viewer count
    presence_exp: str  # zset process_id -> expiry (epoch ms)
    # Orders after the tap (commerce.order_book; the scripts build per-order and
    # per-user keys from `prefix`: order:<id> (JSON), user:<len>:<user>:orders (list,
    # newest first) and :unpaid (set), txn:<id>, verify:<len>:<staff>:misses|lock)
    prefix: str  # "ls:{room}:"
    held: str  # hash sku -> units in unpaid orders (stocked = stock + held + sold)
    due: str  # zset "pay:<id>" | "pickup:<id>" | "code:<id>" -> due time (epoch ms)
    codes: str  # hash pickup code -> order id, for the store's open orders
    refunds: str  # hash "<order id>|<reason>" -> pending | done | failed
    groups: str  # hash group id -> ends_at: the room's groups (lua/_groups.lua)
    bands: str  # hash sku -> "<floor>:<ceiling>:<version>": HQ's price band for this room
    # What the post-live review needs of a session (commerce.reviews), reset at go-live
    minutes: str  # hash minute of the session -> peak viewers in that minute
    session_offers: str  # list: offer ids started in the session, in order
    hints_log: str  # list: JSON of every coaching hint fired in the session
    # Campaign packs (commerce.packs)
    packs: str  # hash "<pack_id>:<version>" -> "applied:<session_id>" | "withdrawn"
    queued: str  # hash "<pack_id>:<version>:<n>" -> JSON of a pack's offer for the session
    queued_due: str  # zset of the queued offers still to start -> due time (epoch ms)
    # Moderation (commerce.moderation, lua/moderation_*.lua)
    mod: str  # hash: mutes, kicks, bans, moderators, slow mode, word list version, devices
    words: str  # set: the room's blocked words (≤ 500)
    mod_log: str  # stream: every moderation action (who, when, what, why), capped
    removed: str  # zset: seqs of deleted chat messages, score seq (a resume skips them)
    polls: str  # hash poll_id -> ends_at: the room's polls (lua/polls_*.lua); poll:<id>
    draws: str  # hash draw_id -> ends_at: the room's draws (lua/draws_*.lua); draw:<id>
    reservations: str  # set: users who reserved the next live (commerce.reservations)

    @staticmethod
    def room_of(key: str) -> str:
        """The room of one of its keys (`ls:{<room>}:…`)."""
        return key[len("ls:{") : key.index("}")]

    @classmethod
    @functools.lru_cache(maxsize=4096)  # built per purchase: the strings are made once
    def of(cls, room_id: str) -> RoomKeys:
        t = f"ls:{{{room_id}}}"
        return cls(
            room_id=room_id,
            room=f"{t}:room",
            products=f"{t}:products",
            price=f"{t}:price",
            stock=f"{t}:stock",
            stocked=f"{t}:stocked",
            sold=f"{t}:sold",
            outbox=f"{t}:outbox",
            seq=f"{t}:seq",
            history=f"{t}:history",
            channel=f"{t}:events",
            stats=f"{t}:stats",
            buyers=f"{t}:buyers",
            audience=f"{t}:audience",
            offers=f"{t}:offers",
            presence=f"{t}:presence",
            presence_exp=f"{t}:presence_exp",
            prefix=f"{t}:",
            held=f"{t}:held",
            due=f"{t}:due",
            codes=f"{t}:codes",
            refunds=f"{t}:refunds",
            groups=f"{t}:groups",
            bands=f"{t}:bands",
            minutes=f"{t}:minutes",
            session_offers=f"{t}:session_offers",
            hints_log=f"{t}:hints_log",
            packs=f"{t}:packs",
            queued=f"{t}:queued",
            queued_due=f"{t}:queued_due",
            mod=f"{t}:mod",
            words=f"{t}:words",
            mod_log=f"{t}:mod_log",
            removed=f"{t}:removed",
            polls=f"{t}:polls",
            draws=f"{t}:draws",
            reservations=f"{t}:reservations",
        )

    def idempotency(self, user: str, request_id: str) -> str:
        # Length-prefix the user so ("a:b", "c") and ("a", "b:c") never collide.
        return f"ls:{{{self.room_id}}}:idem:{len(user)}:{user}:{request_id}"

    def engagement(self, bucket: int) -> str:
        """hash sku -> likes and chat mentions in one 10-second bucket (expires)."""
        return f"ls:{{{self.room_id}}}:engage:{bucket}"

    def hint_cooldown(self, code: str, subject: str) -> str:
        """string, PX = the hint's cooldown: set (NX) when a hint fires, shared by every
        process so a console reconnect or a move to another process cannot repeat it."""
        return f"ls:{{{self.room_id}}}:hint:{code}:{subject}"

    def route(self, user: str, request_id: str) -> str:
        """hash: a joint room's purchase request: the member store it went to (and the
        ones that refused), recorded before that store's purchase script runs."""
        return f"ls:{{{self.room_id}}}:route:{len(user)}:{user}:{request_id}"

    def routed_orders(self, user: str) -> str:
        """list: a buyer's orders in this joint room (ids, newest first): they live in the
        member stores' slots."""
        return f"ls:{{{self.room_id}}}:routed:{len(user)}:{user}"

    def offer(self, offer_id: str) -> str:
        return f"ls:{{{self.room_id}}}:offer:{offer_id}"  # hash: the offer's fields

    def group(self, group_id: str) -> str:
        return f"ls:{{{self.room_id}}}:group:{group_id}"  # hash: the group's fields

    def offer_buyers(self, offer_id: str) -> str:
        return f"ls:{{{self.room_id}}}:offer:{offer_id}:buyers"  # hash user -> units


def room_id_from_channel(channel: str) -> str:
    """Inverse of `RoomKeys.channel`."""
    return channel[channel.index("{") + 1 : channel.index("}")]
