"""Products: institutions list and maintain theirs; every principal browses active ones."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from services.gateway.api.proxy import (
    ETAG_HEADER,
    UPDATE_RESPONSES,
    IfMatch,
    forward,
    forward_update,
)
from services.gateway.auth import CurrentPrincipal, require
from services.gateway.idempotency import IdempotentRoute
from shared.enums import PrincipalRole
from shared.schemas.page import Page
from shared.schemas.product import ProductCreate, ProductPublic, ProductQuery, ProductUpdate

router = APIRouter(prefix="/v1/products", tags=["products"], route_class=IdempotentRoute)
IdPath = Annotated[int, Path(ge=1, le=2**63 - 1)]


async def _catalogue_changed(request: Request) -> None:
    await request.app.state.catalogue.invalidate()


@router.post(
    "",
    response_model=ProductPublic,
    status_code=201,
    summary="List a product / 发布产品",
    responses={201: {"description": "created", "headers": ETAG_HEADER}},
)
async def create_product(
    body: ProductCreate, request: Request, principal: CurrentPrincipal
) -> Response:
    require(principal, PrincipalRole.INSTITUTION)
    answer = await forward(
        request, "POST", "/v1/products", principal, json=body.model_dump(mode="json")
    )
    await _catalogue_changed(request)
    return answer


@router.get("", response_model=Page[ProductPublic], summary="Browse products / 浏览产品")
async def list_products(
    request: Request, principal: CurrentPrincipal, query: Annotated[ProductQuery, Query()]
) -> Response:
    params = query.model_dump(mode="json", exclude_none=True)
    return await forward(request, "GET", "/v1/products", principal, params=params)


@router.get(
    "/{product_id}", response_model=ProductPublic, responses={200: {"headers": ETAG_HEADER}}
)
async def get_product(
    product_id: IdPath, request: Request, principal: CurrentPrincipal
) -> Response:
    return await forward(request, "GET", f"/v1/products/{product_id}", principal)


@router.patch("/{product_id}", response_model=ProductPublic, responses=UPDATE_RESPONSES)
async def update_product(
    product_id: IdPath,
    body: ProductUpdate,
    request: Request,
    principal: CurrentPrincipal,
    if_match: IfMatch = None,
) -> Response:
    """Only the fields given change. If-Match is required (the ETag you read, or `*`):
    428 without it, 412 when the product changed since you read it."""
    answer = await forward_update(request, f"/v1/products/{product_id}", principal, body, if_match)
    await _catalogue_changed(request)
    return answer


@router.delete("/{product_id}", status_code=204, response_class=Response)
async def delete_product(
    product_id: IdPath, request: Request, principal: CurrentPrincipal
) -> Response:
    """Removes it, or archives it when applications refer to it."""
    answer = await forward(request, "DELETE", f"/v1/products/{product_id}", principal)
    await _catalogue_changed(request)
    return answer
