"""Connections to the Redis-compatible engine and the SQLite database.

Owns connection setup only: pool sizes, timeouts, SQLite pragmas, and the start-up
check of an external Redis's persistence settings. Domain modules receive the
clients; they never build their own.
"""

from __future__ import annotations

from weakref import WeakKeyDictionary

import structlog
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ResponseError

log = structlog.get_logger("liveshop.engine.connections")


AnyRedis = Redis | RedisCluster

# The URL each client of connect_redis() was built from: the purchase link opens its own
# connection to the same engine from it, instead of reading the client's pool settings.
_urls: WeakKeyDictionary[Redis, str] = WeakKeyDictionary()


def is_cluster(redis: AnyRedis) -> bool:
    return isinstance(redis, RedisCluster)


def connect_cluster(nodes: str, *, pool_size: int = 64, timeout_s: float = 1.0) -> RedisCluster:
    """A Redis Cluster client from "host:port,host:port" seed nodes. Every key of a room
    carries its hash tag, so each command and script lands on one shard."""
    startup: list[ClusterNode] = []
    for node in filter(None, nodes.split(",")):
        host, _, port = node.strip().rpartition(":")
        startup.append(ClusterNode(host, int(port)))
    return RedisCluster(
        startup_nodes=startup,
        # redis-py's cluster pool fails at its limit instead of waiting: leave headroom
        # for a flash sale's burst while still bounding connections per node.
        max_connections=pool_size * 16,
        socket_timeout=max(timeout_s, 5.0),
        socket_connect_timeout=timeout_s,
    )


def connect_redis(url: str, *, pool_size: int = 64, timeout_s: float = 1.0) -> Redis:
    """A client whose pool is bounded: under a flash sale requests queue for a
    connection instead of opening thousands of them."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=pool_size,
        timeout=timeout_s,  # waiting for a free connection
        socket_timeout=max(timeout_s, 5.0),
        socket_connect_timeout=timeout_s,
        health_check_interval=0,
        # No hidden retries: a retried command can swallow a task's cancellation, and
        # every loop here already handles a lost connection itself.
        retry=Retry(NoBackoff(), 0),
    )
    client = Redis.from_pool(pool)  # the client owns the pool: aclose() closes it
    _urls[client] = url
    return client


def engine_url(redis: AnyRedis) -> str | None:
    """The URL a connect_redis() client was made from; None for any other client."""
    return _urls.get(redis) if isinstance(redis, Redis) else None


async def check_persistence(redis: AnyRedis) -> list[str]:
    """Warnings about an external Redis that could lose an acknowledged order."""
    try:
        config = await redis.config_get("append*")  # on a cluster: one node, as a sample
    except ResponseError as exc:
        return [f"cannot read Redis persistence settings ({exc}); make sure AOF is on"]
    warnings = []
    if config.get("appendonly") != "yes":
        warnings.append(
            "Redis has appendonly=no: an accepted order can be lost if Redis restarts "
            "before the persister stores it"
        )
    elif config.get("appendfsync") != "always":
        warnings.append(
            f"Redis has appendfsync={config.get('appendfsync')}: up to ~1 s of accepted "
            "orders can be lost if the Redis host loses power"
        )
    return warnings
