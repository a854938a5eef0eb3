"""Applications with consent; institutions' leads and decisions."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from services.gateway.api.proxy import forward
from services.gateway.auth import CurrentPrincipal, Principal, require
from services.gateway.catalogue import Catalogue
from services.gateway.idempotency import IdempotentRoute
from services.gateway.metrics import EligibilityResult, eligibility_checked
from shared.enums import ApplicationStatus, PrincipalRole
from shared.errors import PROBLEM_JSON, ProblemError, problem_responses
from shared.schemas.application import (
    UNMET_EXAMPLE,
    ApplicationCreate,
    ApplicationPublic,
    DecisionCreate,
    DecisionPublic,
)
from shared.schemas.firm import effective_features, verified_fields
from shared.schemas.matching import Lang
from shared.schemas.page import Cursor, Page

router = APIRouter(prefix="/v1/applications", tags=["applications"], route_class=IdempotentRoute)
IdPath = Annotated[int, Path(ge=1, le=2**63 - 1)]
logger = logging.getLogger("finmatch.gateway")

# What a strict refusal answers: the generated example of a code has no `unmet`.
NOT_ELIGIBLE_EXAMPLE = {
    "type": "https://finmatch.example/problems/not_eligible",
    "title": "Invalid input",
    "status": 422,
    "code": "not_eligible",
    "detail": "the firm is not eligible for product 7: min_export_usd",
    "errors": [
        {"field": "product_id", "message": "the firm is not eligible for product 7: min_export_usd"}
    ],
    "instance": "/v1/applications",
    "unmet": [UNMET_EXAMPLE],
}
_REFUSED = problem_responses(422)[422] | {
    "description": "invalid input, or (`strict: true`) not eligible: `unmet` lists the "
    "criteria the firm fails",
    "content": {
        PROBLEM_JSON: {
            "schema": {"$ref": "#/components/schemas/ProblemDetails"},
            "example": NOT_ELIGIBLE_EXAMPLE,
        }
    },
}


@router.post(
    "",
    response_model=ApplicationPublic,
    status_code=201,
    summary="Apply with consent / 授权并申请",
    description="The firm's profile is shared with the product's institution only with "
    "consent_share_profile=true; withdrawing the application withdraws the consent. The "
    "first application to an institution grants a consent the firm's portal can list and "
    "revoke (`/v1/firms/{firm_id}/consents`); later ones join it while it stands. "
    "Matching's eligibility rules are evaluated at submission and stored with the application "
    "(`eligibility`: eligible, ineligible with the unmet criteria, or unknown when matching "
    "could not be asked); the institution sees it in its leads and in application.submitted. "
    "With `strict: true` an ineligible application is refused: 422 `not_eligible` listing "
    "`unmet`. 提交时按匹配规则校验准入条件；strict 模式下不符合条件的申请被拒绝。",
    responses={**problem_responses(404, 409), 422: _REFUSED},
)
async def apply(
    body: ApplicationCreate, request: Request, principal: CurrentPrincipal, lang: Lang = "zh"
) -> Response:
    require(principal, PrincipalRole.PORTAL)
    payload = body.model_dump(mode="json")
    payload["eligibility"] = await _eligibility(request, principal, body, lang)
    return await forward(request, "POST", "/v1/applications", principal, json=payload)


# What matching's rules read of a firm: the firm as the registry answered it, without identity.


async def _eligibility(
    request: Request, principal: Principal, body: ApplicationCreate, lang: str
) -> dict[str, Any] | None:
    """Matching's verdict on the firm and product, for the registry to store: None when the
    firm or product is not the caller's to apply with (the registry's write then says why),
    ``unknown`` when the registry or matching cannot answer now (never a reason to refuse)."""
    state = request.app.state
    unknown: dict[str, Any] = {"status": "unknown", "unmet": []}
    try:
        firm, _etag = await state.registry.get_firm(principal.id, body.firm_id)
        catalogue: Catalogue = await state.catalogue.get()
    except ProblemError as exc:
        return None if exc.status < 500 else unknown
    product = catalogue.by_id.get(body.product_id)
    if firm.get("owner_principal_id") != principal.id or product is None:
        return None
    features = effective_features(firm)
    try:
        answer = await state.matching.eligibility(
            {"firm": features, "verified": verified_fields(firm), "product": product, "lang": lang}
        )
    except ProblemError:
        logger.warning("eligibility of firm %s for product %s unknown", firm["id"], product["id"])
        eligibility_checked("unknown")
        return unknown
    status: EligibilityResult = "eligible" if answer["eligible"] else "ineligible"
    eligibility_checked(status)
    return {"status": status, "unmet": answer["unmet"]}


@router.get("", response_model=Page[ApplicationPublic])
async def list_applications(
    request: Request,
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Cursor = None,
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


@router.get("/{application_id:id}", response_model=ApplicationPublic)
async def get_application(
    application_id: IdPath, request: Request, principal: CurrentPrincipal
) -> Response:
    return await forward(request, "GET", f"/v1/applications/{application_id}", principal)


@router.post("/{application_id:id}/withdraw", response_model=ApplicationPublic)
async def withdraw(
    application_id: IdPath, request: Request, principal: CurrentPrincipal
) -> Response:
    return await forward(request, "POST", f"/v1/applications/{application_id}/withdraw", principal)


@router.post(
    "/{application_id:id}/decision",
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


@router.get("/{application_id:id}/decision", response_model=DecisionPublic)
async def get_decision(
    application_id: IdPath, request: Request, principal: CurrentPrincipal
) -> Response:
    return await forward(request, "GET", f"/v1/applications/{application_id}/decision", principal)
