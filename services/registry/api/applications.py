"""Applications: a portal applies for its firm with consent; the product's institution decides."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from services.registry import audit, consents, events
from services.registry.api.deps import IdPath, PrincipalDep, RequestIdDep, SessionDep, require_role
from services.registry.firms import firm_owned_by, snapshot_of
from services.registry.idempotency import IdempotentWriteRoute
from services.registry.models import Application, Decision, Principal, Product
from services.registry.models.columns import utcnow
from services.registry.models.product import DECISION_TERM_BOUNDS, product_snapshot
from services.registry.pagination import page_of
from services.registry.registers.provenance import effective_values, provenance_for, public_values
from shared.enums import ApplicationStatus, DecisionOutcome, PrincipalRole
from shared.error_codes import ErrorCode
from shared.errors import Conflict, NotFound, Unprocessable
from shared.schemas.application import (
    ApplicationEligibility,
    ApplicationPublic,
    ApplicationSubmission,
    DecisionCreate,
    DecisionPublic,
    EligibilityStatus,
)
from shared.schemas.page import Page

router = APIRouter(
    prefix="/v1/applications", tags=["applications"], route_class=IdempotentWriteRoute
)


def application_visible_to(
    session: Session, application_id: int, principal: Principal, *, lock: bool = False
) -> Application:
    application = session.get(Application, application_id, with_for_update=lock)
    if application is None:
        raise NotFound(f"application {application_id} not found")
    role = principal.role
    if (
        role == PrincipalRole.ADMIN
        or (role == PrincipalRole.PORTAL and application.owner_principal_id == principal.id)
        or (
            role == PrincipalRole.INSTITUTION
            and application.institution_id == principal.institution_id
        )
    ):
        return application
    raise NotFound(f"application {application_id} not found")


@router.post("", response_model=ApplicationPublic, status_code=201)
def apply(
    body: ApplicationSubmission,
    session: SessionDep,
    principal: PrincipalDep,
    request_id: RequestIdDep,
) -> Application:
    require_role(principal, PrincipalRole.PORTAL)
    firm = firm_owned_by(session, body.firm_id, principal, field="firm_id")
    product = session.get(Product, body.product_id)
    if product is None or not product.active or product.archived_at is not None:
        raise NotFound(f"product {body.product_id} not found", field="product_id")
    if not product.amount_min_yuan <= body.requested_amount_yuan <= product.amount_max_yuan:
        raise Unprocessable(
            f"requested_amount_yuan must be within {product.amount_min_yuan}–"
            f"{product.amount_max_yuan} for this product",
            field="requested_amount_yuan",
        )
    if not product.term_min_months <= body.requested_term_months <= product.term_max_months:
        raise Unprocessable(
            f"requested_term_months must be within {product.term_min_months}–"
            f"{product.term_max_months} for this product",
            field="requested_term_months",
        )
    eligibility = body.eligibility or ApplicationEligibility(status=EligibilityStatus.UNKNOWN)
    if body.strict and eligibility.status == EligibilityStatus.INELIGIBLE:
        codes = ", ".join(u.code for u in eligibility.unmet)
        raise Unprocessable(
            f"the firm is not eligible for product {product.id}: {codes}",
            field="product_id",
            code=ErrorCode.NOT_ELIGIBLE,
            extra={"unmet": [u.model_dump(mode="json") for u in eligibility.unmet]},
        )
    open_one = session.exec(
        select(Application.id)
        .where(Application.firm_id == firm.id)
        .where(Application.product_id == product.id)
        .where(Application.status == ApplicationStatus.SUBMITTED.value)
        .limit(1)
    ).first()
    if open_one is not None:
        raise Conflict(
            f"application {open_one} for this product is still open",
            code=ErrorCode.APPLICATION_OPEN,
            field="product_id",
        )
    now = utcnow()
    [provenance] = provenance_for(session.connection(), [public_values(firm)])
    consent = consents.grant(session, firm, product.institution_id, now)
    application = Application(
        firm_id=firm.id,
        consent_id=consent.id,
        product_id=product.id or 0,
        institution_id=product.institution_id,
        owner_principal_id=principal.id or 0,
        requested_amount_yuan=body.requested_amount_yuan,
        requested_term_months=body.requested_term_months,
        consent_share_profile=True,
        consent_at=now,
        firm_snapshot=snapshot_of(firm, now, effective_values(provenance)),
        product_snapshot=product_snapshot(product),
        town_code=firm.town_code,
        industry_section=firm.industry_section,
        size_class=firm.size_class,
        is_first_loan=not firm.has_borrowed_before,
        submitted_at=now,
        eligibility_status=eligibility.status.value,
        eligibility_unmet=[u.model_dump(mode="json") for u in eligibility.unmet],
    )
    session.add(application)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent identical application won
        session.rollback()
        raise Conflict(
            "an application for this product is still open",
            code=ErrorCode.APPLICATION_OPEN,
            field="product_id",
        ) from exc
    events.application_submitted(session, application, firm)
    audit.record(
        session,
        principal_id=principal.id,
        action="apply",
        entity="application",
        entity_id=application.id,
        request_id=request_id,
        detail={"firm_id": firm.id, "product_id": product.id, "consent_id": consent.id},
    )
    session.commit()
    return application


@router.get("", response_model=Page[ApplicationPublic])
def list_applications(
    session: SessionDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    status: ApplicationStatus | None = None,
    firm_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    product_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> dict[str, Any]:
    require_role(principal, PrincipalRole.PORTAL, PrincipalRole.INSTITUTION, PrincipalRole.ADMIN)
    stmt = select(Application)
    if principal.role == PrincipalRole.PORTAL:
        stmt = stmt.where(Application.owner_principal_id == principal.id)
    elif principal.role == PrincipalRole.INSTITUTION:
        stmt = stmt.where(Application.institution_id == principal.institution_id)
    if status is not None:
        stmt = stmt.where(Application.status == status.value)
    if firm_id is not None:
        stmt = stmt.where(Application.firm_id == firm_id)
    if product_id is not None:
        stmt = stmt.where(Application.product_id == product_id)
    return page_of(session, stmt, Application.id, limit=limit, cursor=cursor)


@router.get("/{application_id}", response_model=ApplicationPublic)
def get_application(
    application_id: IdPath, session: SessionDep, principal: PrincipalDep
) -> Application:
    return application_visible_to(session, application_id, principal)


@router.post("/{application_id}/withdraw", response_model=ApplicationPublic)
def withdraw(
    application_id: IdPath, session: SessionDep, principal: PrincipalDep, request_id: RequestIdDep
) -> Application:
    application = application_visible_to(session, application_id, principal, lock=True)
    if application.owner_principal_id != principal.id:
        raise NotFound(f"application {application_id} not found")
    if application.status != ApplicationStatus.SUBMITTED.value:
        raise Conflict(
            f"an application that is {application.status} cannot be withdrawn",
            code=ErrorCode.INVALID_TRANSITION,
        )
    now = utcnow()
    application.status = ApplicationStatus.WITHDRAWN.value
    application.withdrawn_at = now
    application.consent_withdrawn_at = now  # withdrawing the application withdraws consent
    application.version += 1
    events.application_withdrawn(session, application)
    audit.record(
        session,
        principal_id=principal.id,
        action="withdraw",
        entity="application",
        entity_id=application_id,
        request_id=request_id,
    )
    session.commit()
    return application


@router.post("/{application_id}/decision", response_model=DecisionPublic, status_code=201)
def decide(
    application_id: IdPath,
    body: DecisionCreate,
    session: SessionDep,
    principal: PrincipalDep,
    request_id: RequestIdDep,
) -> Decision:
    require_role(principal, PrincipalRole.INSTITUTION)
    application = application_visible_to(session, application_id, principal, lock=True)
    if application.status != ApplicationStatus.SUBMITTED.value:
        raise Conflict(
            f"application {application_id} is {application.status}; it takes one decision",
            code=ErrorCode.INVALID_TRANSITION,
        )
    if (
        body.approved_amount_yuan is not None
        and body.approved_amount_yuan > application.requested_amount_yuan
    ):
        raise Unprocessable(
            "approved_amount_yuan exceeds the requested amount", field="approved_amount_yuan"
        )
    _within_terms(body, application.product_snapshot)
    now = utcnow()
    decision = Decision(
        **body.model_dump(mode="json"),  # the enums as the text the columns hold
        application_id=application_id,
        decided_by_principal_id=principal.id or 0,
        decided_at=now,
    )
    approved = body.outcome is DecisionOutcome.APPROVED
    application.status = (
        ApplicationStatus.APPROVED if approved else ApplicationStatus.REJECTED
    ).value
    application.decided_at = now
    application.approved_amount_yuan = body.approved_amount_yuan if approved else None
    application.approved_rate_bp = body.rate_bp if approved else None
    application.version += 1
    session.add(decision)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent decision won the race
        session.rollback()
        raise Conflict(
            f"application {application_id} already has a decision",
            code=ErrorCode.INVALID_TRANSITION,
        ) from exc
    events.application_decided(session, application, decision)
    audit.record(
        session,
        principal_id=principal.id,
        action="decide",
        entity="application",
        entity_id=application_id,
        request_id=request_id,
        detail={"outcome": body.outcome.value},
    )
    session.commit()
    return decision


@router.get("/{application_id}/decision", response_model=DecisionPublic)
def get_decision(application_id: IdPath, session: SessionDep, principal: PrincipalDep) -> Decision:
    application_visible_to(session, application_id, principal)
    decision = session.exec(
        select(Decision).where(Decision.application_id == application_id)
    ).first()
    if decision is None:
        raise NotFound(f"application {application_id} has no decision yet")
    return decision


def _within_terms(body: DecisionCreate, terms: dict[str, Any]) -> None:
    """An approval lies within the product's terms as the firm applied for them: 422 naming
    the figure that does not (a bank that lends outside them lists another product)."""
    for field, low_key, high_key, unit in DECISION_TERM_BOUNDS:
        value, low, high = getattr(body, field), terms.get(low_key), terms.get(high_key)
        if value is None or low is None or high is None:
            continue
        if not low <= value <= high:
            raise Unprocessable(
                f"{field} {value} {unit} is outside the product's terms ({low}–{high} {unit})",
                field=field,
            )
