"""Official registers: the city's officials and admins upload the lists that verify firms."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response

from services.gateway.auth import CurrentPrincipal, Principal
from services.gateway.idempotency import IdempotentRoute
from shared.enums import PrincipalRole, RegisterKind
from shared.errors import NotFound
from shared.firm_entries import REGISTERS_GENERATION
from shared.schemas.registers import CERTIFICATE_YEARS, SPECIALIZED_YEARS

router = APIRouter(prefix="/v1/registers", tags=["registers"], route_class=IdempotentRoute)

UploadId = Annotated[
    str,
    Query(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="your id for this upload: resend the file with it to resume (an upload "
        "left unpublished with nothing sent for 72 hours, by default, expires with its id)",
    ),
]
BatchSize = Annotated[int | None, Query(ge=1, le=20_000)]
AsOf = Annotated[
    date | None, Query(description="the date of the official list (default: today, China time)")
]
_LINES = (
    "One firm per line, keyed by its unified social credit code, with the kind's fields: "
    f"high_tech certificate_number, valid_from, valid_to (at most {CERTIFICATE_YEARS} years "
    "on; default the last day of the third year); specialized_sme level (municipal, "
    f"provincial, national) and year (counts {SPECIALIZED_YEARS} calendar years); green_list "
    "list_date and sector; gov_procurement_awards contract_number, value_yuan, award_date, "
    "end_date (one line per contract). Every kind takes an optional name. "
    "NDJSON (application/x-ndjson), or CSV (text/csv, UTF-8 or charset=gb18030) with a "
    "header line naming the columns."
)
_NDJSON_EXAMPLE = (
    '{"credit_code":"914419001E4B4DTRCN","certificate_number":"GR202444000001",'
    '"valid_from":"2024-12-01","valid_to":"2027-11-30"}\n'
    '{"credit_code":"914419001ECLGE9MLP","certificate_number":"GR202444000002",'
    '"valid_from":"2025-03-15"}\n'
)
_CSV_EXAMPLE = (
    "credit_code,certificate_number,valid_from,valid_to\n"
    "914419001E4B4DTRCN,GR202444000001,2024-12-01,2027-11-30\n"
    "914419001ECLGE9MLP,GR202444000002,2025-03-15,\n"
)
_ANSWER_EXAMPLE = (
    '{"line":3,"status":"invalid","errors":[{"field":"credit_code",'
    '"message":"duplicate of line 1"}]}\n'
    '{"summary":{"lines":3,"accepted":2,"invalid":1,"not_written":0},"batches":{"committed":1,'
    '"rejected":0,"already_committed":0,"conflict":0},"upload_id":"high-tech-2026-12",'
    '"batch_size":5000,"upload":{"kind":"high_tech","mode":"replace",'
    '"upload_id":"high-tech-2026-12","status":"published","version":4,"as_of":"2026-12-01",'
    '"entries":2,"invalid_lines":1,"diff":{"added":1,"removed":0,"changed":1,"unchanged":0}}}\n'
)
# Text with at least one line that is not blank (an empty body is refused: "holds no line").
_TEXT_WITH_A_LINE = {"type": "string", "pattern": r"\S"}
_BODY = {
    "requestBody": {
        "required": True,
        "description": _LINES,
        "content": {
            "application/x-ndjson": {"schema": _TEXT_WITH_A_LINE, "example": _NDJSON_EXAMPLE},
            "text/csv": {"schema": _TEXT_WITH_A_LINE, "example": _CSV_EXAMPLE},
        },
    }
}
_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the lines refused (an invalid credit code, a duplicate: the upload "
        "goes on without them), then a summary line whose `upload` gives the version it "
        "became and the diff (added, removed, changed, unchanged)",
        "content": {
            "application/x-ndjson": {"schema": {"type": "string"}, "example": _ANSWER_EXAMPLE}
        },
    },
    409: {
        "description": "the upload_id was used for another mode, as_of or content, or it was "
        "abandoned and expired (upload_expired: send the whole file with a new upload_id)"
    },
    415: {"description": "a body neither NDJSON nor CSV"},
    422: {
        "description": "an unknown field or column, a bad date, a missing field: nothing is "
        "published (batches before the line stay staged; resend with the same upload_id)"
    },
}


def require_uploader(principal: Principal) -> None:
    """The city's officials and admins; any other caller is told there is no such thing."""
    city_official = principal.role is PrincipalRole.OFFICIAL and principal.town_code is None
    if not (city_official or principal.role is PrincipalRole.ADMIN):
        raise NotFound("no such resource")


async def _upload(
    request: Request, principal: Principal, kind: RegisterKind, params: dict[str, Any]
) -> Response:
    require_uploader(principal)
    query = {name: str(value) for name, value in params.items() if value is not None}
    answer = await request.app.state.registry.bulk_import(
        principal.id,
        query,
        request.stream(),
        path=f"/v1/registers/{kind.value}",
        method=request.method,
        content_type=request.headers.get("content-type", ""),
    )
    # Every firm's verified attributes may have changed: cached matches are stale.
    await request.app.state.cache.incr(REGISTERS_GENERATION)
    return Response(
        answer.content, status_code=answer.status_code, media_type="application/x-ndjson"
    )


@router.put(
    "/{kind}",
    response_class=Response,
    summary="Replace an official register / 替换认定名单",
    responses=_ANSWER,
    openapi_extra=_BODY,
)
async def replace_register(
    kind: RegisterKind,
    request: Request,
    principal: CurrentPrincipal,
    upload_id: UploadId,
    as_of: AsOf = None,
    batch_size: BatchSize = None,
) -> Response:
    """The kind's whole list, replacing the current one once every line is in (a new
    version; audited). Nobody can list a register through the API: what it says about a firm
    shows in that firm's `provenance`, to whoever may read the firm."""
    params = {"upload_id": upload_id, "as_of": as_of, "batch_size": batch_size}
    return await _upload(request, principal, kind, params)


@router.post(
    "/{kind}",
    response_class=Response,
    summary="Add to an official register / 追加认定名单",
    responses=_ANSWER,
    openapi_extra=_BODY,
)
async def append_to_register(
    kind: RegisterKind,
    request: Request,
    principal: CurrentPrincipal,
    upload_id: UploadId,
    mode: Annotated[Literal["append"], Query(description="append: add to the current list")],
    as_of: AsOf = None,
    batch_size: BatchSize = None,
) -> Response:
    """Entries added to the kind's current list; a line whose firm (for procurement awards:
    firm and contract) is listed replaces that entry. A new version, audited."""
    params = {"upload_id": upload_id, "mode": mode, "as_of": as_of, "batch_size": batch_size}
    return await _upload(request, principal, kind, params)
