"""Admin: institutions, principals and keys; train, list, promote and roll back models."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from services.gateway.api.proxy import forward
from services.gateway.auth import CurrentPrincipal, keys_changed, require
from services.gateway.idempotency import IdempotentRoute
from services.gateway.model_version import refresh_model_version
from shared.enums import PrincipalRole
from shared.schemas.access import (
    InstitutionCreate,
    InstitutionPublic,
    KeyCreate,
    KeyCreated,
    KeyPublic,
    PrincipalCreate,
    PrincipalPublic,
)
from shared.schemas.matching import TrainRequest
from shared.schemas.page import Page

router = APIRouter(prefix="/v1/admin", tags=["admin"], route_class=IdempotentRoute)
IdPath = Annotated[int, Path(ge=1, le=2**63 - 1)]
Version = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]


@router.post("/institutions", response_model=InstitutionPublic, status_code=201)
async def create_institution(
    body: InstitutionCreate, request: Request, principal: CurrentPrincipal
) -> Response:
    require(principal, PrincipalRole.ADMIN)
    return await forward(
        request, "POST", "/v1/institutions", principal, json=body.model_dump(mode="json")
    )


@router.get("/institutions")
async def list_institutions(request: Request, principal: CurrentPrincipal) -> Response:
    require(principal, PrincipalRole.ADMIN)
    return await forward(request, "GET", "/v1/institutions", principal, params={"limit": 500})


@router.post("/principals", response_model=PrincipalPublic, status_code=201)
async def create_principal(
    body: PrincipalCreate, request: Request, principal: CurrentPrincipal
) -> Response:
    """A portal, an institution's user, an official (a town, or the city) or an admin."""
    require(principal, PrincipalRole.ADMIN)
    return await forward(
        request, "POST", "/v1/principals", principal, json=body.model_dump(mode="json")
    )


@router.post(
    "/keys",
    response_model=KeyCreated,
    status_code=201,
    summary="Issue an API key (shown once) / 签发密钥（仅显示一次）",
)
async def create_key(body: KeyCreate, request: Request, principal: CurrentPrincipal) -> Response:
    """A new key for a principal, optionally with `expires_at` (in the future, with its UTC
    offset): past it the key answers 401 `key_expired`.

    **Rotation**: issue a new key for the same principal, hand it over, then revoke the old
    one; until it is revoked (or expires) the old key keeps working, so the client can switch
    without a gap. `GET /v1/admin/keys?principal_id=` shows each key's `last_used_at`, to see
    when the old one has fallen out of use.
    """
    require(principal, PrincipalRole.ADMIN)
    return await forward(request, "POST", "/v1/keys", principal, json=body.model_dump(mode="json"))


@router.get("/keys", response_model=Page[KeyPublic], summary="List API keys / 密钥列表")
async def list_keys(
    request: Request,
    principal: CurrentPrincipal,
    principal_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """Every key, or one principal's: prefix, label, expiry, last use (updated at most once a
    minute, so it may lag the real last use by up to about a minute and a half), revocation.
    Never the key itself."""
    require(principal, PrincipalRole.ADMIN)
    params = {"principal_id": principal_id, "limit": limit, "cursor": cursor}
    return await forward(request, "GET", "/v1/keys", principal, params=params)


@router.post("/keys/{key_id}/revoke", response_model=KeyPublic)
async def revoke_key(key_id: IdPath, request: Request, principal: CurrentPrincipal) -> Response:
    """The key stops working at once on every replica sharing the Redis cache (without Redis,
    other replicas stop within FINMATCH_KEY_CACHE_SECONDS, 30 s by default)."""
    require(principal, PrincipalRole.ADMIN)
    answer = await forward(request, "POST", f"/v1/keys/{key_id}/revoke", principal)
    await keys_changed(request)
    return answer


@router.get("/models", summary="Model versions / 模型版本")
async def list_models(request: Request, principal: CurrentPrincipal) -> list[dict[str, Any]]:
    require(principal, PrincipalRole.ADMIN)
    models: list[dict[str, Any]] = await request.app.state.matching.list_models()
    return models


@router.post("/models/train", summary="Train a challenger now / 立即训练")
async def train(body: TrainRequest, request: Request, principal: CurrentPrincipal) -> JSONResponse:
    """Promoted only if it beats the champion on the same holdout (and auto_promote is on)."""
    require(principal, PrincipalRole.ADMIN)
    outcome = await request.app.state.matching.train(body.auto_promote, principal.id)
    await refresh_model_version(request.app)
    return JSONResponse(outcome)


@router.post("/models/{version}/promote")
async def promote(version: Version, request: Request, principal: CurrentPrincipal) -> JSONResponse:
    require(principal, PrincipalRole.ADMIN)
    promoted = await request.app.state.matching.promote(version, principal.id)
    await refresh_model_version(request.app)
    return JSONResponse(promoted)


@router.post("/models/rollback")
async def rollback(request: Request, principal: CurrentPrincipal) -> JSONResponse:
    require(principal, PrincipalRole.ADMIN)
    restored = await request.app.state.matching.rollback(principal.id)
    await refresh_model_version(request.app)
    return JSONResponse(restored)
