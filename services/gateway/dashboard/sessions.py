"""Dashboard sign-in sessions: a random id in an HttpOnly cookie, the key's digest in the cache.

Only the digest of the key that signed in is kept (never the key): every request resolves it
like an API key, so a revoked key ends its sessions too. The store is the gateway's cache, so
replicas that share Redis share sessions; without Redis a session lives on one replica.
"""

from __future__ import annotations

import secrets

import orjson

from services.gateway.cache import Cache

SESSION_COOKIE = "finmatch_session"
# The header the dashboard's script sends with every request it makes: a page on another site
# cannot set it without a CORS preflight that the gateway never grants, so a cookie-borne
# request that changes something must carry it (a CSRF guard on top of SameSite=Strict).
DASHBOARD_HEADER = "x-finmatch-dashboard"
SESSION_SECONDS = 8 * 3600
_PREFIX = "dashboard:session:"
_ID_BYTES = 32


async def open_session(cache: Cache, key_digest: str, principal_id: int) -> str:
    session_id = secrets.token_urlsafe(_ID_BYTES)
    record = orjson.dumps({"digest": key_digest, "principal_id": principal_id})
    await cache.set(_PREFIX + session_id, record, SESSION_SECONDS)
    return session_id


async def session_key_digest(cache: Cache, session_id: str) -> str | None:
    """The digest of the key behind a live session, or None."""
    if not _plausible(session_id):
        return None
    record = await cache.get(_PREFIX + session_id)
    if record is None:
        return None
    digest: str = orjson.loads(record)["digest"]
    return digest


async def close_session(cache: Cache, session_id: str) -> None:
    if _plausible(session_id):
        await cache.delete(_PREFIX + session_id)


def _plausible(session_id: str) -> bool:
    # token_urlsafe(32) is 43 characters of [A-Za-z0-9_-]; anything else was never issued.
    return (
        len(session_id) == 43
        and session_id.isascii()
        and all(c.isalnum() or c in "-_" for c in session_id)
    )
