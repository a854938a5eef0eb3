"""The gateway's cache: Redis when configured, in-process otherwise and while Redis is down."""

from services.gateway.cache._fallback import FallbackCache, make_cache
from services.gateway.cache._local import LocalCache
from services.gateway.cache._protocol import Cache, ttl_ms
from services.gateway.cache._redis import RedisCache
from services.gateway.cache._stamps import stamped, unstamped
from services.gateway.redis_guard import Clock

__all__ = [
    "Cache",
    "Clock",
    "FallbackCache",
    "LocalCache",
    "RedisCache",
    "make_cache",
    "stamped",
    "ttl_ms",
    "unstamped",
]
