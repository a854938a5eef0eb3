"""Statistics for officials (their town; a city official all towns) and admins.

Filters common to every route: a period [date_from, date_to) in China time, a town, a product
category. A town official asking for another town gets 404, as for any object out of scope.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

import orjson
import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from services.registry import audit, stats
from services.registry.api.deps import (
    PrincipalDep,
    ReadSessionDep,
    SessionDep,
    get_engine,
    get_settings,
    require_internal_token,
    require_role,
)
from services.registry.api.deps import request_id as request_id_dep
from services.registry.config import RegistrySettings
from services.registry.db import is_sqlite
from services.registry.models import Firm, Principal
from services.registry.models.columns import table_of, utcnow
from services.registry.registers import feed as register_feed
from services.registry.seed.loader import DEMO_PORTAL
from services.registry.stats import Filters
from services.registry.stats import eligibility as eligibility_stats
from services.registry.stats.register_coverage import register_coverage
from shared.china_date import today_in_china
from shared.enums import PrincipalRole, RegisterKind
from shared.errors import NotFound, Unprocessable
from shared.schemas.internal import FIRM_FEED_COLUMNS, FIRM_FEED_PAGE_ROWS, FirmFeedPage
from shared.schemas.stats import (
    Breakdown,
    Dimension,
    League,
    MatchedGaps,
    Overview,
    ProductEligibility,
    RegisterCoverage,
    Targets,
)
from shared.strict_json import StrictJSONRoute
from shared.vocab.categories import CATEGORIES, ProductCategory
from shared.vocab.towns import is_town_code

router = APIRouter(route_class=StrictJSONRoute, prefix="/v1/stats", tags=["stats"])

SettingsDep = Annotated[RegistrySettings, Depends(get_settings)]
EARLIEST = date(2000, 1, 1)
LATEST = date(2100, 1, 1)


def scoped_town(principal: Principal, town_code: str | None) -> str | None:
    """A town official sees their town only; asking for another town is 404."""
    if town_code is not None and not is_town_code(town_code):
        raise NotFound(f"town {town_code} not found")
    if principal.role == PrincipalRole.OFFICIAL and principal.town_code is not None:
        if town_code is not None and town_code != principal.town_code:
            raise NotFound(f"town {town_code} not found")
        return principal.town_code
    return town_code


def filters(
    principal: PrincipalDep,
    date_from: Annotated[date | None, Query(description="first day (China time)")] = None,
    date_to: Annotated[date | None, Query(description="day after the last day")] = None,
    town_code: Annotated[str | None, Query(max_length=9)] = None,
    category: Annotated[ProductCategory | None, Query()] = None,
) -> Filters:
    require_role(principal, PrincipalRole.OFFICIAL, PrincipalRole.ADMIN)
    return checked_filters(principal, date_from, date_to, town_code, category)


def checked_filters(
    principal: Principal,
    date_from: date | None,
    date_to: date | None,
    town_code: str | None,
    category: ProductCategory | None,
) -> Filters:
    for name, day in (("date_from", date_from), ("date_to", date_to)):
        if day is not None and not EARLIEST <= day < LATEST:
            raise Unprocessable(f"{name} must lie between 2000 and 2099", field=name)
    if date_from is not None and date_to is not None and date_to <= date_from:
        raise Unprocessable("date_to must be after date_from", field="date_to")
    return Filters(
        date_from=date_from,
        date_to=date_to,
        town_code=scoped_town(principal, town_code),
        category=None if category is None else category.value,
    )


FiltersDep = Annotated[Filters, Depends(filters)]


def is_synthetic(session: Session) -> bool:
    """Whether the demo data was seeded into this database (then every figure is synthetic)."""
    demo = session.exec(select(Principal.id).where(Principal.name == DEMO_PORTAL)).first()
    return demo is not None


def fresh_cube(engine: Annotated[Engine, Depends(get_engine)]) -> None:
    """Rebuild the statistics cube's dirty months before the request reads it."""
    stats.refresh_cube(engine)


FreshCube = Depends(fresh_cube)


@router.get("/overview", response_model=Overview, dependencies=[FreshCube])
def overview(session: ReadSessionDep, f: FiltersDep) -> dict[str, Any]:
    """Registered firms, needs, matches, applications, approvals, amounts and response times."""
    figures = stats.overview(session.connection(), f)
    return {"filters": f.as_dict(), "synthetic": is_synthetic(session), **figures}


@router.get("/breakdown", response_model=Breakdown, dependencies=[FreshCube])
def breakdown(session: ReadSessionDep, f: FiltersDep, by: Dimension) -> dict[str, Any]:
    rows = stats.breakdown(session.connection(), by, f)
    return {"by": by, "filters": f.as_dict(), "town_code": f.town_code, "rows": rows}


@router.get("/institutions", response_model=League, dependencies=[FreshCube])
def institutions(
    session: ReadSessionDep,
    f: FiltersDep,
    settings: SettingsDep,
    deadline_days: Annotated[int | None, Query(ge=1, le=60)] = None,
) -> dict[str, Any]:
    """The institution league table (action-plan item 68)."""
    days = deadline_days or settings.response_deadline_working_days
    today = datetime.now(UTC).astimezone(stats.CHINA_TZ).date()
    rows = stats.institutions(session.connection(), f, days, today)
    return {"deadline_working_days": days, "filters": f.as_dict(), "rows": rows}


@router.get("/products", response_model=ProductEligibility, dependencies=[FreshCube])
def products(
    session: ReadSessionDep,
    principal: PrincipalDep,
    date_from: Annotated[date | None, Query(description="first day (China time)")] = None,
    date_to: Annotated[date | None, Query(description="day after the last day")] = None,
    town_code: Annotated[str | None, Query(max_length=9)] = None,
    category: Annotated[ProductCategory | None, Query()] = None,
) -> dict[str, Any]:
    """Applications per product and the share found ineligible at submission: officials
    (their town) and admins see every product, an institution its own."""
    require_role(principal, PrincipalRole.OFFICIAL, PrincipalRole.ADMIN, PrincipalRole.INSTITUTION)
    f = checked_filters(principal, date_from, date_to, town_code, category)
    own = principal.institution_id if principal.role == PrincipalRole.INSTITUTION else None
    rows = eligibility_stats.by_product(session.connection(), f, own)
    return {"filters": f.as_dict(), "rows": rows}


@router.get("/coverage/matched", response_model=MatchedGaps, dependencies=[FreshCube])
def matched_without_application(session: ReadSessionDep, f: FiltersDep) -> dict[str, Any]:
    """Per town and industry section: firms shown matches that never applied."""
    rows = stats.matched_without_application(session.connection(), f)
    return {"filters": f.as_dict(), "rows": rows}


@router.get("/targets", response_model=Targets, dependencies=[FreshCube])
def targets(session: ReadSessionDep, f: FiltersDep, settings: SettingsDep) -> dict[str, Any]:
    """Progress towards the action plan's targets (for a town: its contribution to them)."""
    conn = session.connection()
    town_only = Filters(town_code=f.town_code)
    firms, _ = stats.registered_firms(conn, f.town_code)
    amounts = stats.category_amounts(conn, town_only)
    granted = sum(v["approved"] for v in amounts.values())

    def share(categories: tuple[ProductCategory, ...], part: str) -> float | None:
        chosen = [amounts.get(c.value) for c in categories]
        total = sum(v["approved"] for v in chosen if v)
        return None if total == 0 else round(sum(v[part] for v in chosen if v) / total, 4)

    def names(categories: tuple[ProductCategory, ...]) -> str:
        return "、".join(CATEGORIES[c].name_zh for c in categories)

    rows = [
        _target(
            "firms_registered",
            "平台注册企业数",
            "Firms registered on the platform",
            65,
            "firms",
            ">=",
            settings.target_firms_registered,
            firms,
            town=f.town_code,
        ),
        _target(
            "credit_granted_yuan",
            "获得授信金额",
            "Credit granted on the platform",
            65,
            "yuan",
            ">=",
            settings.target_credit_granted_yuan,
            granted,
            town=f.town_code,
        ),
        _target(
            "trade_finance_sme_share",
            f"贸易融资中小企业金额占比（{names(settings.trade_finance_categories)}）",
            "SME share of trade-finance amount",
            69,
            "share",
            ">",
            settings.target_trade_finance_sme_share,
            share(settings.trade_finance_categories, "sme"),
            town=f.town_code,
        ),
        _target(
            "guarantee_small_agri_share",
            f"新增支小支农担保金额占比（{names(settings.guarantee_categories)}）",
            "Share of guarantee amount to small, micro and agricultural firms",
            74,
            "share",
            ">=",
            settings.target_guarantee_small_agri_share,
            share(settings.guarantee_categories, "small_micro_or_agri"),
            town=f.town_code,
        ),
    ]
    scope = "city" if f.town_code is None else "town"
    return {"town_code": f.town_code, "scope": scope, "rows": rows}


def _target(
    key: str,
    label_zh: str,
    label_en: str,
    plan_item: int,
    unit: str,
    comparison: str,
    target: float,
    current: float | None,
    *,
    town: str | None,
) -> dict[str, Any]:
    """A target row. Counts and amounts sum over towns; shares (unit "share") do not.

    A town's count or amount is its contribution to the city's total, which alone the plan's
    target is set for: judging the part against the whole would read "not met" for every town.
    A town's share is a ratio like the city's, so it is compared with the same threshold.
    """
    progress = None if current is None or not target else round(current / target, 4)
    measure = "share" if unit == "share" else "total" if town is None else "contribution"
    met: bool | None = current is not None and (
        current > target if comparison == ">" else current >= target
    )
    if measure == "contribution":
        met = None
    return {
        "key": key,
        "label_zh": label_zh,
        "label_en": label_en,
        "plan_item": plan_item,
        "unit": unit,
        "comparison": comparison,
        "target": target,
        "current": current,
        "progress": progress,
        "measure": measure,
        "met": met,
    }


@router.get("/firms")
def firms_registered(
    session: ReadSessionDep,
    principal: PrincipalDep,
    town_code: Annotated[str | None, Query(max_length=9)] = None,
) -> dict[str, Any]:
    """Registered firms by size class (and town), with how many state a financing need."""
    require_role(principal, PrincipalRole.OFFICIAL, PrincipalRole.ADMIN)
    town = scoped_town(principal, town_code)
    by_size = stats.firms_by_size(session.connection(), town)
    total = sum(v["firms"] for v in by_size.values())
    return {"town_code": town, "firms": total, "by_size_class": by_size}


@router.get("/registers", response_model=RegisterCoverage)
def registers_coverage(
    session: ReadSessionDep,
    principal: PrincipalDep,
    town_code: Annotated[str | None, Query(max_length=9)] = None,
    kind: Annotated[RegisterKind | None, Query()] = None,
) -> dict[str, Any]:
    """Per official register: registered firms on the current list, matched, applied, approved
    (and for the green list, green credit); for the city or a town, with a row per town."""
    require_role(principal, PrincipalRole.OFFICIAL, PrincipalRole.ADMIN)
    town = scoped_town(principal, town_code)
    return register_coverage(session.connection(), today_in_china(), town, kind)


# Internal: what the matching service needs for coverage and what-if, and their audit trail.

internal = APIRouter(
    route_class=StrictJSONRoute, tags=["internal"], dependencies=[Depends(require_internal_token)]
)


@internal.get("/internal/feeds/firms", response_model=FirmFeedPage)
def firm_feed(
    request: Request,
    changed_since: Annotated[
        datetime | None,
        Query(description="only firms written at or after this time, and those erased since"),
    ] = None,
    after_id: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=FIRM_FEED_PAGE_ROWS)] = FIRM_FEED_PAGE_ROWS,
) -> Response:
    """Registered firms as the matching service keeps them (no name, no credit code), as
    columns: every firm a page at a time, or those changed since a time; with the official
    registers' entries for them, which the reader evaluates by date (see FirmFeedPage)."""
    read_at = utcnow()  # before the read: a write this read misses is stamped later than this
    firm = table_of(Firm)
    stmt = (
        sa.select(*(firm.c[name] for name in FIRM_FEED_COLUMNS))
        .where(firm.c.id > after_id)
        .order_by(firm.c.id)
        .limit(limit)
    )
    erased: list[int] = []
    engine = request.app.state.engine
    with engine.connect() as conn:
        if not is_sqlite(engine):  # the firms and their register entries of one snapshot
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        if changed_since is not None:
            stmt = stmt.where(firm.c.updated_at >= changed_since)
            if after_id == 0:  # erasures come with the first page of a delta
                erased = audit.erased_since(conn, "firm", changed_since)
        rows = conn.execute(stmt).all()
        next_after_id = int(rows[-1].id) if len(rows) == limit else None
        registers = register_feed.published_versions(conn)
        replaced = register_feed.replaced_since(conn, changed_since)
        entries = register_feed.page_entries(
            conn,
            firm,
            after_id=after_id,
            up_to_id=next_after_id,
            changed_since=changed_since,
            replaced=replaced,
        )
    columns = (
        dict(zip(FIRM_FEED_COLUMNS, map(list, zip(*rows, strict=True)), strict=True))
        if rows
        else {name: [] for name in FIRM_FEED_COLUMNS}
    )
    body = {
        "read_at": read_at,
        "columns": columns,
        "erased": erased,
        "next_after_id": next_after_id,
        "registers": registers,
        "entries": entries,
        "entries_replaced": replaced,
    }
    return Response(orjson.dumps(body), media_type="application/json")


class AuditIn(BaseModel):
    action: str = Field(max_length=32, pattern=r"^[a-z_.-]+$")
    entity: str = Field(max_length=32, pattern=r"^[a-z_.-]+$")
    entity_id: str | None = Field(default=None, max_length=64)
    detail: dict[str, Any] = Field(default_factory=dict)


@internal.post("/internal/audit", status_code=201)
def append_audit(
    body: AuditIn,
    session: SessionDep,
    principal: PrincipalDep,
    request_id: Annotated[str | None, Depends(request_id_dep)],
) -> dict[str, bool]:
    """Record a read that must leave a trace (a policy what-if) for the acting principal."""
    if len(orjson.dumps(body.detail)) > 8_192:
        raise Unprocessable("detail is larger than 8 KiB", field="detail")
    audit.record(
        session,
        principal_id=principal.id,
        action=body.action,
        entity=body.entity,
        entity_id=body.entity_id,
        request_id=request_id,
        detail=body.detail,
    )
    session.commit()
    return {"recorded": True}
