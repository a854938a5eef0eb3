"""POST /internal/rank: one firm's products, ranked and explained."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request, Response

from services.matching.metrics import ranked
from services.matching.ranking import CatalogueUnknown, rank_answer
from shared.errors import Conflict
from shared.schemas.matching import RankRequest, RankResponse

router = APIRouter(prefix="/internal", tags=["rank"])


@router.post("/rank", response_model=RankResponse)
async def rank(body: RankRequest, request: Request) -> Response:
    """Eligibility, approval probability, effective cost, reasons and near misses.

    The answer is RankResponse's data, serialised once (rank_answer's tests hold it to the
    schema), not validated again as a response model. The work is a few milliseconds of CPU
    under the GIL, so it runs on the event loop: a thread per request would only add hand-offs.
    """
    state = request.app.state
    try:
        table = state.catalogues.table(body.catalogue_version, body.products)
    except CatalogueUnknown as exc:
        raise Conflict(
            f"catalogue version {exc} is not known here; send the products",
            code="catalogue_unknown",
            field="catalogue_version",
        ) from exc
    answer = rank_answer(body.firm, table, state.models.scorer, body.options)
    ranked(RankResponse.model_construct(**answer))  # counts only: no validation needed
    return Response(orjson.dumps(answer), media_type="application/json")
