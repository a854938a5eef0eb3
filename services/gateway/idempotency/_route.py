"""`Idempotency-Key` on every POST: the first answer is stored and replayed for 24 hours.

A retry with the same key and the same request gets the stored answer (marked
``Idempotent-Replayed: true``); the same key with a different request is 422; a retry while
the first is still running is 409. Answers that say nothing final — request validation
errors and server-side failures (5xx) — are not stored, so the client can simply retry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response

from services.gateway.auth import authenticate
from services.gateway.clients.registry import forwarding_idempotency_key
from services.gateway.idempotency._store import (
    MAX_KEY_LENGTH,
    BeginState,
    IdempotencyStore,
    StoredResponse,
)
from shared.error_codes import ErrorCode
from shared.errors import Conflict, ProblemError, Unprocessable, problem_response
from shared.strict_json import StrictJSONRoute

REPLAYED = "Idempotent-Replayed"
# Hop-by-hop and per-answer headers are not part of what is replayed.
_NOT_STORED = {
    "content-length",
    "x-request-id",
    "date",
    "server",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "retry-after",
}

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def _fingerprint(request: Request, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (request.method, request.url.path, request.url.query):
        digest.update(part.encode())
        digest.update(b"\0")
    digest.update(body)
    return digest.hexdigest()


def _stored(response: Response) -> StoredResponse:
    headers = {k: v for k, v in response.headers.items() if k.lower() not in _NOT_STORED}
    return StoredResponse(
        status=response.status_code,
        headers=headers,
        body=bytes(response.body),
        media_type=response.media_type,
    )


class IdempotentRoute(StrictJSONRoute):
    """A route class: POST handlers honour Idempotency-Key; other methods are untouched.
    Its JSON body is read strictly (a repeated key is a 422), as on every route with a body."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        if "POST" not in (self.methods or set()):
            return handler

        async def idempotent_handler(request: Request) -> Response:
            key = request.headers.get("idempotency-key")
            if key is None:
                return await handler(request)
            principal = await authenticate(request)  # 401 before any complaint about the key
            if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
                raise Unprocessable(
                    f"Idempotency-Key must be 1–{MAX_KEY_LENGTH} printable ASCII characters",
                    field="Idempotency-Key",
                )
            store: IdempotencyStore = request.app.state.idempotency
            scope = str(principal.id)
            fingerprint = _fingerprint(request, await request.body())
            begin = await store.begin(scope, key, fingerprint)
            if begin.state is BeginState.REPLAY and begin.stored is not None:
                stored = begin.stored
                return Response(
                    stored.body,
                    status_code=stored.status,
                    headers=_replayed(stored.headers),
                    media_type=stored.media_type,
                )
            if begin.state is BeginState.MISMATCH:
                raise Unprocessable(
                    "this Idempotency-Key was used for a different request",
                    code=ErrorCode.IDEMPOTENCY_KEY_REUSED,
                    field="Idempotency-Key",
                )
            if begin.state is BeginState.IN_FLIGHT:
                raise Conflict(
                    "a request with this Idempotency-Key is still being processed; retry shortly",
                    code=ErrorCode.IDEMPOTENCY_IN_FLIGHT,
                    headers={"Retry-After": "1"},
                )
            try:
                # The registry enforces the key too, in the transaction of the write: Redis
                # may lose a key (an outage, a restart), and without it each replica answers
                # from its own memory.
                with forwarding_idempotency_key(key, fingerprint):
                    response = await handler(request)
            except ProblemError as exc:
                if exc.status >= 500:
                    await store.abandon(scope, key)
                    raise
                response = problem_response(
                    exc.status, exc.to_problem(request.url.path), exc.headers
                )
            except BaseException:
                await store.abandon(scope, key)
                raise
            if response.status_code >= 500 or not hasattr(response, "body"):
                await store.abandon(scope, key)
                return response
            if "no-store" in response.headers.get("cache-control", "").lower():
                # A secret shown once (an API key, a webhook secret) never rests in Redis; a
                # repeat goes to the registry, whose record refuses it (409) without the body.
                await store.abandon(scope, key)
                return response
            await store.complete(scope, key, fingerprint, _stored(response))
            return response

        return idempotent_handler


def _replayed(headers: dict[str, str]) -> dict[str, str]:
    """The stored answer's headers, marked as a replay once: a stored answer that was itself
    the registry's replay already carries the header, perhaps in another case."""
    kept = {name: value for name, value in headers.items() if name.lower() != REPLAYED.lower()}
    return kept | {REPLAYED: "true"}
