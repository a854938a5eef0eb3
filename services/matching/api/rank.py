"""POST /internal/rank: one firm's products, ranked and explained."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from services.matching.batch import newly_qualified
from services.matching.cost import cost_estimate
from services.matching.eligibility import evaluate_firm
from services.matching.explain.rules import unmet_criteria
from services.matching.metrics import ranked
from services.matching.ranking import CatalogueUnknown, probability_or_none, rank_answer
from services.matching.tables import FirmTable, ProductTable
from shared.china_date import today_in_china
from shared.error_codes import ErrorCode
from shared.errors import Conflict
from shared.schemas.matching import (
    EligibilityAnswer,
    EligibilityRequest,
    NewlyQualifiedFirm,
    NewlyQualifiedRequest,
    NewlyQualifiedResponse,
    RankRequest,
    RankResponse,
)

router = APIRouter(prefix="/internal", tags=["rank"])


# The body is parsed and validated by pydantic-core in one step (FastAPI would parse it with
# the standard library's json and then validate the objects); the schema is still documented.
_BODY_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RankRequest"}}},
    }
}


def document_body(openapi: dict[str, Any]) -> dict[str, Any]:
    """Put RankRequest and the models it uses into an OpenAPI document's components, where
    _BODY_SCHEMA points (FastAPI adds only the models of declared parameters)."""
    schema = RankRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    components = openapi.setdefault("components", {}).setdefault("schemas", {})
    for name, definition in schema.pop("$defs", {}).items():
        components.setdefault(name, definition)
    components.setdefault("RankRequest", schema)
    return openapi


@router.post("/rank", response_model=RankResponse, openapi_extra=_BODY_SCHEMA)
async def rank(request: Request) -> Response:
    """Eligibility, approval probability, effective cost, reasons and near misses.

    The answer is RankResponse's data, serialised once (rank_answer's tests hold it to the
    schema), not validated again as a response model. The work is a few milliseconds of CPU
    under the GIL, so it runs on the event loop: a thread per request would only add hand-offs.
    """
    try:
        body = RankRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        ) from None
    state = request.app.state
    try:
        table = state.catalogues.table(body.catalogue_version, body.products)
    except CatalogueUnknown as exc:
        raise Conflict(
            f"catalogue version {exc} is not known here; send the products",
            code=ErrorCode.CATALOGUE_UNKNOWN,
            field="catalogue_version",
        ) from exc
    answer = rank_answer(
        body.firm, table, state.models.scorer, body.options, verified=body.verified
    )
    ranked(RankResponse.model_construct(**answer))  # counts only: no validation needed
    return Response(orjson.dumps(answer), media_type="application/json")


@router.post("/newly-qualified", response_model=NewlyQualifiedResponse)
async def newly_qualified_firms(
    body: NewlyQualifiedRequest, request: Request
) -> NewlyQualifiedResponse:
    """Proactive matching: the firms a product's listing or change newly reaches, scored.

    The registry's dispatcher sends its consenting firms with a stated need in pages; the
    answer names those that qualify for ``after`` (and did not for ``before``), with the
    approval probability and the effective cost, exactly as a ranking would give them.
    """
    scorer = request.app.state.models.scorer
    firms = FirmTable.from_firms(
        [f.features for f in body.firms], today_in_china(), [f.verified for f in body.firms]
    )
    found = await run_in_threadpool(newly_qualified, firms, body.before, body.after, scorer)
    out = []
    for k, index in enumerate(found.firms.tolist()):
        out.append(
            NewlyQualifiedFirm(
                firm_id=body.firms[index].id,
                approval_probability=probability_or_none(float(found.probability[k])),
                cost=cost_estimate(found.costs, k),
            )
        )
    return NewlyQualifiedResponse(model_version=scorer.version, is_prior=scorer.is_prior, firms=out)


@router.post("/eligibility", response_model=EligibilityAnswer)
async def eligibility(body: EligibilityRequest) -> EligibilityAnswer:
    """Whether the firm meets the product's rules, and each criterion it fails (all of them,
    not only a near miss's few): what an application records at submission."""
    firms = FirmTable.from_firms([body.firm], today_in_china(), [body.verified])
    products = ProductTable.from_products([body.product])
    elig = evaluate_firm(firms, 0, products)
    unmet = unmet_criteria(elig, 0, firms, 0, products, 0, body.lang)
    return EligibilityAnswer(eligible=bool(elig.eligible[0]), unmet=unmet)
