"""`Idempotency-Key` on every POST: the route class that honours it, and the store behind it."""

from services.gateway.idempotency._route import IdempotentRoute
from services.gateway.idempotency._store import (
    Begin,
    BeginState,
    IdempotencyStore,
    StoredResponse,
)

__all__ = [
    "Begin",
    "BeginState",
    "IdempotencyStore",
    "IdempotentRoute",
    "StoredResponse",
]
