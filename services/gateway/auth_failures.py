"""Failed authentication: counted per client address and per key prefix, throttled, logged.

A key that fails (unknown, revoked, expired, malformed) is a security event: one structured
log line (logger ``finmatch.security``: the client address, the key's prefix, never the key,
and the reason) and a count in ``finmatch_gateway_auth_failures_total``. The failures are
counted in the gateway's rate limiter (fixed windows, in Redis for all replicas, in-process
without it). Once a client address or a key prefix has had its allowance of failures in the
window, further attempts that would need a look-up at the registry answer 429 with
Retry-After, without the look-up.

Who is locked out, and why it stays narrow:

- Only unknown keys count against the address: revoked and expired keys are real keys (a
  client that was not told of a rotation, say), whose failures lock only their own prefix, so
  they cannot lock their neighbours' new keys out.
- A key the gateway already holds as valid (resolved within ``FINMATCH_KEY_CACHE_SECONDS``)
  is never throttled: someone else's failures from the same address cannot stop it. A valid
  key not held yet waits, at worst, until the window ends.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

from fastapi import Request

from services.gateway.metrics import AUTH_FAILURES, AuthFailure
from services.gateway.ratelimit import Bucket, RateDecision, RateLimiter
from shared.error_codes import ErrorCode
from shared.errors import TooManyRequests

security_log = logging.getLogger("finmatch.security")
# Keys are "fm_<role>_<random>": 12 characters are the role and 4 random ones, as the registry
# stores and lists them. A shorter key shows at most half of itself.
PREFIX_LENGTH: Final = 12


@dataclass(frozen=True, slots=True)
class Attempt:
    """Who tried a key: the client address (as the trusted proxy reports it) and the key's
    prefix ("" for a key not fit to be shown or counted)."""

    address: str
    prefix: str

    @classmethod
    def of(cls, request: Request, key: str | None) -> Attempt:
        address = request.client.host if request.client else "unknown"
        if key is None or not key.isascii() or not key.isprintable():
            return cls(address, "")
        return cls(address, key[: min(PREFIX_LENGTH, len(key) // 2)])


def _buckets(request: Request, attempt: Attempt, *, by_address: bool = True) -> list[Bucket]:
    settings = request.app.state.settings
    window = settings.auth_failure_window_seconds
    buckets: list[Bucket] = []
    if by_address:
        buckets.append(
            (f"authfail:addr:{attempt.address}", settings.auth_failures_per_address, window)
        )
    if attempt.prefix:
        buckets.append(
            (f"authfail:prefix:{attempt.prefix}", settings.auth_failures_per_key_prefix, window)
        )
    return buckets


async def refuse_if_throttled(request: Request, attempt: Attempt) -> None:
    """429 if the address or the prefix has used up its failures in this window."""
    limiter: RateLimiter = request.app.state.limiter
    decisions = await limiter.peek(_buckets(request, attempt))
    _refuse_over_limit(request, attempt, decisions)


async def count_failure(request: Request, attempt: Attempt, reason: AuthFailure) -> None:
    """Log and count a failed authentication; 429 instead of the caller's 401 if this failure
    went past a limit."""
    record(attempt, reason)
    limiter: RateLimiter = request.app.state.limiter
    # Revoked and expired keys exist: their failures are no guessing from the address.
    by_address = reason in ("unknown_key", "malformed_key")
    decisions = [
        await limiter.hit(bucket, limit, window)
        for bucket, limit, window in _buckets(request, attempt, by_address=by_address)
    ]
    _refuse_over_limit(request, attempt, decisions)


def record(attempt: Attempt, reason: AuthFailure) -> None:
    AUTH_FAILURES.labels(reason).inc()
    security_log.warning(
        "authentication failed: %s from %s, key prefix %r",
        reason,
        attempt.address,
        attempt.prefix,
        extra={
            "event": "auth_failure",
            "reason": reason,
            "client_address": attempt.address,
            "key_prefix": attempt.prefix,
        },
    )


def _refuse_over_limit(request: Request, attempt: Attempt, decisions: list[RateDecision]) -> None:
    refused = [d for d in decisions if not d.allowed]
    if not refused:
        return
    record(attempt, "throttled")
    retry = max(d.reset_seconds for d in refused)
    window = request.app.state.settings.auth_failure_window_seconds
    raise TooManyRequests(
        f"too many failed authentications from this address or with this key in {window} s; "
        f"retry in {retry} s",
        code=ErrorCode.AUTH_THROTTLED,
        headers={"Retry-After": str(retry)},
    )
