"""Statistics aggregations for officials: applications and amounts by a chosen dimension."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlmodel import Session

from services.registry.api.deps import PrincipalDep, SessionDep, require_role
from services.registry.models import Application, Decision, Firm, Principal, Product
from services.registry.models.columns import table_of
from shared.enums import PrincipalRole
from shared.errors import NotFound
from shared.vocab.towns import is_town_code

router = APIRouter(prefix="/v1/stats", tags=["stats"])

APP = table_of(Application)
DEC = table_of(Decision)
PROD = table_of(Product)
FIRM = table_of(Firm)


class Dimension(StrEnum):
    TOWN = "town"
    CATEGORY = "category"
    INSTITUTION = "institution"
    SIZE_CLASS = "size_class"
    MONTH = "month"


class BreakdownRow(BaseModel):
    key: str
    applications: int
    approved: int
    rejected: int
    pending: int
    requested_amount_yuan: int
    approved_amount_yuan: int
    first_loan_approved: int


class Breakdown(BaseModel):
    by: Dimension
    town_code: str | None
    rows: list[BreakdownRow]


def scoped_town(principal: Principal, town_code: str | None) -> str | None:
    """A town official sees their town only; asking for another town is 404."""
    if town_code is not None and not is_town_code(town_code):
        raise NotFound(f"town {town_code} not found")
    if principal.role == PrincipalRole.OFFICIAL and principal.town_code is not None:
        if town_code is not None and town_code != principal.town_code:
            raise NotFound(f"town {town_code} not found")
        return principal.town_code
    return town_code


def _month(session: Session, column: Any) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return sa.func.to_char(column, "YYYY-MM")
    return sa.func.strftime("%Y-%m", column)


@router.get("/breakdown", response_model=Breakdown)
def breakdown(
    session: SessionDep,
    principal: PrincipalDep,
    by: Dimension,
    town_code: Annotated[str | None, Query(max_length=9)] = None,
    date_from: datetime | None = None,
    date_to: datetime | None = None,
) -> dict[str, Any]:
    require_role(principal, PrincipalRole.OFFICIAL, PrincipalRole.ADMIN)
    town = scoped_town(principal, town_code)
    key = {
        Dimension.TOWN: APP.c.town_code,
        Dimension.CATEGORY: PROD.c.category,
        Dimension.INSTITUTION: sa.cast(APP.c.institution_id, sa.String),
        Dimension.SIZE_CLASS: APP.c.size_class,
        Dimension.MONTH: _month(session, APP.c.submitted_at),
    }[by].label("key")
    status = APP.c.status
    stmt = (
        sa.select(
            key,
            sa.func.count().label("applications"),
            sa.func.sum(sa.case((status == "approved", 1), else_=0)).label("approved"),
            sa.func.sum(sa.case((status == "rejected", 1), else_=0)).label("rejected"),
            sa.func.sum(sa.case((status == "submitted", 1), else_=0)).label("pending"),
            sa.func.coalesce(sa.func.sum(APP.c.requested_amount_yuan), 0).label("requested"),
            sa.func.coalesce(sa.func.sum(DEC.c.approved_amount_yuan), 0).label("approved_amt"),
            sa.func.sum(
                sa.case((sa.and_(status == "approved", APP.c.is_first_loan), 1), else_=0)
            ).label("first_loan"),
        )
        .select_from(
            APP.join(PROD, PROD.c.id == APP.c.product_id).outerjoin(
                DEC, DEC.c.application_id == APP.c.id
            )
        )
        .group_by(key)
        .order_by(key)
    )
    if town is not None:
        stmt = stmt.where(APP.c.town_code == town)
    if date_from is not None:
        stmt = stmt.where(APP.c.submitted_at >= date_from)
    if date_to is not None:
        stmt = stmt.where(APP.c.submitted_at < date_to)
    rows = [
        BreakdownRow(
            key=str(r.key),
            applications=int(r.applications),
            approved=int(r.approved or 0),
            rejected=int(r.rejected or 0),
            pending=int(r.pending or 0),
            requested_amount_yuan=int(r.requested),
            approved_amount_yuan=int(r.approved_amt),
            first_loan_approved=int(r.first_loan or 0),
        )
        for r in session.execute(stmt)
    ]
    return {"by": by, "town_code": town, "rows": rows}


@router.get("/firms")
def firms_registered(
    session: SessionDep,
    principal: PrincipalDep,
    town_code: Annotated[str | None, Query(max_length=9)] = None,
) -> dict[str, Any]:
    """Registered firms by size class (and town), with how many state a financing need."""
    require_role(principal, PrincipalRole.OFFICIAL, PrincipalRole.ADMIN)
    town = scoped_town(principal, town_code)
    stmt = sa.select(
        FIRM.c.size_class,
        sa.func.count().label("firms"),
        sa.func.sum(sa.case((FIRM.c.need_amount_yuan.is_not(None), 1), else_=0)).label("needs"),
    ).group_by(FIRM.c.size_class)
    if town is not None:
        stmt = stmt.where(FIRM.c.town_code == town)
    by_size = {
        r.size_class: {"firms": int(r.firms), "with_need": int(r.needs or 0)}
        for r in session.execute(stmt)
    }
    total = sum(v["firms"] for v in by_size.values())
    return {"town_code": town, "firms": total, "by_size_class": by_size}
