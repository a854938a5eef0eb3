"""Coverage gaps and policy what-ifs for officials (the gateway scopes the town first)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from services.matching.firm_feed import FirmFeed
from services.matching.policy import coverage_gaps, population, reach, what_if
from services.matching.registry_client import RegistryClient
from shared.china_date import today_in_china
from shared.errors import NotFound, Unprocessable
from shared.schemas.policy import WhatIfRequest
from shared.schemas.product import ProductFeatures
from shared.vocab.towns import is_town_code

router = APIRouter(prefix="/internal/policy", tags=["policy"])

TownQuery = Annotated[str | None, Query(max_length=9)]


def _registry(request: Request) -> RegistryClient:
    registry: RegistryClient = request.app.state.models.registry
    return registry


def _feed(request: Request) -> FirmFeed:
    feed: FirmFeed = request.app.state.firm_feed
    return feed


def _town(town_code: str | None) -> str | None:
    if town_code is not None and not is_town_code(town_code):
        raise NotFound(f"town {town_code} not found")
    return town_code


async def _products(request: Request) -> tuple[str, list[ProductFeatures]]:
    catalogue = await _registry(request).catalogue()
    products = [ProductFeatures.model_validate(p) for p in catalogue["products"]]
    return str(catalogue["version"]), products


@router.post("/what-if")
async def policy_what_if(body: WhatIfRequest, request: Request) -> dict[str, Any]:
    """Firms that would newly qualify if one criterion of a product (or category) changed."""
    town = _town(body.town_code)
    version, catalogue = await _products(request)
    if body.product_id is not None:
        chosen = [p for p in catalogue if p.id == body.product_id]
        if not chosen:
            raise NotFound(f"product {body.product_id} not found", field="product_id")
    else:
        chosen = [p for p in catalogue if p.category == body.category]
        if not chosen:
            raise Unprocessable(f"no active product in category {body.category}", field="category")
    value: Any = body.value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    today = today_in_china()
    async with _feed(request).current(_registry(request), today) as columns:
        firms = population(columns, town)
        result = await run_in_threadpool(what_if, firms, chosen, body.criterion, value)
    return {
        "criterion": body.criterion,
        "value": value,
        "products": [p.id for p in chosen],
        "town_code": town,
        "catalogue_version": version,
        "as_of": today.isoformat(),
        **result.__dict__,
    }


@router.get("/coverage")
async def coverage(request: Request, town_code: TownQuery = None) -> dict[str, Any]:
    """Per town and section: firms with a need that no active product's rules admit."""
    town = _town(town_code)
    version, catalogue = await _products(request)
    today = today_in_china()
    async with _feed(request).current(_registry(request), today) as columns:
        rows = await run_in_threadpool(coverage_gaps, population(columns, town), catalogue)
    return {
        "town_code": town,
        "catalogue_version": version,
        "as_of": today.isoformat(),
        "rows": rows,
    }


class ReachRequest(BaseModel):
    """A product, listed or a draft, whose reach among the registered firms is asked."""

    product: ProductFeatures
    town_code: str | None = Field(default=None, max_length=9)


@router.post("/reach")
async def product_reach(body: ReachRequest, request: Request) -> dict[str, Any]:
    """Whom a product would reach: eligible firms (consenting, with a need) by town and size
    class, one notch easier per rule, the model's expected approval share; aggregates only."""
    town = _town(body.town_code)
    scorer = request.app.state.models.scorer
    today = today_in_china()
    async with _feed(request).current(_registry(request), today) as columns:
        firms = population(columns, town, reachable=True)
        result = await run_in_threadpool(reach, firms, body.product, scorer)
    return {
        "town_code": town,
        "as_of": today.isoformat(),
        "model_version": scorer.version,
        "is_prior": scorer.is_prior,
        **result.__dict__,
    }
