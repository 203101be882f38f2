"""Redis replies as text.

redis-py types a reply as `bytes | str` because a client may be made with
`decode_responses=True`; liveshop's clients never are (engine.connections), so replies
are bytes. `as_text` decodes one and lets a str through, which narrows the type without
a cast.
"""

from __future__ import annotations


def as_text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
