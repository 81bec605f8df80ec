"""One Redis connection pool per process for Django's cache (sessions, rate limits, missed-email keys).

Django keeps a cache object per thread and per async context (asgiref's Local), and each brings its own
connection pool; under Channels every socket is a context of its own, so every new socket opened a new Redis
connection, which redis-py 8 spends a millisecond and a half setting up (it reads its own package metadata for the
client name). A connect storm of 2,000 sockets paid that 2,000 times. This pool class hands out one shared pool
per URL and options instead (redis-py's pools are thread-safe and start afresh after a fork).
"""

from __future__ import annotations

import os
import threading
from typing import Any

import redis


class SharedConnectionPool(redis.ConnectionPool):
    _shared: dict[tuple[str, str, int], redis.ConnectionPool] = {}
    _lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> redis.ConnectionPool:  # type: ignore[override]
        key = (url, repr(sorted(kwargs.items())), os.getpid())
        with cls._lock:
            pool = cls._shared.get(key)
            if pool is None:
                pool = cls._shared[key] = super().from_url(url, **kwargs)
            return pool
