"""POST /internal/rank: one firm's products, ranked and explained."""

from __future__ import annotations

from fastapi import APIRouter, Request

from services.matching.ranking import CatalogueUnknown, rank_products_for_firm
from shared.errors import Conflict
from shared.schemas.matching import RankRequest, RankResponse

router = APIRouter(prefix="/internal", tags=["rank"])


@router.post("/rank", response_model=RankResponse)
def rank(body: RankRequest, request: Request) -> RankResponse:
    """Eligibility, approval probability, effective cost, reasons and near misses."""
    state = request.app.state
    try:
        table = state.catalogues.table(body.catalogue_version, body.products)
    except CatalogueUnknown as exc:
        raise Conflict(
            f"catalogue version {exc} is not known here; send the products",
            code="catalogue_unknown",
            field="catalogue_version",
        ) from exc
    return rank_products_for_firm(body.firm, table, state.models.scorer, body.options)
