"""Internal endpoints for the other services: match events, training export, audit trail."""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

import orjson
import psycopg
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from services.registry.api.deps import (
    PrincipalDep,
    SessionDep,
    require_internal_token,
    require_role,
)
from services.registry.models import (
    Application,
    AuditEntry,
    Decision,
    ImportedDecision,
    MatchEvent,
    Principal,
    Product,
)
from services.registry.models.columns import table_of, utcnow
from services.registry.pagination import page_of
from shared.enums import PrincipalRole
from shared.errors import Unprocessable
from shared.schemas.access import AuditPublic, PrincipalPublic
from shared.schemas.internal import Catalogue, MatchEventBatch, MatchEventIn
from shared.schemas.page import Page
from shared.schemas.product import ProductFeatures
from shared.strict_json import StrictJSONRoute
from shared.types import SafeStr

router = APIRouter(
    route_class=StrictJSONRoute, tags=["internal"], dependencies=[Depends(require_internal_token)]
)


_EVENT_COLUMNS = tuple(MatchEventIn.model_fields)


@router.post("/internal/match-events", status_code=202)
def record_match_events(body: MatchEventBatch, session: SessionDep) -> dict[str, int]:
    """Bulk-append what the gateway showed a firm (statistics of "matched").

    The gateway sends batches of hundreds of events. One timestamp per batch (they were
    shown within a fraction of a second); on PostgreSQL one COPY, which costs a fifth of
    SQLAlchemy's many-row INSERT in this process.
    """
    if body.events:
        now = utcnow()
        rows = [(*(getattr(event, name) for name in _EVENT_COLUMNS), now) for event in body.events]
        try:
            if session.get_bind().dialect.driver == "psycopg":
                _copy_events(session, rows)
            else:
                names = (*_EVENT_COLUMNS, "created_at")
                values = [dict(zip(names, row, strict=True)) for row in rows]
                session.execute(table_of(MatchEvent).insert(), values)
            session.commit()
        except (IntegrityError, psycopg.errors.IntegrityError) as exc:
            session.rollback()
            raise Unprocessable(
                "events name a firm_id or product_id that does not exist", field="events"
            ) from exc
    return {"recorded": len(body.events)}


def _copy_events(session: Session, rows: list[tuple[Any, ...]]) -> None:
    """COPY the rows into match_event inside the session's transaction."""
    columns = ", ".join((*_EVENT_COLUMNS, "created_at"))
    driver = session.connection().connection.driver_connection
    if not isinstance(driver, psycopg.Connection):
        raise TypeError(f"expected a psycopg connection, not {type(driver).__name__}")
    with driver.cursor() as cursor, cursor.copy(f"COPY match_event ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _live_rows(session: Session, since: datetime | None) -> Iterator[dict[str, Any]]:
    stmt = (
        select(Application, Decision)
        .join(Decision, col(Decision.application_id) == col(Application.id))
        .order_by(col(Decision.decided_at), col(Application.id))
        .execution_options(yield_per=2_000)
    )
    if since is not None:
        stmt = stmt.where(col(Decision.decided_at) >= since)
    for application, decision in session.exec(stmt):
        yield {
            "application_id": application.id,
            "firm_id": application.firm_id,
            "product_id": application.product_id,
            "institution_id": application.institution_id,
            "submitted_at": application.submitted_at,
            "decided_at": decision.decided_at,
            "requested_amount_yuan": application.requested_amount_yuan,
            "requested_term_months": application.requested_term_months,
            "firm": application.firm_snapshot,
            "product": application.product_snapshot,
            "outcome": decision.outcome,
            "approved": decision.outcome == "approved",
            "approved_amount_yuan": decision.approved_amount_yuan,
            "rate_bp": decision.rate_bp,
            "rejection_reason": decision.rejection_reason,
            "source": "live",
        }


# Imported rows have no application and no firm record. Training reads both ids as integer
# keys (application_id orders ties, firm_id groups a firm's rows for NDCG): theirs are
# negative, so they never meet a live id. One firm's imported rows share a key when their
# credit code was given (from its keyed hash), else each row is a firm of its own.
_HASHED_FIRM_BASE = 2**32


def imported_firm_key(row: ImportedDecision) -> int:
    assert row.id is not None
    if row.credit_code_hash is None:
        return -row.id
    return -(_HASHED_FIRM_BASE + int(row.credit_code_hash[:15], 16))


def _imported_rows(session: Session, since: datetime | None) -> Iterator[dict[str, Any]]:
    stmt = (
        select(ImportedDecision)
        .order_by(col(ImportedDecision.decided_at), col(ImportedDecision.id))
        .execution_options(yield_per=2_000)
    )
    if since is not None:
        stmt = stmt.where(col(ImportedDecision.decided_at) >= since)
    for row in session.exec(stmt):
        assert row.id is not None
        yield {
            "application_id": -row.id,
            "firm_id": imported_firm_key(row),
            "product_id": row.product_id,
            "institution_id": row.institution_id,
            "submitted_at": row.submitted_at,
            "decided_at": row.decided_at,
            "requested_amount_yuan": row.requested_amount_yuan,
            "requested_term_months": row.requested_term_months,
            "firm": row.firm_snapshot,
            "product": row.product_snapshot,
            "outcome": row.outcome,
            "approved": row.outcome == "approved",
            "approved_amount_yuan": row.approved_amount_yuan,
            "rate_bp": row.rate_bp,
            "rejection_reason": row.rejection_reason,
            "source": "imported",
        }


def _decided_order(row: dict[str, Any]) -> tuple[datetime, int]:
    return row["decided_at"], row["application_id"]


def training_rows(session: Session, since: datetime | None) -> Iterator[bytes]:
    """Live and imported decisions, one stream in decided_at order (ties: application_id),
    so that training's time-ordered holdout cuts across both kinds."""
    merged = heapq.merge(
        _live_rows(session, since), _imported_rows(session, since), key=_decided_order
    )
    for row in merged:
        yield orjson.dumps(row) + b"\n"


@router.get(
    "/internal/exports/training",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}},
)
def export_training(request: Request, since: datetime | None = None) -> StreamingResponse:
    """Every decided application with what the bank saw and what it decided, as NDJSON: the
    live ones (``source: "live"``) and the institutions' imported past decisions
    (``source: "imported"``), in decided_at order."""
    engine = request.app.state.engine

    def stream() -> Iterator[bytes]:
        with Session(engine) as session:
            yield from training_rows(session, since)

    return StreamingResponse(stream(), media_type="application/x-ndjson")


@router.get("/v1/audit", response_model=Page[AuditPublic])
def list_audit(
    session: SessionDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    entity: Annotated[SafeStr | None, Query(max_length=32)] = None,
    entity_id: Annotated[SafeStr | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    require_role(principal, PrincipalRole.ADMIN)
    stmt = select(AuditEntry)
    if entity:
        stmt = stmt.where(AuditEntry.entity == entity)
    if entity_id:
        stmt = stmt.where(AuditEntry.entity_id == entity_id)
    return page_of(session, stmt, AuditEntry.id, limit=limit, cursor=cursor)


@router.get("/internal/catalogue", response_model=Catalogue)
def catalogue(session: SessionDep) -> Catalogue:
    """Every active product as the matching service ranks it, and a version of the whole set.

    The version changes whenever a product is added, changed, deactivated or removed, so a
    cache keyed by it never serves a stale catalogue.
    """
    rows = list(
        session.exec(
            select(Product)
            .where(col(Product.active).is_(True))
            .where(col(Product.archived_at).is_(None))
            .order_by(col(Product.id))
        )
    )
    digest = hashlib.sha256(",".join(f"{p.id}:{p.version}" for p in rows).encode()).hexdigest()
    products = [ProductFeatures.model_validate(p, from_attributes=True) for p in rows]
    return Catalogue(version=f"cat-{len(rows)}-{digest[:16]}", products=products)


BOOTSTRAP_ADMIN = "bootstrap admin (FINMATCH_BOOTSTRAP_ADMIN_KEY)"


@router.post("/internal/principals/bootstrap-admin", response_model=PrincipalPublic)
def bootstrap_admin(session: SessionDep) -> Principal:
    """The principal the gateway acts as for the bootstrap admin key; created once."""
    found = session.exec(
        select(Principal)
        .where(Principal.name == BOOTSTRAP_ADMIN)
        .where(Principal.role == PrincipalRole.ADMIN.value)
    ).first()
    if found is not None:
        return found
    principal = Principal(role=PrincipalRole.ADMIN.value, name=BOOTSTRAP_ADMIN)
    session.add(principal)
    session.commit()
    return principal
