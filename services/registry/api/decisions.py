"""An institution's past decisions, imported as NDJSON to train the approval model."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Request, Response

from services.registry.api.deps import PrincipalDep, RequestIdDep, SettingsDep, require_role
from services.registry.api.ndjson import NDJSON_BODY, BatchSize, ImportId, NdjsonImport
from services.registry.history import prepare_history_batch, write_history_batch
from services.registry.idempotency import IdempotentWriteRoute
from shared.enums import PrincipalRole

router = APIRouter(prefix="/v1/decisions", tags=["decisions"], route_class=IdempotentWriteRoute)


@router.post(
    "/history",
    response_class=Response,
    responses={200: {"content": {"application/x-ndjson": {}}}},
    openapi_extra=NDJSON_BODY,
)
async def import_history(
    request: Request,
    principal: PrincipalDep,
    settings: SettingsDep,
    request_id: RequestIdDep,
    import_id: ImportId,
    batch_size: BatchSize = None,
) -> Response:
    """One past application and its decision per line (shared/schemas/history.py), for the
    institution's own products. Answers NDJSON: one result per input line, then a summary."""
    require_role(principal, PrincipalRole.INSTITUTION)
    assert principal.id is not None
    assert principal.institution_id is not None  # an institution's principal names one
    key = settings.credit_code_hash_key.encode()
    write = partial(
        write_history_batch,
        request.app.state.engine,
        principal_id=principal.id,
        institution_id=principal.institution_id,
        import_id=import_id,
        request_id=request_id,
    )
    importer = NdjsonImport(
        partial(prepare_history_batch, key=key),
        write,
        import_id=import_id,
        statuses=("imported", "duplicate"),
        item="past decision",
        batch_size=batch_size or settings.bulk_batch_size,
        max_lines=settings.bulk_max_lines,
        pool=request.app.state.validation_pool,  # its prepare pickles
    )
    try:
        await importer.consume(request.stream())
    finally:
        await importer.finish()
    return Response(importer.body(), media_type="application/x-ndjson")
