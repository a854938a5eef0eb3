"""Institutions import their past decisions (NDJSON), so that the model does not start cold."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from services.gateway.auth import CurrentPrincipal, require
from services.gateway.idempotency import IdempotentRoute
from shared.enums import PrincipalRole

router = APIRouter(prefix="/v1/decisions", tags=["decisions"], route_class=IdempotentRoute)
PATH = "/v1/decisions/history"


_ANSWER_EXAMPLE = (
    '{"line":1,"status":"imported","id":101,"source":"imported"}\n'
    '{"line":2,"status":"imported","id":102,"source":"imported"}\n'
    '{"line":3,"status":"duplicate","id":57,"source":"imported"}\n'
    '{"summary":{"lines":3,"imported":2,"duplicate":1,"invalid":0,"not_written":0},"batches":'
    '{"committed":1,"rejected":0,"already_committed":0,"conflict":0},"import_id":"2025-h1",'
    '"batch_size":5000}\n'
)


@router.post(
    "/history",
    response_class=Response,
    summary="Import past decisions for training / 导入历史审批记录",
    responses={
        200: {
            "description": "one result per line (imported; duplicate, with the id of the row "
            "that already holds it; invalid with its errors, not_written, already_committed, "
            "conflict), then a summary line counting each",
            "content": {
                "application/x-ndjson": {"schema": {"type": "string"}, "example": _ANSWER_EXAMPLE}
            },
        }
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "One JSON object per line, shaped as the example's: "
            "the firm's features when it applied, the terms asked, submitted_at and "
            "decided_at (with offsets, in the past, decided not before submitted), the "
            "product (one of yours) and the decision.",
            # The schema (an array of HistoryLine, one line each) and its example are written
            # by services/gateway/openapi/_ndjson.py.
            "content": {"application/x-ndjson": {}},
        }
    },
)
async def import_history(
    request: Request,
    principal: CurrentPrincipal,
    import_id: Annotated[str, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")],
    batch_size: Annotated[int | None, Query(ge=1, le=20_000)] = None,
) -> Response:
    """An institution's past applications and decisions, for its own products, feed training
    only (`source: imported`): no firm record, no lead, no event, no statistic. The credit
    code, optional, is stored only as a keyed hash. Each batch commits whole; a line that
    fails (a future date, decided before submitted, a product not yours: "product N not
    found", an amount or term outside the product's bounds, an unknown field, a repeated
    key) names its field and leaves its batch unwritten. Resend the file with the same
    `import_id` to resume: committed batches answer `already_committed`. A past decision is
    held once: a line identical to one the institution already imported (under any
    `import_id`, or earlier in the same file) answers `duplicate` with the `id` of the row
    that holds it and is not written again, which is no error (its batch commits the other
    lines); identical means the same product, firm features, credit code, terms, times (as
    instants) and decision."""
    require(principal, PrincipalRole.INSTITUTION)
    params = {"import_id": import_id}
    if batch_size is not None:
        params["batch_size"] = str(batch_size)
    answer = await request.app.state.registry.bulk_import(
        principal.id, params, request.stream(), path=PATH
    )
    return Response(
        answer.content, status_code=answer.status_code, media_type="application/x-ndjson"
    )
