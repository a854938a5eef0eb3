"""A firm's consents: which institutions received its profile, and revoking one (PIPL art. 15).

Only the firm's own portal reads or revokes them; anyone else gets 404, as for the firm.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlmodel import select

from services.registry import consents as consent_rules
from services.registry.api.deps import IdPath, PrincipalDep, RequestIdDep, SessionDep
from services.registry.firms import firm_owned_by
from services.registry.idempotency import IdempotentWriteRoute
from services.registry.models import Consent
from services.registry.pagination import page_of
from shared.schemas.consent import ConsentPublic
from shared.schemas.page import Page

router = APIRouter(prefix="/v1/firms", tags=["consents"], route_class=IdempotentWriteRoute)


@router.get("/{firm_id}/consents", response_model=Page[ConsentPublic])
def list_consents(
    firm_id: IdPath,
    session: SessionDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    firm = firm_owned_by(session, firm_id, principal)
    stmt = select(Consent).where(Consent.firm_id == firm.id)
    page = page_of(session, stmt, Consent.id, limit=limit, cursor=cursor)
    page["data"] = consent_rules.public(session, page["data"])
    return page


@router.post("/{firm_id}/consents/{consent_id}/revoke", response_model=ConsentPublic)
def revoke_consent(
    firm_id: IdPath,
    consent_id: IdPath,
    session: SessionDep,
    principal: PrincipalDep,
    request_id: RequestIdDep,
) -> ConsentPublic:
    """200 with the revoked consent; revoking it again is 200 with the same record."""
    firm = firm_owned_by(session, firm_id, principal)
    consent = consent_rules.consent_of_firm(session, firm, consent_id, lock=True)
    consent_rules.revoke(session, firm, consent, principal, request_id)
    [answer] = consent_rules.public(session, [consent])
    session.commit()
    return answer
