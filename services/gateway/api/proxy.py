"""Forwarding a validated public request to the registry, and its answer back unchanged."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Header, Request, Response
from sqlmodel import SQLModel

from services.gateway.auth import Principal
from shared.errors import problem_responses

# Headers of the registry's answer that mean something to the public client (the registry
# replays a keyed write's answer when the gateway's own store no longer held the key; an
# answer holding a secret, a new API key or webhook secret, says no-store).
PASSED_HEADERS = ("etag", "location", "idempotent-replayed", "cache-control")

# One rule for every PATCH (firms and products): optimistic concurrency, never last-write-wins
# by accident. The registry enforces it; these document it.
IF_MATCH_RULE = (
    'Required. The ETag you read (GET, POST or PATCH answer), e.g. `"3"`: the update applies '
    "only to that version, else 412 `stale_version` (read again, merge, resend). `*` applies it "
    "to whatever version is current (an explicit last-write-wins). Without If-Match: 428."
)
# What the registry reads as an If-Match (services/registry/api/firms.py parse_if_match).
IF_MATCH_PATTERN = r'^(\*|(W/)?"[0-9]{1,18}")$'
# Optional in Python so that its absence reaches the registry, which answers 428 (FastAPI's own
# check would answer 422); the OpenAPI marks it required (services/gateway/openapi).
IfMatch = Annotated[str | None, Header(max_length=40, description=IF_MATCH_RULE)]
ETAG_HEADER = {
    "ETag": {
        "description": "the version now stored; send it as If-Match to update",
        "schema": {"type": "string"},
    }
}
UPDATE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "updated (an empty body changes nothing)", "headers": ETAG_HEADER},
    **problem_responses(412, 428),
}


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
