"""A firm's consents (PIPL art. 15): which institutions received its profile, and revoking one.

The firm's own portal only: anyone else, an admin included, gets 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from services.gateway.api.proxy import forward
from services.gateway.auth import CurrentPrincipal, require
from services.gateway.idempotency import IdempotentRoute
from shared.enums import PrincipalRole
from shared.errors import problem_responses
from shared.schemas.consent import ConsentPublic
from shared.schemas.page import Cursor, Page

router = APIRouter(prefix="/v1/firms", tags=["consents"], route_class=IdempotentRoute)
IdPath = Annotated[int, Path(ge=1, le=2**63 - 1)]

WHAT_REVOKING_DOES = (
    "From then on the institution's reads of the firm answer 404 (`GET /v1/firms/{id}`), and "
    "the profile is taken out of the `application.submitted` events that carried it to that "
    "institution: a delivery still pending, or a redelivery, goes without it (one already "
    "being sent at that moment may still carry it). The institution is sent `consent.revoked` "
    "(once: revoking again sends nothing), with the consent's and the applications' ids and "
    "no profile, so that it stops processing the profile it holds. The applications stay, "
    "marked with "
    "`consent_withdrawn_at`, and so do their decisions (statistics and the institution's "
    "record). An open application stays open: withdraw it to end it. A new application to "
    "that institution grants a new consent."
)


@router.get(
    "/{firm_id:id}/consents",
    response_model=Page[ConsentPublic],
    summary="Who received the firm's profile / 企业信息授权记录",
    description="One consent per institution the firm applied to, with the applications "
    "that shared the profile under it, oldest first.",
)
async def list_consents(
    firm_id: IdPath,
    request: Request,
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Cursor = None,
) -> Response:
    require(principal, PrincipalRole.PORTAL)
    params = {"limit": limit, "cursor": cursor}
    return await forward(request, "GET", f"/v1/firms/{firm_id}/consents", principal, params=params)


@router.post(
    "/{firm_id:id}/consents/{consent_id:id}/revoke",
    response_model=ConsentPublic,
    summary="Revoke a consent / 撤回授权",
    description="Works before or after a decision. Revoking a revoked consent is 200 with the "
    "same record (the first `revoked_at`). " + WHAT_REVOKING_DOES,
    responses=problem_responses(404),
)
async def revoke_consent(
    firm_id: IdPath, consent_id: IdPath, request: Request, principal: CurrentPrincipal
) -> Response:
    require(principal, PrincipalRole.PORTAL)
    return await forward(
        request, "POST", f"/v1/firms/{firm_id}/consents/{consent_id}/revoke", principal
    )
