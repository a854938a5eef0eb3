"""GET /v1/firms/{id}/matches: the main job — ranked, explained products for one firm."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from services.gateway.auth import CurrentPrincipal, require
from services.gateway.cache import stamped, unstamped
from services.gateway.catalogue import GENERATION_KEY as CATALOGUE_GENERATION
from services.gateway.catalogue import Catalogue
from services.gateway.metrics import match_served
from services.matching.model import PriorModel
from services.matching.ranking import CatalogueCache, CatalogueUnknown, rank_answer
from shared.enums import PrincipalRole
from shared.errors import NotFound, ProblemError
from shared.schemas.firm import FirmFeatures
from shared.schemas.matching import Lang, NearMiss, RankedProduct, RankOptions
from shared.schemas.product import ProductFeatures
from shared.types import PositiveYuan, TermMonths

router = APIRouter(prefix="/v1", tags=["matches"])
log = logging.getLogger("finmatch.gateway.matches")
IdPath = Annotated[int, Path(ge=1, le=2**63 - 1, description="firm id")]
# The rule-and-cost prior runs here when the matching service cannot answer. It is the same
# code the matching service runs at cold start (both ship in this package), so a degraded
# answer differs only by lacking the learned probability.
_fallback_tables = CatalogueCache(capacity=2)


class ProductSummary(BaseModel):
    name: str
    category: str
    institution_id: int


class MatchedProduct(RankedProduct):
    product: ProductSummary


class NearMissProduct(NearMiss):
    product: ProductSummary


class MatchesResponse(BaseModel):
    firm_id: int
    model_version: str
    is_prior: bool
    degraded: bool = Field(description="True when the matching service could not answer")
    degraded_reason: str | None = None
    catalogue_version: str
    evaluated: int
    eligible: int
    ranked: list[MatchedProduct]
    near_misses: list[NearMissProduct]


# What matching ranks on: the firm as the registry answered it, without identity or free text.
# Matching validates it (RankRequest); the gateway validates it only to rank locally.
_FIRM_FEATURES = tuple(FirmFeatures.model_fields)


def _with_product(catalogue: Catalogue, item: dict[str, Any]) -> dict[str, Any]:
    """A ranked product or near miss with the product's name, category and institution."""
    item["product"] = catalogue.summary(item["product_id"])
    return item


@router.get(
    "/firms/{firm_id}/matches",
    response_model=MatchesResponse,
    summary="Ranked financing products for a firm / 为企业匹配融资产品",
    description=(
        "Eligible products ranked by approval probability × coverage of the need, less the "
        "effective annual cost; each with reasons and cost, plus near misses that say what "
        "the firm lacks. 按获批概率×额度覆盖−综合年化成本排序，附理由与差距。"
    ),
)
async def firm_matches(
    firm_id: IdPath,
    request: Request,
    principal: CurrentPrincipal,
    lang: Lang = "zh",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    near_miss_limit: Annotated[int, Query(ge=0, le=100)] = 10,
    amount_yuan: Annotated[PositiveYuan | None, Query()] = None,
    term_months: Annotated[TermMonths | None, Query()] = None,
) -> Response:
    require(principal, PrincipalRole.PORTAL)
    state = request.app.state
    key = (
        f"match:{principal.id}:{firm_id}:"
        f"{lang}:{limit}:{near_miss_limit}:{amount_yuan}:{term_months}"
    )
    # One round trip: the portal's firms generation, the catalogue's, and the stored answer,
    # which stands only if it was computed from those same versions (and the current model).
    firms_generation, catalogue_generation, stored = await state.cache.get_many(
        f"firms:generation:{principal.id}", CATALOGUE_GENERATION, key
    )
    catalogue: Catalogue = await state.catalogue.at(catalogue_generation)
    stamps = ((firms_generation or b"0").decode(), catalogue.version, state.model_version)
    cached = unstamped(stored, *stamps)
    if cached is not None:
        match_served("cached")
        return Response(cached, media_type="application/json")

    firm, _etag = await state.registry.get_firm(principal.id, firm_id)
    if firm["owner_principal_id"] != principal.id:
        raise NotFound(f"firm {firm_id} not found")
    options = RankOptions(
        lang=lang,
        limit=limit,
        near_miss_limit=near_miss_limit,
        requested_amount_yuan=amount_yuan,
        requested_term_months=term_months,
    )
    degraded_reason = None
    try:
        ranking = await state.matching.rank_with_catalogue(
            {name: firm[name] for name in _FIRM_FEATURES if name in firm},
            catalogue.version,
            catalogue.products,
            options.model_dump(mode="json"),
        )
    except ProblemError as exc:
        if exc.status < 500:
            raise
        degraded_reason = f"matching service unavailable ({exc.code}): rule-and-cost ranking"
        log.warning("firm %s: %s", firm_id, degraded_reason)
        features = FirmFeatures.model_validate(firm)
        ranking = await run_in_threadpool(_rank_locally, features, catalogue, options)

    body = {
        **ranking,
        "firm_id": firm_id,
        "degraded": degraded_reason is not None,
        "degraded_reason": degraded_reason,
        "catalogue_version": catalogue.version,
        "ranked": [_with_product(catalogue, r) for r in ranking["ranked"]],
        "near_misses": [_with_product(catalogue, m) for m in ranking["near_misses"]],
    }
    payload = orjson.dumps(body)
    if degraded_reason is None:
        await state.cache.set(key, stamped(payload, *stamps), state.settings.match_cache_seconds)
        state.recorder.record(
            [
                {
                    "firm_id": firm_id,
                    "product_id": r["product_id"],
                    "rank": r["rank"],
                    "score": r["score"],
                    "approval_probability": r["approval_probability"],
                    "model_version": ranking["model_version"],
                    "town_code": firm["town_code"],
                }
                for r in ranking["ranked"]
            ]
        )
    match_served("fresh" if degraded_reason is None else "degraded")
    return Response(payload, media_type="application/json")


def _rank_locally(
    features: FirmFeatures, catalogue: Catalogue, options: RankOptions
) -> dict[str, Any]:
    try:
        table = _fallback_tables.table(catalogue.version, None)
    except CatalogueUnknown:
        products = [ProductFeatures.model_validate(p) for p in catalogue.products]
        table = _fallback_tables.table(catalogue.version, products)
    return rank_answer(features, table, PriorModel(), options)
