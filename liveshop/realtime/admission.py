"""Admission: whether a new room socket may open, decided before it is accepted.

Pure bookkeeping, no I/O: the origin allow-list (against cross-site websocket
hijacking), a process-wide socket cap (503), and per-IP caps on open sockets and on new
connections per second (429). Loopback peers are exempt from the per-IP caps unless
configured otherwise: behind a local reverse proxy the peer address is the client's
own (uvicorn rewrites it from X-Forwarded-For for trusted proxies), so only local tools
such as load testers connect from loopback.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from liveshop.core.ratelimit import TokenBucket


@dataclass(frozen=True, slots=True)
class Denied:
    status: int  # HTTP status of the refused upgrade
    code: str  # protocol error code
    message: str


class Admission:
    def __init__(
        self,
        *,
        origins: frozenset[str] | None,
        max_sockets: int,
        max_per_ip: int,
        connects_per_ip_per_s: float,
        limit_loopback: bool = False,
    ) -> None:
        self._origins = origins
        self._max_sockets = max_sockets
        self._max_per_ip = max_per_ip
        self._rate = connects_per_ip_per_s
        self._limit_loopback = limit_loopback
        self.open_total = 0
        self._open: dict[str, int] = {}
        self._buckets: dict[str, TokenBucket] = {}

    def _limited(self, ip: str) -> bool:
        if self._limit_loopback:
            return True
        try:
            return not ipaddress.ip_address(ip).is_loopback
        except ValueError:
            return True  # not an IP (e.g. a unix socket peer): limit it

    def admit(self, ip: str, origin: str | None, now: float) -> Denied | None:
        """Decide on a new socket; when admitted, the caller must `release(ip)` later."""
        if (
            self._origins is not None
            and origin is not None
            and origin.rstrip("/") not in self._origins
        ):
            return Denied(403, "forbidden", f"origin {origin!r} is not allowed")
        if self.open_total >= self._max_sockets:
            return Denied(503, "unavailable", "server is full, try another one")
        if self._limited(ip):
            if self._open.get(ip, 0) >= self._max_per_ip:
                return Denied(429, "rate_limited", "too many open sockets from your address")
            bucket = self._buckets.get(ip)
            if bucket is None:
                if len(self._buckets) > 100_000:  # forget idle addresses, keep memory bounded
                    self._buckets = {k: b for k, b in self._buckets.items() if k in self._open}
                bucket = self._buckets[ip] = TokenBucket(self._rate, self._rate * 4, now)
            if not bucket.take(now):
                return Denied(429, "rate_limited", "too many new connections, slow down")
        self.open_total += 1
        self._open[ip] = self._open.get(ip, 0) + 1
        return None

    def release(self, ip: str) -> None:
        self.open_total -= 1
        left = self._open.get(ip, 1) - 1
        if left:
            self._open[ip] = left
        else:
            self._open.pop(ip, None)
