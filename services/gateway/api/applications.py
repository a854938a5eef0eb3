"""Applications with consent; institutions' leads and decisions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from services.gateway.api.proxy import forward
from services.gateway.auth import CurrentPrincipal, require
from services.gateway.idempotency import IdempotentRoute
from shared.enums import ApplicationStatus, PrincipalRole
from shared.schemas.application import (
    ApplicationCreate,
    ApplicationPublic,
    DecisionCreate,
    DecisionPublic,
)
from shared.schemas.page import Page

router = APIRouter(prefix="/v1/applications", tags=["applications"], route_class=IdempotentRoute)
IdPath = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.post(
    "",
    response_model=ApplicationPublic,
    status_code=201,
    summary="Apply with consent / 授权并申请",
    description="The firm's profile is shared with the product's institution only with "
    "consent_share_profile=true; withdrawing the application withdraws the consent. The "
    "first application to an institution grants a consent the firm's portal can list and "
    "revoke (`/v1/firms/{firm_id}/consents`); later ones join it while it stands.",
)
async def apply(body: ApplicationCreate, request: Request, principal: CurrentPrincipal) -> Response:
    require(principal, PrincipalRole.PORTAL)
    return await forward(
        request, "POST", "/v1/applications", principal, json=body.model_dump(mode="json")
    )


@router.get("", response_model=Page[ApplicationPublic])
async def list_applications(
    request: Request,
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    status: ApplicationStatus | None = None,
    firm_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    product_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> Response:
    """A portal sees its firms' applications; an institution the leads for its products."""
    params = {
        "limit": limit,
        "cursor": cursor,
        "status": status,
        "firm_id": firm_id,
        "product_id": product_id,
    }
    return await forward(request, "GET", "/v1/applications", principal, params=params)


@router.get("/{application_id}", response_model=ApplicationPublic)
async def get_application(
    application_id: IdPath, request: Request, principal: CurrentPrincipal
) -> Response:
    return await forward(request, "GET", f"/v1/applications/{application_id}", principal)


@router.post("/{application_id}/withdraw", response_model=ApplicationPublic)
async def withdraw(
    application_id: IdPath, request: Request, principal: CurrentPrincipal
) -> Response:
    return await forward(request, "POST", f"/v1/applications/{application_id}/withdraw", principal)


@router.post(
    "/{application_id}/decision",
    response_model=DecisionPublic,
    status_code=201,
    summary="Record the decision / 登记审批结果",
)
async def decide(
    application_id: IdPath, body: DecisionCreate, request: Request, principal: CurrentPrincipal
) -> Response:
    require(principal, PrincipalRole.INSTITUTION)
    return await forward(
        request,
        "POST",
        f"/v1/applications/{application_id}/decision",
        principal,
        json=body.model_dump(mode="json"),
    )


@router.get("/{application_id}/decision", response_model=DecisionPublic)
async def get_decision(
    application_id: IdPath, request: Request, principal: CurrentPrincipal
) -> Response:
    return await forward(request, "GET", f"/v1/applications/{application_id}/decision", principal)
