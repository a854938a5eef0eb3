"""API keys to principals, per-key rate limits, and the role checks every route makes."""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import asdict, dataclass
from typing import Annotated

import orjson
from fastapi import Depends, Request

from services.gateway.dashboard.sessions import (
    DASHBOARD_HEADER,
    SESSION_COOKIE,
    session_key_digest,
)
from services.gateway.metrics import RATE_LIMIT_REJECTIONS
from shared.cache import stamped, unstamped
from shared.enums import PrincipalRole
from shared.errors import NotFound, ProblemError, TooManyRequests, Unauthorized

log = logging.getLogger("finmatch.gateway.auth")
MAX_KEY_LENGTH = 200
BEARER = {"WWW-Authenticate": 'Bearer realm="finmatch"'}
# Stamped on every cached key: bumping it on a revocation makes every cached key stale at
# once (on every replica that shares the cache), so a revoked key is refused immediately.
KEYS_GENERATION = "keys:generation"
# The dashboard's session cookie stands in for a key on these paths only, and only when no
# Authorization header is sent (a key always wins).
SESSION_PATHS = ("/v1/stats/",)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Principal:
    id: int
    role: PrincipalRole
    name: str
    institution_id: int | None
    town_code: str | None
    key_digest: str

    @classmethod
    def from_registry(cls, body: dict[str, object], digest: str) -> Principal:
        return cls(
            id=int(str(body["id"])),
            role=PrincipalRole(str(body["role"])),
            name=str(body["name"]),
            institution_id=None
            if body.get("institution_id") is None
            else int(str(body["institution_id"])),
            town_code=None if body.get("town_code") is None else str(body["town_code"]),
            key_digest=digest,
        )


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise Unauthorized(
            "send your API key as 'Authorization: Bearer <key>'",
            code="missing_key",
            headers=BEARER,
        )
    if len(key) > MAX_KEY_LENGTH or not key.isascii():
        raise Unauthorized("unknown or revoked API key", code="invalid_key", headers=BEARER)
    return key


async def _resolve(request: Request, key: str) -> Principal:
    return await resolve_digest(request, key_digest(key))


async def principal_for_key(request: Request, key: str) -> Principal:
    """A key given in a request body rather than the header (the dashboard's sign-in form)."""
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isascii():
        raise Unauthorized("unknown or revoked API key", code="invalid_key")
    return await _resolve(request, key)


async def resolve_digest(request: Request, digest: str) -> Principal:
    """The principal of the key with this digest (an API key, or the key behind a session)."""
    state = request.app.state
    bootstrap: str | None = state.settings.bootstrap_admin_key
    if bootstrap and hmac.compare_digest(digest, key_digest(bootstrap)):
        body = await state.bootstrap_admin()
        return Principal.from_registry(body, digest)
    # One round trip: the keys' generation and the principal cached under this digest, which
    # is valid only if it was stored under that same generation.
    current, stored = await state.cache.get_many(KEYS_GENERATION, f"key:{digest}")
    generation = (current or b"0").decode()
    cached = unstamped(stored, generation)
    if cached is not None:
        fields = orjson.loads(cached)
        return Principal(**(fields | {"role": PrincipalRole(fields["role"])}))
    try:
        body = await state.registry.resolve_key(digest)
    except ProblemError as exc:
        if exc.status == 401:
            raise Unauthorized(
                "unknown or revoked API key", code="invalid_key", headers=BEARER
            ) from exc
        raise
    principal = Principal.from_registry(body, digest)
    await state.cache.set(
        f"key:{digest}",
        stamped(orjson.dumps(asdict(principal)), generation),
        state.settings.key_cache_seconds,
    )
    return principal


async def authenticate(request: Request) -> Principal:
    """The caller's principal (once per request), after its rate limit is checked."""
    existing: Principal | None = getattr(request.state, "principal", None)
    if existing is not None:
        return existing
    session_id = request.cookies.get(SESSION_COOKIE)
    if (
        session_id
        and "authorization" not in request.headers
        and request.url.path.startswith(SESSION_PATHS)
    ):
        principal = await _session_principal(request, session_id)
    else:
        principal = await _resolve(request, _bearer(request))
    settings = request.app.state.settings
    decision = await request.app.state.limiter.hit(
        f"key:{principal.key_digest[:32]}",
        settings.rate_limit_for(principal.role.value),
        settings.rate_limit_window_seconds,
    )
    request.state.rate_limit_headers = decision.headers()
    if not decision.allowed:
        RATE_LIMIT_REJECTIONS.labels(principal.role.value).inc()
        raise TooManyRequests(
            f"rate limit of {decision.limit} requests per "
            f"{settings.rate_limit_window_seconds} s reached; retry in {decision.reset_seconds} s",
            headers=decision.headers(),
        )
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]


class Forbidden(ProblemError):
    status, code, title = 403, "forbidden", "Forbidden"


async def _session_principal(request: Request, session_id: str) -> Principal:
    """The principal behind a dashboard session; a write must also carry the dashboard's header."""
    digest = await session_key_digest(request.app.state.cache, session_id)
    if digest is None:
        raise Unauthorized("the session has ended; sign in again", code="invalid_session")
    if request.method not in SAFE_METHODS and request.headers.get(DASHBOARD_HEADER) != "1":
        raise Forbidden(
            f"a request authenticated by the session cookie must send {DASHBOARD_HEADER}: 1",
            code="csrf_header_missing",
        )
    return await resolve_digest(request, digest)


async def keys_changed(request: Request) -> None:
    """A key was revoked: every cached key must be looked up again."""
    await request.app.state.cache.incr(KEYS_GENERATION)


def require(principal: Principal, *roles: PrincipalRole) -> None:
    """A role that may not use a function gets 404, like an out-of-scope object."""
    if principal.role not in roles:
        raise NotFound("no such resource")
