"""Firm rules: upsert by credit code, optimistic updates, erasure, who may see which firm."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from services.registry import audit, consents, events
from services.registry.db import fetch_one
from services.registry.models import Application, Firm, Principal
from services.registry.models.columns import UtcDateTime, utcnow
from services.registry.models.firm import derive_size
from services.registry.registers.provenance import PG_REGISTERS_JSON
from shared.china_date import china_date_of
from shared.criteria import years_between
from shared.enums import ApplicationStatus, PrincipalRole
from shared.error_codes import ErrorCode
from shared.errors import Conflict, NotFound, PreconditionFailed
from shared.schemas.firm import FirmAttributes, FirmCreate, FirmProfile, FirmUpdate
from shared.schemas.partial import refuse_nulls


def firm_visible_to(session: Session, firm_id: int, principal: Principal) -> Firm:
    """The firm if the principal may read it, else 404 (never 403: ids must not be probed)."""
    firm = session.get(Firm, firm_id)
    if firm is None:
        raise NotFound(f"firm {firm_id} not found")
    allowed = readable_by_role(firm.owner_principal_id, principal)
    if allowed or (allowed is None and _has_live_application(session, firm_id, principal)):
        return firm
    raise NotFound(f"firm {firm_id} not found")


def readable_by_role(owner_principal_id: int, principal: Principal) -> bool | None:
    """Whether the principal may read a firm with this owner, when its role alone decides:
    an admin any, a portal its own, an official none (aggregates only); None for an
    institution, which may read the firms that applied to it with a consent they have not
    withdrawn or revoked, and no other."""
    role = principal.role
    if role == PrincipalRole.ADMIN:
        return True
    if role == PrincipalRole.PORTAL:
        return owner_principal_id == principal.id
    if role == PrincipalRole.INSTITUTION:
        return None
    return False


_FIRM_COLUMNS = tuple(column.name for column in Firm.__table__.columns)  # type: ignore[attr-defined]
# With its registers' entries (their provenance), in the same round trip.
_SELECT_FIRM = f"SELECT {', '.join(_FIRM_COLUMNS)}, {PG_REGISTERS_JSON} FROM firm WHERE id = %s"
_UTC = UtcDateTime()
_UTC_COLUMNS = tuple(
    column.name
    for column in Firm.__table__.columns  # type: ignore[attr-defined]
    if isinstance(column.type, UtcDateTime)
)


def firm_row(engine: Engine, firm_id: int) -> dict[str, Any] | None:
    """A firm's stored values as the ORM would load them, read on PostgreSQL without the ORM
    (see services.registry.db.fetch_one): every uncached match reads its firm. Its
    ``registers_json`` holds what provenance_from_json reads."""
    row = fetch_one(engine, _SELECT_FIRM, (firm_id,))
    if row is not None:
        for name in _UTC_COLUMNS:
            row[name] = _UTC.process_result_value(row[name], engine.dialect)
    return row


def firm_owned_by(
    session: Session, firm_id: int, principal: Principal, *, field: str | None = None
) -> Firm:
    """The principal's own firm, else 404; ``field`` names the body field the id came from."""
    firm = session.get(Firm, firm_id)
    if firm is None or firm.owner_principal_id != principal.id:
        raise NotFound(f"firm {firm_id} not found", field=field)
    return firm


def _has_live_application(session: Session, firm_id: int, principal: Principal) -> bool:
    # Consent is given by applying: withdrawing the application, or revoking the consent it
    # was given under (services.registry.consents), sets consent_withdrawn_at and ends it.
    stmt = (
        select(Application.id)
        .where(Application.firm_id == firm_id)
        .where(Application.institution_id == principal.institution_id)
        .where(Application.status != ApplicationStatus.WITHDRAWN.value)
        .where(col(Application.consent_withdrawn_at).is_(None))
        .limit(1)
    )
    return session.exec(stmt).first() is not None


def stored_values(create: FirmCreate | FirmProfile) -> dict[str, Any]:
    values = create.model_dump()
    values["size_class"], values["size_ruleset"] = derive_size(values)
    return values


def upsert_firm(
    session: Session, create: FirmCreate, principal: Principal, request_id: str | None
) -> tuple[Firm, bool]:
    """Create the firm, or update it if this portal already registered its credit code."""
    values = stored_values(create)
    existing = session.exec(select(Firm).where(Firm.credit_code == create.credit_code)).first()
    if existing is None:
        assert principal.id is not None
        firm = Firm(**values, owner_principal_id=principal.id)
        session.add(firm)
        try:
            session.flush()
        except IntegrityError as exc:
            # A concurrent request registered the same code first; let the client retry.
            session.rollback()
            raise Conflict(
                "this credit code was registered concurrently; retry",
                code=ErrorCode.CONCURRENT_CREATE,
            ) from exc
        audit.record(
            session,
            principal_id=principal.id,
            action="create",
            entity="firm",
            entity_id=firm.id,
            request_id=request_id,
        )
        return firm, True
    if existing.owner_principal_id != principal.id:
        raise Conflict(
            "this credit code is registered by another portal",
            code=ErrorCode.FIRM_REGISTERED_ELSEWHERE,
            field="credit_code",
        )
    _apply(existing, values)
    audit.record(
        session,
        principal_id=principal.id,
        action="update",
        entity="firm",
        entity_id=existing.id,
        request_id=request_id,
    )
    return existing, False


def _apply(firm: Firm, values: dict[str, Any]) -> None:
    for key, value in values.items():
        setattr(firm, key, value)
    firm.version += 1
    firm.updated_at = utcnow()


def update_firm(
    session: Session,
    firm: Firm,
    update: FirmUpdate,
    expected_version: int,
    principal: Principal,
    request_id: str | None,
) -> Firm:
    """Apply a partial update if the client saw the current version; re-derive the size class."""
    if firm.version != expected_version:
        raise PreconditionFailed(
            f"firm {firm.id} is at version {firm.version}, not {expected_version}",
            code=ErrorCode.STALE_VERSION,
        )
    changes = update.model_dump(exclude_unset=True)
    if not changes:  # an empty patch changes nothing: no new version, no audit entry
        return firm
    refuse_nulls(FirmProfile, changes)
    current = {k: getattr(firm, k) for k in FirmProfile.model_fields}
    merged = FirmProfile.model_validate({**current, **changes})  # re-checks industry pairing
    values = stored_values(merged)
    result = session.execute(
        sa.update(Firm)
        .where(Firm.id == firm.id)  # type: ignore[arg-type]
        .where(Firm.version == expected_version)  # type: ignore[arg-type]
        .values(**values, version=expected_version + 1, updated_at=utcnow())
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise PreconditionFailed(f"firm {firm.id} changed meanwhile", code=ErrorCode.STALE_VERSION)
    audit.record(
        session,
        principal_id=principal.id,
        action="update",
        entity="firm",
        entity_id=firm.id,
        request_id=request_id,
        detail={"fields": sorted(changes)},
    )
    session.refresh(firm)
    return firm


def erase_firm(session: Session, firm: Firm, principal: Principal, request_id: str | None) -> None:
    """Delete the profile; applications keep their feature snapshot but lose the link. Each
    institution that holds the profile under a standing consent is told to delete its copy
    (``consent.revoked``, reason ``erased``), in this transaction, before the consents go with
    the firm."""
    firm_id = firm.id
    if firm_id is not None:
        consents.end_with_erasure(session, firm_id)
    session.delete(firm)
    if firm_id is not None:
        events.forget_firm(session, firm_id)  # the profile sent to institutions, kept in events
    audit.record(
        session,
        principal_id=principal.id,
        action="erase",
        entity="firm",
        entity_id=firm_id,
        request_id=request_id,
    )


def snapshot_of(
    firm: Firm, at: datetime | None = None, effective: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The features an institution sees when the firm applies (JSON-safe), which training
    later reads: ``effective`` holds the gating attributes' values as matching uses them
    (services.registry.registers.provenance), else they are taken as declared."""
    at = at or datetime.now(UTC)
    # Only the attributes (FirmFeatures): never the name, the code or free text.
    snap: dict[str, Any] = {}
    for key in FirmAttributes.model_fields:
        value = getattr(firm, key)
        if effective is not None and key in effective:
            value = effective[key]
        snap[key] = value.isoformat() if isinstance(value, date) else value
    snap["size_class"] = firm.size_class
    snap["years_established"] = round(years_between(firm.established_on, china_date_of(at)), 2)
    snap["snapshot_at"] = at.isoformat()
    return snap
