"""Products: institutions list and maintain theirs; every principal browses active ones."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Request, Response

from services.gateway.api.proxy import (
    ETAG_HEADER,
    UPDATE_RESPONSES,
    IfMatch,
    forward,
    forward_update,
)
from services.gateway.auth import CurrentPrincipal, Principal, require
from services.gateway.idempotency import IdempotentRoute
from shared.enums import PrincipalRole
from shared.errors import NotFound, problem_responses
from shared.schemas.page import Page
from shared.schemas.policy import ProductReach
from shared.schemas.product import (
    ProductCreate,
    ProductFeatures,
    ProductPublic,
    ProductQuery,
    ProductUpdate,
)
from shared.types import SafeStr

router = APIRouter(prefix="/v1/products", tags=["products"], route_class=IdempotentRoute)
IdPath = Annotated[int, Path(ge=1, le=2**63 - 1)]
Town = Annotated[
    SafeStr | None, Query(max_length=9, description="only firms of this town / 只看该镇街")
]
# A draft has no id yet; matching's product features need one.
DRAFT_ID = 2**63 - 1
_PRODUCT_FEATURES = tuple(ProductFeatures.model_fields)


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
    "/{product_id:id}", response_model=ProductPublic, responses={200: {"headers": ETAG_HEADER}}
)
async def get_product(
    product_id: IdPath, request: Request, principal: CurrentPrincipal
) -> Response:
    return await forward(request, "GET", f"/v1/products/{product_id}", principal)


@router.patch("/{product_id:id}", response_model=ProductPublic, responses=UPDATE_RESPONSES)
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


@router.delete("/{product_id:id}", status_code=204, response_class=Response)
async def delete_product(
    product_id: IdPath, request: Request, principal: CurrentPrincipal
) -> Response:
    """Removes it, or archives it when applications refer to it."""
    answer = await forward(request, "DELETE", f"/v1/products/{product_id}", principal)
    await _catalogue_changed(request)
    return answer


_REACH_DESCRIPTION = (
    "Among the registered firms that consented to matching and stated a need: how many the "
    "product's rules admit, by town and size class; for each rule it sets, how many more one "
    "notch easier would admit (amounts down the 1-2-5 ladder, a rating one grade, a flag "
    "dropped, a list opened); and the model's expected approval share among them. "
    "Aggregates only: groups of fewer than 3 firms are withheld, no firm id appears. "
    "产品覆盖预估：符合条件的企业数（按镇街、规模），逐条放宽一档可新增的企业数，预计获批率；"
    "仅汇总数据，少于 3 家不显示。"
)


@router.post(
    "/preview",
    response_model=ProductReach,
    summary="Preview a draft product's reach / 预估草拟产品的覆盖",
    description=_REACH_DESCRIPTION + " The draft is not saved.",
    responses=problem_responses(404, 422),
)
async def preview_product(
    body: ProductCreate, request: Request, principal: CurrentPrincipal, town_code: Town = None
) -> Response:
    require(principal, PrincipalRole.INSTITUTION)
    draft = {k: v for k, v in body.model_dump(mode="json").items() if k in _PRODUCT_FEATURES}
    draft |= {"id": DRAFT_ID, "institution_id": principal.institution_id}
    return await _reach(request, draft, None, town_code)


@router.get(
    "/{product_id:id}/reach",
    response_model=ProductReach,
    summary="A listed product's reach / 已发布产品的覆盖",
    description=_REACH_DESCRIPTION + " An institution asks about its own products only.",
    responses=problem_responses(404, 422),
)
async def product_reach(
    product_id: IdPath, request: Request, principal: CurrentPrincipal, town_code: Town = None
) -> Response:
    require(principal, PrincipalRole.INSTITUTION, PrincipalRole.ADMIN)
    product = await _own_product(request, principal, product_id)
    features = {k: v for k, v in product.items() if k in _PRODUCT_FEATURES}
    return await _reach(request, features, product_id, town_code)


async def _own_product(request: Request, principal: Principal, product_id: int) -> dict[str, Any]:
    response = await request.app.state.registry.request(
        "GET", f"/v1/products/{product_id}", principal_id=principal.id
    )
    product: dict[str, Any] = response.json()
    if principal.role is PrincipalRole.INSTITUTION and (
        product["institution_id"] != principal.institution_id
    ):
        raise NotFound(f"product {product_id} not found")
    return product


async def _reach(
    request: Request, product: dict[str, Any], product_id: int | None, town_code: str | None
) -> Response:
    body = {"product": product, "town_code": town_code}
    response = await request.app.state.matching.request(
        "POST",
        "/internal/policy/reach",
        content=orjson.dumps(body),
        headers={"Content-Type": "application/json"},
        idempotent=True,
    )
    answer = response.json() | {"product_id": product_id}
    return Response(orjson.dumps(answer), media_type="application/json")
