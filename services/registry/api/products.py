"""Products: institutions list and maintain their own; every principal may browse active ones."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from sqlmodel import Session, col, select

from services.registry import audit, proactive
from services.registry.api.deps import IdPath, PrincipalDep, RequestIdDep, SessionDep, require_role
from services.registry.api.firms import parse_if_match
from services.registry.idempotency import IdempotentWriteRoute
from services.registry.models import (
    Application,
    ImportedDecision,
    MatchEvent,
    Principal,
    Product,
)
from services.registry.models.columns import utcnow
from services.registry.pagination import decode_cursor, next_cursor
from shared.enums import PrincipalRole
from shared.error_codes import ErrorCode
from shared.errors import NotFound, PreconditionFailed
from shared.schemas.page import Page
from shared.schemas.partial import refuse_nulls
from shared.schemas.product import ProductCreate, ProductPublic, ProductQuery, ProductUpdate

router = APIRouter(prefix="/v1/products", tags=["products"], route_class=IdempotentWriteRoute)


def _owned(
    session: Session, product_id: int, principal: Principal, *, lock: bool = False
) -> Product:
    # Locking the row makes the version check and the write one step on PostgreSQL.
    product = session.get(Product, product_id, with_for_update=lock)
    if (
        product is None
        or product.archived_at is not None
        or principal.role != PrincipalRole.INSTITUTION
        or product.institution_id != principal.institution_id
    ):
        raise NotFound(f"product {product_id} not found")
    return product


def _visible(session: Session, product_id: int, principal: Principal) -> Product:
    product = session.get(Product, product_id)
    if product is None or product.archived_at is not None:
        raise NotFound(f"product {product_id} not found")
    owner = principal.role == PrincipalRole.INSTITUTION and (
        product.institution_id == principal.institution_id
    )
    if not product.active and not owner and principal.role != PrincipalRole.ADMIN:
        raise NotFound(f"product {product_id} not found")
    return product


def _values(body: ProductCreate) -> dict[str, Any]:
    values = body.model_dump()
    for key in ("category", "collateral_kind", "amount_cap_basis", "min_credit_rating"):
        if values[key] is not None:
            values[key] = str(values[key])
    values["elig_size_classes"] = [str(s) for s in values["elig_size_classes"]]
    return values


@router.post("", response_model=ProductPublic, status_code=201)
def create_product(
    body: ProductCreate,
    session: SessionDep,
    principal: PrincipalDep,
    request_id: RequestIdDep,
    response: Response,
) -> Product:
    require_role(principal, PrincipalRole.INSTITUTION)
    assert principal.institution_id is not None
    product = Product(**_values(body), institution_id=principal.institution_id)
    session.add(product)
    session.flush()
    proactive.product_written(session, product, before=None)
    audit.record(
        session,
        principal_id=principal.id,
        action="create",
        entity="product",
        entity_id=product.id,
        request_id=request_id,
    )
    session.commit()
    response.headers["ETag"] = f'"{product.version}"'
    return product


@router.get("", response_model=Page[ProductPublic])
def list_products(
    session: SessionDep, principal: PrincipalDep, query: Annotated[ProductQuery, Query()]
) -> dict[str, Any]:
    limit, town_code, institution_id = query.limit, query.town_code, query.institution_id
    stmt = select(Product).where(col(Product.archived_at).is_(None)).order_by(col(Product.id))
    is_owner_view = (
        principal.role == PrincipalRole.INSTITUTION
        and institution_id is not None
        and institution_id == principal.institution_id
    )
    if not (query.include_inactive and (is_owner_view or principal.role == PrincipalRole.ADMIN)):
        stmt = stmt.where(col(Product.active).is_(True))
    if query.category is not None:
        stmt = stmt.where(Product.category == query.category.value)
    if institution_id is not None:
        stmt = stmt.where(Product.institution_id == institution_id)
    after = decode_cursor(query.cursor)
    if after is not None:
        stmt = stmt.where(col(Product.id) > after)
    if town_code is None:
        rows = list(session.exec(stmt.limit(limit)))
        return {"data": rows, "next_cursor": next_cursor(rows, limit)}
    # Town restrictions live in a JSON list (portable across SQLite and PostgreSQL); the
    # catalogue is small, so filter while scanning.
    rows = []
    for product in session.exec(stmt):
        if not product.elig_town_codes or town_code in product.elig_town_codes:
            rows.append(product)
            if len(rows) == limit:
                break
    return {"data": rows, "next_cursor": next_cursor(rows, limit)}


@router.get("/{product_id}", response_model=ProductPublic)
def get_product(
    product_id: IdPath, session: SessionDep, principal: PrincipalDep, response: Response
) -> Product:
    product = _visible(session, product_id, principal)
    response.headers["ETag"] = f'"{product.version}"'
    return product


@router.patch("/{product_id}", response_model=ProductPublic)
def update_product(
    product_id: IdPath,
    body: ProductUpdate,
    session: SessionDep,
    principal: PrincipalDep,
    request_id: RequestIdDep,
    response: Response,
    if_match: Annotated[str | None, Header(max_length=40)] = None,
) -> Product:
    product = _owned(session, product_id, principal, lock=True)
    expected = parse_if_match(if_match)
    if expected is not None and product.version != expected:
        raise PreconditionFailed(
            f"product {product_id} is at version {product.version}, not {expected}",
            code=ErrorCode.STALE_VERSION,
        )
    changes = body.model_dump(exclude_unset=True)
    if not changes:  # an empty patch changes nothing: no new version, no audit entry
        response.headers["ETag"] = f'"{product.version}"'
        return product
    current = {k: getattr(product, k) for k in ProductCreate.model_fields}
    refuse_nulls(ProductCreate, changes)
    merged = ProductCreate.model_validate({**current, **changes})  # re-checks every range
    before = proactive.features(product) if proactive.listed(product) else None
    for key, value in _values(merged).items():
        setattr(product, key, value)
    product.version += 1
    product.updated_at = utcnow()
    proactive.product_written(session, product, before)
    audit.record(
        session,
        principal_id=principal.id,
        action="update",
        entity="product",
        entity_id=product.id,
        request_id=request_id,
        detail={"fields": sorted(changes)},
    )
    session.commit()
    response.headers["ETag"] = f'"{product.version}"'
    return product


@router.delete("/{product_id}", status_code=204)
def delete_product(
    product_id: IdPath, session: SessionDep, principal: PrincipalDep, request_id: RequestIdDep
) -> Response:
    product = _owned(session, product_id, principal)
    # Imported past decisions keep its snapshot but still refer to it, as applications do; so
    # do the statistics of the firms it was shown to (a delete broke their foreign key: 500).
    has_history = next(
        (
            found
            for referring in (Application, ImportedDecision, MatchEvent)
            if (
                found := session.exec(
                    select(referring.id).where(referring.product_id == product_id).limit(1)
                ).first()
            )
            is not None
        ),
        None,
    )
    if has_history is None:
        session.delete(product)
        action = "delete"
    else:
        product.active = False
        product.archived_at = utcnow()
        proactive.product_written(session, product, before=None)
        action = "archive"
    audit.record(
        session,
        principal_id=principal.id,
        action=action,
        entity="product",
        entity_id=product_id,
        request_id=request_id,
    )
    session.commit()
    return Response(status_code=204)
