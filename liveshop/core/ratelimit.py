"""Rate limits as plain values: a token bucket fed a monotonic clock reading.

Pure: no clock of its own, no I/O. The session (inbound messages), admission
(connects per IP) and the like rule each hold their own buckets.
"""

from __future__ import annotations


class TokenBucket:
    """Classic token bucket; `now` is seconds from any monotonic clock."""

    __slots__ = ("burst", "rate", "tokens", "updated")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.updated = now

    def take(self, now: float, cost: float = 1.0) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False
