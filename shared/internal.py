"""Service-to-service authentication: every internal route needs the shared internal token."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Header, Request

from shared.error_codes import ErrorCode
from shared.errors import Unauthorized


async def require_internal_token(  # async: a check this small must not cost a thread hop
    request: Request,
    x_internal_token: Annotated[str | None, Header()] = None,
) -> None:
    expected: str = request.app.state.settings.internal_token
    if not x_internal_token or not hmac.compare_digest(x_internal_token, expected):
        raise Unauthorized(
            "missing or wrong X-Internal-Token", code=ErrorCode.INTERNAL_TOKEN_REQUIRED
        )


# A keyed public write, as the gateway forwards it to the registry, which enforces the key in
# its database (services/registry/idempotency.py): the client's Idempotency-Key, scoped there by
# X-Principal-Id, and the SHA-256 of the public request, so a reuse for another request is seen.
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
IDEMPOTENCY_FINGERPRINT_HEADER = "X-Idempotency-Fingerprint"
IDEMPOTENT_REPLAYED_HEADER = "Idempotent-Replayed"
