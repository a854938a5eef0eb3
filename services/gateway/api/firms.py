"""Firms: portals submit, read, update and erase their own; NDJSON bulk import."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated

import orjson
from fastapi import APIRouter, Path, Query, Request, Response

from services.gateway.api.held import forget_firm, hold_firm, stale_firm
from services.gateway.api.proxy import (
    ETAG_HEADER,
    UPDATE_RESPONSES,
    IfMatch,
    forward,
    forward_update,
)
from services.gateway.auth import CurrentPrincipal, Principal, require
from services.gateway.idempotency import IdempotentRoute
from shared.enums import PrincipalRole
from shared.errors import ProblemError
from shared.firm_entries import WRITER_KEY, entry_key
from shared.schemas.firm import FirmCreate, FirmPublic, FirmUpdate
from shared.schemas.page import Cursor, Page
from shared.types import SafeStr

_ANSWER_EXAMPLE = (
    '{"line":1,"status":"created","id":101}\n'
    '{"line":2,"status":"updated","id":57}\n'
    '{"summary":{"lines":2,"created":1,"updated":1,"invalid":0,"not_written":0},"batches":'
    '{"committed":1,"rejected":0,"already_committed":0,"conflict":0},"import_id":"2025-06",'
    '"batch_size":5000}\n'
)
router = APIRouter(prefix="/v1/firms", tags=["firms"], route_class=IdempotentRoute)
IdPath = Annotated[int, Path(ge=1, le=2**63 - 1)]


async def firms_changed(
    request: Request, principal: Principal, firm_ids: Callable[[], Iterable[int]]
) -> None:
    """Cached matches of this portal's firms are stale from now on.

    The registry has written the firms' entries in Redis (shared/firm_entries.py). If Redis is
    down for this gateway it may have failed to: the entries are deleted, which the cache does
    when Redis is back, before it reads Redis again (FallbackCache replays them)."""
    cache = request.app.state.cache
    await cache.incr(f"firms:generation:{principal.id}")
    if cache.redis_key(WRITER_KEY) is None:
        await cache.delete(*(entry_key(firm_id) for firm_id in firm_ids()))


def _answered_id(answer: Response) -> list[int]:
    """The id of the firm in a firm answer (none if it has no body)."""
    try:
        return [int(orjson.loads(answer.body)["id"])]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return []


def _imported_ids(answer: bytes) -> list[int]:
    """The ids of the firms an NDJSON import answer says were written."""
    ids = []
    for line in answer.splitlines():
        try:
            result = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(result, dict) and isinstance(result.get("id"), int):
            ids.append(result["id"])
    return ids


@router.post(
    "",
    response_model=FirmPublic,
    status_code=201,
    summary="Create or update a firm by credit code / 按统一社会信用代码新增或更新企业",
    responses={
        200: {
            "model": FirmPublic,
            "description": "updated an existing firm of this portal",
            "headers": ETAG_HEADER,
        },
        201: {"description": "created", "headers": ETAG_HEADER},
    },
)
async def upsert_firm(body: FirmCreate, request: Request, principal: CurrentPrincipal) -> Response:
    """201 when new, 200 when this portal already registered the code; ETag is the version."""
    require(principal, PrincipalRole.PORTAL)
    answer = await forward(
        request, "POST", "/v1/firms", principal, json=body.model_dump(mode="json")
    )
    await firms_changed(request, principal, lambda: _answered_id(answer))
    await hold_firm(request.app.state, principal, answer.body, answer.headers.get("etag"))
    return answer


@router.get("", response_model=Page[FirmPublic], summary="This portal's firms / 本门户企业列表")
async def list_firms(
    request: Request,
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Cursor = None,
    town_code: Annotated[SafeStr | None, Query(max_length=9)] = None,
    credit_code: Annotated[SafeStr | None, Query(max_length=18)] = None,
) -> Response:
    require(principal, PrincipalRole.PORTAL, PrincipalRole.ADMIN)
    params = {"limit": limit, "cursor": cursor, "town_code": town_code, "credit_code": credit_code}
    return await forward(request, "GET", "/v1/firms", principal, params=params)


@router.post(
    "/bulk",
    response_class=Response,
    summary="NDJSON bulk import / 批量导入",
    responses={
        200: {
            "description": "one result per line (created, updated, invalid with its errors, "
            "not_written, already_committed, conflict), then a summary line",
            "content": {
                "application/x-ndjson": {"schema": {"type": "string"}, "example": _ANSWER_EXAMPLE}
            },
        }
    },
    # The body's schema (an array of FirmCreate, one line each) is written by
    # services/gateway/openapi/_ndjson.py.
    openapi_extra={"requestBody": {"required": True, "content": {"application/x-ndjson": {}}}},
)
async def bulk_import(
    request: Request,
    principal: CurrentPrincipal,
    import_id: Annotated[str, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")],
    batch_size: Annotated[int | None, Query(ge=1, le=20_000)] = None,
) -> Response:
    """One firm per line; each batch commits whole; resend with the same import_id to resume."""
    require(principal, PrincipalRole.PORTAL)
    params = {"import_id": import_id}
    if batch_size is not None:
        params["batch_size"] = str(batch_size)
    answer = await request.app.state.registry.bulk_import(principal.id, params, request.stream())
    await firms_changed(request, principal, lambda: _imported_ids(answer.content))
    return Response(
        answer.content, status_code=answer.status_code, media_type="application/x-ndjson"
    )


@router.get("/{firm_id:id}", response_model=FirmPublic, responses={200: {"headers": ETAG_HEADER}})
async def get_firm(firm_id: IdPath, request: Request, principal: CurrentPrincipal) -> Response:
    """The owner portal; an institution with a live application from this firm whose
    consent the firm has not revoked; an admin.

    While the registry cannot answer (503, e.g. its database is down), the owner portal gets
    the last copy it read, marked stale: an `Age` header and `X-Finmatch-Stale` naming the
    reason."""
    state = request.app.state
    try:
        answer = await forward(request, "GET", f"/v1/firms/{firm_id}", principal)
    except ProblemError as exc:
        if exc.status == 404:  # erased, or not this principal's: never served from a copy
            await forget_firm(state, principal, firm_id)
        if exc.status < 500:
            raise
        return await stale_firm(state, principal, firm_id, exc)
    await hold_firm(state, principal, answer.body, answer.headers.get("etag"))
    return answer


@router.patch("/{firm_id:id}", response_model=FirmPublic, responses=UPDATE_RESPONSES)
async def update_firm(
    firm_id: IdPath,
    body: FirmUpdate,
    request: Request,
    principal: CurrentPrincipal,
    if_match: IfMatch = None,
) -> Response:
    """Only the fields given change. If-Match is required (the ETag you read, or `*`):
    428 without it, 412 when the firm changed since you read it."""
    answer = await forward_update(request, f"/v1/firms/{firm_id}", principal, body, if_match)
    await firms_changed(request, principal, lambda: [firm_id])
    await hold_firm(request.app.state, principal, answer.body, answer.headers.get("etag"))
    return answer


@router.delete("/{firm_id:id}", status_code=204, response_class=Response)
async def erase_firm(firm_id: IdPath, request: Request, principal: CurrentPrincipal) -> Response:
    """Erase the profile; applications keep an anonymous snapshot. Each institution that
    received the profile under a standing consent is sent `consent.revoked` (reason
    `erased`) to delete its copy."""
    answer = await forward(request, "DELETE", f"/v1/firms/{firm_id}", principal)
    await firms_changed(request, principal, lambda: [firm_id])
    await forget_firm(request.app.state, principal, firm_id)
    return answer
