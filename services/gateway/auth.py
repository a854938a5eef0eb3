"""API keys to principals, per-key rate limits, and the role checks every route makes."""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Annotated

import orjson
from fastapi import Depends, Request

from services.gateway.auth_failures import Attempt, count_failure, refuse_if_throttled
from services.gateway.cache import Clock, stamped, unstamped
from services.gateway.dashboard.sessions import (
    DASHBOARD_HEADER,
    SESSION_COOKIE,
    session_key_digest,
)
from services.gateway.metrics import RATE_LIMIT_REJECTIONS, AuthFailure
from services.gateway.ratelimit import RateDecision, RateLimiter
from shared.enums import PrincipalRole
from shared.error_codes import ErrorCode
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
    key_id: int | None = None
    # Wall-clock seconds: when the key expires (None: never), and when the registry vouched
    # for it (a principal vouched for at 0 is never held: it is looked up again).
    expires_at: float | None = None
    resolved_at: float = 0.0

    @classmethod
    def from_registry(
        cls, body: dict[str, object], digest: str, *, resolved_at: float = 0.0
    ) -> Principal:
        key_id, expires_at = body.get("key_id"), body.get("key_expires_at")
        return cls(
            id=int(str(body["id"])),
            role=PrincipalRole(str(body["role"])),
            name=str(body["name"]),
            institution_id=None
            if body.get("institution_id") is None
            else int(str(body["institution_id"])),
            town_code=None if body.get("town_code") is None else str(body["town_code"]),
            key_digest=digest,
            key_id=None if key_id is None else int(str(key_id)),
            expires_at=None
            if expires_at is None
            else datetime.fromisoformat(str(expires_at)).timestamp(),
            resolved_at=resolved_at,
        )


class KnownKeys:
    """Principals this process has resolved, each with the keys generation it was valid under.

    Not a cache that can serve a stale key: an entry is used only together with the current
    generation, which the rate-limit hit reads from Redis in the same round trip, so a
    revocation (which bumps the generation) takes effect on the next request on every replica,
    as with the shared cache. It saves the shared cache's round trip on every request of a key.
    Bounded (least recently used first out) and expiring like the shared entries.
    """

    def __init__(
        self, ttl_seconds: float, max_entries: int = 10_000, *, clock: Clock = time.monotonic
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[Principal, str, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, digest: str) -> tuple[Principal, str] | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        principal, generation, expires_at = entry
        if self._clock() >= expires_at:
            del self._entries[digest]
            return None
        self._entries.move_to_end(digest)
        return principal, generation

    def remember(self, principal: Principal, generation: str) -> None:
        digest = principal.key_digest
        self._entries[digest] = (principal, generation, self._clock() + self.ttl_seconds)
        self._entries.move_to_end(digest)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise Unauthorized(
            "send your API key as 'Authorization: Bearer <key>'",
            code=ErrorCode.MISSING_KEY,
            headers=BEARER,
        )
    return key


def _malformed(key: str) -> bool:
    return len(key) > MAX_KEY_LENGTH or not key.isascii()


async def _resolve(request: Request, key: str) -> Principal:
    return await resolve_digest(request, key_digest(key))


async def principal_for_key(request: Request, key: str) -> Principal:
    """A key given in a request body rather than the header (the dashboard's sign-in form,
    which limits its attempts itself)."""
    key = key.strip()
    if not key or _malformed(key):
        raise Unauthorized("unknown or revoked API key", code=ErrorCode.INVALID_KEY)
    return await _resolve(request, key)


async def resolve_digest(
    request: Request, digest: str, attempt: Attempt | None = None
) -> Principal:
    """The principal of the key with this digest (an API key, or the key behind a session).

    With ``attempt`` (a key a client sent), a failure is counted and logged, and a key that
    needs the registry is refused with 429 while its address or prefix is throttled.
    """
    state = request.app.state
    bootstrap: str | None = state.settings.bootstrap_admin_key
    if bootstrap and hmac.compare_digest(digest, key_digest(bootstrap)):
        body = await state.bootstrap_admin()
        return Principal.from_registry(body, digest, resolved_at=_now(request))
    # One round trip: the keys' generation and the principal cached under this digest, which
    # is valid only if it was stored under that same generation.
    current, stored = await state.cache.get_many(KEYS_GENERATION, _cache_key(digest))
    # Asked after the read: one that failed over to the in-process cache marked Redis down.
    in_redis = state.cache.redis_key(KEYS_GENERATION) is not None
    generation = _generation(current)
    cached = unstamped(stored, generation)
    if cached is not None:
        fields = orjson.loads(cached)
        principal = Principal(**(fields | {"role": PrincipalRole(fields["role"])}))
        if _fresh(request, principal):
            await _refuse_if_expired(request, principal, attempt)
            if in_redis:  # a generation read from the in-process fallback is not the shared one
                state.known_keys.remember(principal, generation)
            return principal
    if attempt is not None:
        await refuse_if_throttled(request, attempt)
    try:
        body = await state.registry.resolve_key(digest)
    except ProblemError as exc:
        if exc.status == 401:
            reason = _REGISTRY_REFUSALS.get(exc.code, "unknown_key")
            if attempt is not None:
                await count_failure(request, attempt, reason)
            raise _refusal(reason) from exc
        raise
    principal = Principal.from_registry(body, digest, resolved_at=_now(request))
    await _refuse_if_expired(request, principal, attempt)
    await state.cache.set(
        _cache_key(digest),
        stamped(orjson.dumps(asdict(principal)), generation),
        state.settings.key_cache_seconds,
    )
    if in_redis:
        state.known_keys.remember(principal, generation)
    return principal


# The registry's reasons for a 401; revoked keys answer like unknown ones (invalid_key).
_REGISTRY_REFUSALS: dict[str, AuthFailure] = {
    "key_revoked": "revoked_key",
    "key_expired": "expired_key",
}


def _refusal(reason: AuthFailure) -> Unauthorized:
    if reason == "expired_key":
        return Unauthorized(
            "the API key has expired; use its replacement",
            code=ErrorCode.KEY_EXPIRED,
            headers=BEARER,
        )
    return Unauthorized("unknown or revoked API key", code=ErrorCode.INVALID_KEY, headers=BEARER)


def _now(request: Request) -> float:
    clock: Clock = request.app.state.wall_clock
    return clock()


def _fresh(request: Request, principal: Principal) -> bool:
    """Whether a held resolution may still be used: never longer than the key cache time after
    the registry gave it, wherever it is held (the shared cache, the in-process fallback,
    KnownKeys), so a revocation this replica did not hear of holds within that bound."""
    age = _now(request) - principal.resolved_at
    held_for: float = request.app.state.settings.key_cache_seconds
    return 0 <= age < held_for


async def _refuse_if_expired(
    request: Request, principal: Principal, attempt: Attempt | None
) -> None:
    """A held key past its expiry is refused at once, however long it might still be held."""
    if principal.expires_at is None or _now(request) < principal.expires_at:
        return
    if attempt is not None:
        await count_failure(request, attempt, "expired_key")
    raise _refusal("expired_key")


def _cache_key(digest: str) -> str:
    # "v2": entries with the key's expiry and resolution time. Gateways of the earlier format,
    # which cannot read these, keep their own entries while a rollout runs.
    return f"key:v2:{digest}"


def _generation(value: bytes | None) -> str:
    return (value or b"0").decode()


async def _hit(request: Request, principal: Principal, read: str | None = None) -> RateDecision:
    """Count the request against the key's rate limit (reading ``read`` in the same trip)."""
    settings = request.app.state.settings
    limiter: RateLimiter = request.app.state.limiter
    return await limiter.hit(
        f"key:{principal.key_digest[:32]}",
        settings.rate_limit_for(principal.role.value),
        settings.rate_limit_window_seconds,
        read=read,
    )


async def _key_principal(request: Request, key: str) -> tuple[Principal, RateDecision]:
    """The principal of an API key and its rate-limit decision, in one Redis round trip for a
    key this process has seen: the hit reads the keys generation, which must still be the one
    the principal was resolved under. Otherwise (a new key, a revocation since, Redis down)
    the key is resolved as usual, and counted after it is known, so unknown keys make no
    buckets (their failures are counted apart: see auth_failures)."""
    state = request.app.state
    attempt = Attempt.of(request, key)
    if _malformed(key):
        await count_failure(request, attempt, "malformed_key")
        raise _refusal("unknown_key")
    digest = key_digest(key)
    known = state.known_keys.get(digest)
    generation_key = state.cache.redis_key(KEYS_GENERATION)
    if known is not None and generation_key is not None and _fresh(request, known[0]):
        principal, generation = known
        decision = await _hit(request, principal, read=generation_key)
        if decision.read_ok and _generation(decision.read) == generation:
            await _refuse_if_expired(request, principal, attempt)
            return principal, decision
        # Counted already; a revoked key answers 401 from here. Principals never change, so
        # the decision (made with this principal's role) stands for a key still valid.
        return await resolve_digest(request, digest, attempt), decision
    principal = await resolve_digest(request, digest, attempt)
    return principal, await _hit(request, principal)


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
        decision = await _hit(request, principal)
    else:
        principal, decision = await _key_principal(request, _bearer(request))
    settings = request.app.state.settings
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
    status, code, title = 403, ErrorCode.FORBIDDEN, "Forbidden"


async def _session_principal(request: Request, session_id: str) -> Principal:
    """The principal behind a dashboard session; a write must also carry the dashboard's header."""
    digest = await session_key_digest(request.app.state.cache, session_id)
    if digest is None:
        raise Unauthorized("the session has ended; sign in again", code=ErrorCode.INVALID_SESSION)
    if request.method not in SAFE_METHODS and request.headers.get(DASHBOARD_HEADER) != "1":
        raise Forbidden(
            f"a request authenticated by the session cookie must send {DASHBOARD_HEADER}: 1",
            code=ErrorCode.CSRF_HEADER_MISSING,
        )
    return await resolve_digest(request, digest)


async def keys_changed(request: Request) -> None:
    """A key was revoked: every cached key must be looked up again."""
    await request.app.state.cache.incr(KEYS_GENERATION)


def require(principal: Principal, *roles: PrincipalRole) -> None:
    """A role that may not use a function gets 404, like an out-of-scope object."""
    if principal.role not in roles:
        raise NotFound("no such resource")
