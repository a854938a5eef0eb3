"""How the gateway's clients reach a downstream: the pool's limits and timeouts.

They send through aiohttp's connection pool (``shared.http_transport.PooledTransport``).
"""

from __future__ import annotations

import httpx

# Below uvicorn's 5 s keep-alive, so we drop an idle connection before the server does.
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=50, keepalive_expiry=4)


def as_timeout(value: httpx.Timeout | float) -> httpx.Timeout:
    if isinstance(value, httpx.Timeout):
        return value
    # Connecting inside our network is fast; a slow connect means the host is gone.
    return httpx.Timeout(value, connect=min(value, 3.0))
