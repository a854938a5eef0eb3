"""Official registers: a city official or an admin uploads a kind's list (replace or append).

There is no read endpoint: nobody lists a register through the API. What a register says about
a firm shows only in that firm's answer (its ``provenance``), to whoever may read the firm.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from services.registry.api.deps import PrincipalDep, RequestIdDep, SettingsDep
from services.registry.api.ndjson import BatchSize, ImportId, NdjsonImport
from services.registry.bulk import MAX_LINE_BYTES
from services.registry.idempotency import IdempotentWriteRoute
from services.registry.models import Principal
from services.registry.registers.lines import (
    CSV_ENCODINGS,
    csv_header,
    csv_reader,
    ndjson_reader,
    prepare_entries,
)
from services.registry.registers.sweep import sweep_abandoned_uploads
from services.registry.registers.upload import open_upload, publish, write_entries
from shared.china_date import today_in_china
from shared.enums import PrincipalRole, RegisterKind
from shared.error_codes import ErrorCode
from shared.errors import Conflict, NotFound, Unprocessable, UnsupportedMediaType
from shared.schemas.registers import EARLIEST_LISTED, LINE_MODELS, UploadMode

router = APIRouter(prefix="/v1/registers", tags=["registers"], route_class=IdempotentWriteRoute)

NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson"})
CSV_TYPE = "text/csv"
AsOf = Annotated[
    date | None,
    Query(description="the date of the official list (default: today, China time)"),
]
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-ndjson": {"schema": {"type": "string"}},
            "text/csv": {"schema": {"type": "string"}},
        },
    }
}


def require_uploader(principal: Principal) -> None:
    """The city's officials and admins upload; any other role is told there is no such thing."""
    if principal.role == PrincipalRole.ADMIN:
        return
    if principal.role == PrincipalRole.OFFICIAL and principal.town_code is None:
        return
    raise NotFound("no such resource")


def body_format(content_type: str | None) -> tuple[str, str]:
    """(media type, CSV encoding) of the body, or 415 naming Content-Type."""
    media, *params = [part.strip() for part in (content_type or "").split(";")]
    media = media.lower()
    charset = "utf-8"
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    if media in NDJSON_TYPES and charset in {"utf-8", "utf8"}:
        return "ndjson", "utf-8"
    if media == CSV_TYPE and charset in CSV_ENCODINGS:
        return "csv", CSV_ENCODINGS[charset]
    raise UnsupportedMediaType(
        f"Content-Type {content_type or '(none)'!r} is not read here: send application/x-ndjson "
        "(UTF-8) or text/csv (UTF-8 or GB18030, a header line first)",
        field="Content-Type",
    )


def check_as_of(as_of: date | None) -> date:
    if as_of is None:
        return today_in_china()
    if as_of > today_in_china():
        raise Unprocessable("as_of is in the future", field="as_of")
    if as_of < EARLIEST_LISTED:
        raise Unprocessable(f"as_of is before {EARLIEST_LISTED.isoformat()}", field="as_of")
    return as_of


async def split_header(stream: AsyncIterator[bytes]) -> tuple[bytes, AsyncIterator[bytes]]:
    """The body's first line, and the rest of the body as a stream."""
    buffer = b""
    async for chunk in stream:
        buffer += chunk
        if b"\n" in buffer or len(buffer) > MAX_LINE_BYTES:
            break
    header, newline, rest = buffer.partition(b"\n")
    if not newline and len(header) > MAX_LINE_BYTES:
        raise Unprocessable(f"the header is longer than {MAX_LINE_BYTES} bytes", field="header")

    async def remaining() -> AsyncIterator[bytes]:
        if rest:
            yield rest
        async for chunk in stream:
            yield chunk

    return header, remaining()


async def upload_register(
    request: Request,
    principal: Principal,
    *,
    kind: RegisterKind,
    mode: UploadMode,
    upload_id: str,
    as_of: date | None,
    batch_size: int,
    max_lines: int,
    ttl_hours: float,
    request_id: str | None,
) -> Response:
    require_uploader(principal)
    media, encoding = body_format(request.headers.get("content-type"))
    list_date = check_as_of(as_of)
    assert principal.id is not None
    engine = request.app.state.engine
    model = LINE_MODELS[kind]
    stream: AsyncIterator[bytes] = request.stream()
    first_line = 1
    if media == "csv":
        header, stream = await split_header(stream)
        if not header.strip():
            raise Unprocessable("the body holds no header line", field="body")
        read = csv_reader(model, csv_header(model, header, encoding))
        first_line = 2
    else:
        read = ndjson_reader(model)
    # Abandoned uploads go before one is opened: this one too, if it is one (then it answers
    # upload_expired, whether or not a dispatcher swept it first).
    await run_in_threadpool(sweep_abandoned_uploads, engine, ttl_hours)
    upload = await run_in_threadpool(
        partial(
            open_upload,
            engine,
            principal_id=principal.id,
            kind=kind,
            upload_id=upload_id,
            mode=mode,
            as_of=list_date,
            as_of_given=as_of is not None,
        )
    )
    importer = NdjsonImport(
        partial(prepare_entries, read),
        partial(write_entries, engine, upload=upload, request_id=request_id),
        import_id=upload_id,
        statuses=("accepted",),
        item=f"{kind.value} entry",
        batch_size=batch_size,
        max_lines=max_lines,
        first_line=first_line,
        unlisted=("accepted", "already_committed"),
        id_name="upload_id",
    )
    try:
        await importer.consume(stream)
    finally:
        await importer.finish()
    if importer.batches["conflict"]:
        raise Conflict(
            f"upload {upload_id!r}: some batches differ from those it staged or published "
            "before; nothing more is published: send the file with a new upload_id",
            code=ErrorCode.UPLOAD_CONFLICT,
            field="upload_id",
        )
    assert upload.id is not None
    summary = await run_in_threadpool(publish, engine, upload.id, request_id)
    body = importer.body(upload=summary.model_dump(mode="json"))
    return Response(body, media_type="application/x-ndjson")


_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the lines refused (invalid, with their errors), then a summary line "
        "with the upload: its version and the diff (added, removed, changed, unchanged)",
        "content": {"application/x-ndjson": {}},
    }
}


@router.put("/{kind}", response_class=Response, responses=_ANSWER, openapi_extra=UPLOAD_BODY)
async def replace_register(
    kind: RegisterKind,
    request: Request,
    principal: PrincipalDep,
    settings: SettingsDep,
    request_id: RequestIdDep,
    upload_id: ImportId,
    as_of: AsOf = None,
    batch_size: BatchSize = None,
) -> Response:
    """The kind's whole current list, replaced by this upload once it is complete."""
    return await upload_register(
        request,
        principal,
        kind=kind,
        mode=UploadMode.REPLACE,
        upload_id=upload_id,
        as_of=as_of,
        batch_size=batch_size or settings.bulk_batch_size,
        max_lines=settings.bulk_max_lines,
        ttl_hours=settings.register_upload_ttl_hours,
        request_id=request_id,
    )


@router.post("/{kind}", response_class=Response, responses=_ANSWER, openapi_extra=UPLOAD_BODY)
async def append_to_register(
    kind: RegisterKind,
    request: Request,
    principal: PrincipalDep,
    settings: SettingsDep,
    request_id: RequestIdDep,
    upload_id: ImportId,
    mode: Annotated[Literal["append"], Query(description="append: add to the list")],
    as_of: AsOf = None,
    batch_size: BatchSize = None,
) -> Response:
    """Entries added to the kind's list (an entry with a listed key replaces that entry)."""
    return await upload_register(
        request,
        principal,
        kind=kind,
        mode=UploadMode.APPEND,
        upload_id=upload_id,
        as_of=as_of,
        batch_size=batch_size or settings.bulk_batch_size,
        max_lines=settings.bulk_max_lines,
        ttl_hours=settings.register_upload_ttl_hours,
        request_id=request_id,
    )
