"""Forwarding a validated public request to the registry, and its answer back unchanged."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from sqlmodel import SQLModel

from services.gateway.auth import Principal

# Headers of the registry's answer that mean something to the public client (the registry
# replays a keyed write's answer when the gateway's own store no longer held the key).
PASSED_HEADERS = ("etag", "location", "idempotent-replayed")


def clean(params: dict[str, Any]) -> dict[str, Any]:
    """Query parameters that were given (None means "not given")."""
    return {k: (v.value if hasattr(v, "value") else v) for k, v in params.items() if v is not None}


async def forward(
    request: Request,
    method: str,
    path: str,
    principal: Principal,
    *,
    json: Any = None,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    kwargs: dict[str, Any] = {}
    if json is not None:
        kwargs["json"] = json
    if params:
        kwargs["params"] = clean(params)
    if headers:
        kwargs["headers"] = headers
    answer = await request.app.state.registry.request(
        method, path, principal_id=principal.id, **kwargs
    )
    passed = {k: v for k in PASSED_HEADERS if (v := answer.headers.get(k)) is not None}
    return Response(
        answer.content,
        status_code=answer.status_code,
        headers=passed,
        media_type=answer.headers.get("content-type"),
    )


async def forward_update(
    request: Request, path: str, principal: Principal, body: SQLModel, if_match: str | None
) -> Response:
    """A partial update (only the fields given), guarded by the ETag the client read."""
    return await forward(
        request,
        "PATCH",
        path,
        principal,
        json=body.model_dump(mode="json", exclude_unset=True),
        headers=None if if_match is None else {"If-Match": if_match},
    )
