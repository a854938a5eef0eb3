"""Firms: upsert by credit code, read, optimistic update, erase, list, NDJSON bulk import."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.engine import Engine
from sqlmodel import select

from services.registry import firms as firm_rules
from services.registry.api.deps import (
    EngineDep,
    IdPath,
    PrincipalDep,
    RequestIdDep,
    SessionDep,
    SettingsDep,
    require_role,
)
from services.registry.bulk import (
    MAX_LINE_BYTES,
    BatchOutcome,
    NumberedLine,
    prepare_batch,
    write_batch,
)
from services.registry.db import is_sqlite, statement_session
from services.registry.idempotency import IdempotentWriteRoute
from services.registry.models import Firm, Principal
from services.registry.pagination import page_of
from shared.enums import PrincipalRole
from shared.errors import (
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    PreconditionRequired,
    Unprocessable,
)
from shared.schemas.firm import FirmCreate, FirmPublic, FirmUpdate
from shared.schemas.page import Page
from shared.types import SafeStr

router = APIRouter(prefix="/v1/firms", tags=["firms"], route_class=IdempotentWriteRoute)

_ETAG = re.compile(r'^(?:W/)?"(\d{1,18})"$')


def etag(firm: Firm) -> str:
    return f'"{firm.version}"'


def parse_if_match(value: str | None) -> int | None:
    """The version the client saw; None for ``*`` (any current version, RFC 9110)."""
    if value is None:
        raise PreconditionRequired("If-Match with the ETag you read is required", field="If-Match")
    value = value.strip()
    if value == "*":
        return None
    match = _ETAG.match(value)
    if not match:
        raise PreconditionFailed('If-Match must be an ETag such as "3"', field="If-Match")
    return int(match.group(1))


@router.post("", response_model=FirmPublic, status_code=201)
def upsert_firm(
    body: FirmCreate,
    session: SessionDep,
    principal: PrincipalDep,
    request_id: RequestIdDep,
    response: Response,
) -> Firm:
    require_role(principal, PrincipalRole.PORTAL)
    firm, created = firm_rules.upsert_firm(session, body, principal, request_id)
    session.commit()
    response.status_code = 201 if created else 200
    response.headers["ETag"] = etag(firm)
    return firm


@router.get("", response_model=Page[FirmPublic])
def list_firms(
    session: SessionDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    town_code: Annotated[SafeStr | None, Query(max_length=9)] = None,
    credit_code: Annotated[SafeStr | None, Query(max_length=18)] = None,
) -> dict[str, Any]:
    require_role(principal, PrincipalRole.PORTAL, PrincipalRole.ADMIN)
    stmt = select(Firm)
    if principal.role == PrincipalRole.PORTAL:
        stmt = stmt.where(Firm.owner_principal_id == principal.id)
    if town_code:
        stmt = stmt.where(Firm.town_code == town_code)
    if credit_code:
        stmt = stmt.where(Firm.credit_code == credit_code.strip().upper())
    return page_of(session, stmt, Firm.id, limit=limit, cursor=cursor)


@router.get("/{firm_id}", response_model=FirmPublic)
async def get_firm(firm_id: IdPath, engine: EngineDep, principal: PrincipalDep) -> Response:
    """Every uncached match asks for its firm, so this read takes one trip to the thread pool
    (session, query, serialisation and release together) rather than one per step (a session
    dependency, the endpoint, the dependency's exit: three hand-offs between threads)."""
    body, version = await run_in_threadpool(_read_firm, engine, firm_id, principal)
    return Response(body, media_type="application/json", headers={"ETag": f'"{version}"'})


def _read_firm(engine: Engine, firm_id: int, principal: Principal) -> tuple[bytes, int]:
    # Serialised by pydantic-core in one step, not validated again and re-encoded by FastAPI
    # (the declared response_model still documents it).
    if not is_sqlite(engine) and principal.role != PrincipalRole.INSTITUTION:
        # The role and the owner decide (readable_by_role): one driver-level read. An
        # institution's access depends on its applications: the session path below.
        row = firm_rules.firm_row(engine, firm_id)
        if row is None or not firm_rules.readable_by_role(row["owner_principal_id"], principal):
            raise NotFound(f"firm {firm_id} not found")
        return FirmPublic.model_validate(row).model_dump_json().encode(), row["version"]
    with statement_session(engine) as session:  # one statement (two for an institution)
        firm = firm_rules.firm_visible_to(session, firm_id, principal)
        return FirmPublic.model_validate(firm).model_dump_json().encode(), firm.version


@router.patch("/{firm_id}", response_model=FirmPublic)
def update_firm(
    firm_id: IdPath,
    body: FirmUpdate,
    session: SessionDep,
    principal: PrincipalDep,
    request_id: RequestIdDep,
    response: Response,
    if_match: Annotated[str | None, Header(max_length=40)] = None,
) -> Firm:
    firm = firm_rules.firm_owned_by(session, firm_id, principal)
    expected = parse_if_match(if_match)
    if expected is None:
        # "*": whatever version is current. Locked, as a product's row is, so that a writer
        # committing meanwhile makes this one wait and apply on top, not fail with a 412.
        session.refresh(firm, with_for_update=True)
        expected = firm.version
    firm = firm_rules.update_firm(session, firm, body, expected, principal, request_id)
    session.commit()
    response.headers["ETag"] = etag(firm)
    return firm


@router.delete("/{firm_id}", status_code=204)
def erase_firm(
    firm_id: IdPath, session: SessionDep, principal: PrincipalDep, request_id: RequestIdDep
) -> Response:
    firm = firm_rules.firm_owned_by(session, firm_id, principal)
    firm_rules.erase_firm(session, firm, principal, request_id)
    session.commit()
    return Response(status_code=204)


@router.post(
    "/bulk",
    response_class=Response,
    responses={200: {"content": {"application/x-ndjson": {}}}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
        }
    },
)
async def bulk_import(
    request: Request,
    principal: PrincipalDep,
    settings: SettingsDep,
    request_id: RequestIdDep,
    import_id: Annotated[str, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")],
    batch_size: Annotated[int | None, Query(ge=1, le=20_000)] = None,
) -> Response:
    """One firm per line. Answers NDJSON: one result per input line, then a summary line."""
    require_role(principal, PrincipalRole.PORTAL)
    principal_id = principal.id
    assert principal_id is not None
    importer = _BulkImport(
        request.app.state.engine,
        principal_id=principal_id,
        import_id=import_id,
        request_id=request_id,
        batch_size=batch_size or settings.bulk_batch_size,
        max_lines=settings.bulk_max_lines,
    )
    try:
        await importer.consume(request.stream())
    finally:
        await importer.finish()
    return Response(importer.body(), media_type="application/x-ndjson")


class _BulkImport:
    """Reads NDJSON lines and pipelines them: batch k+1 is validated while batch k is written.

    Line numbers are physical (blank lines count, so they match the client's file).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        principal_id: int,
        import_id: str,
        request_id: str | None,
        batch_size: int,
        max_lines: int,
    ) -> None:
        self.engine = engine
        self.principal_id = principal_id
        self.import_id = import_id
        self.request_id = request_id
        self.batch_size = batch_size
        self.max_lines = max_lines
        self.results: list[bytes] = []
        self.summary = {"lines": 0, "created": 0, "updated": 0, "invalid": 0, "not_written": 0}
        self.batches = {"committed": 0, "rejected": 0, "already_committed": 0, "conflict": 0}
        self.pending: list[NumberedLine] = []
        self.batch_no = 0
        self.line_no = 0
        self.writing: asyncio.Future[BatchOutcome] | None = None

    async def consume(self, stream: AsyncIterator[bytes]) -> None:
        buffer = b""
        async for chunk in stream:
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            # An over-long line is cut one byte past the limit, so parse_line refuses it as an
            # invalid line however the body was chunked, and the buffer stays bounded.
            buffer = buffer[: MAX_LINE_BYTES + 1]
            for raw in complete:
                await self._line(raw)
        if buffer:
            await self._line(buffer)
        if self.summary["lines"] == 0:
            # An empty file is a client's mistake (a wrong path, a failed export), not an
            # import of nothing: say so rather than answer 200 with an empty summary.
            raise Unprocessable("the body holds no line: send one firm per line", field="body")
        if self.pending:
            await self._submit()

    async def _line(self, raw: bytes) -> None:
        self.line_no += 1
        if not raw.strip():
            return
        self.summary["lines"] += 1
        if self.summary["lines"] > self.max_lines:
            raise PayloadTooLarge(
                f"more than {self.max_lines} lines; the batches before line {self.line_no} "
                "were imported — split the file and resend the rest",
                field="body",
            )
        self.pending.append((self.line_no, raw[: MAX_LINE_BYTES + 1]))
        if len(self.pending) >= self.batch_size:
            await self._submit()

    async def _submit(self) -> None:
        batch, self.pending = self.pending, []
        prepared = await run_in_threadpool(prepare_batch, self.batch_no, batch)
        self.batch_no += 1
        await self._collect()
        self.writing = asyncio.ensure_future(
            run_in_threadpool(
                write_batch,
                self.engine,
                prepared,
                principal_id=self.principal_id,
                import_id=self.import_id,
                request_id=self.request_id,
            )
        )

    async def _collect(self) -> None:
        if self.writing is None:
            return
        outcome, self.writing = await self.writing, None
        self.batches[outcome.status] += 1
        for result in outcome.results:
            status = result["status"]
            if status in self.summary:
                self.summary[status] += 1
            elif status != "already_committed":
                self.summary["not_written"] += 1
            self.results.append(orjson.dumps(result))

    async def finish(self) -> None:
        """Wait for the batch in flight, so that the answer tells what was committed."""
        await self._collect()

    def body(self) -> bytes:
        tail = {
            "summary": self.summary,
            "batches": self.batches,
            "import_id": self.import_id,
            "batch_size": self.batch_size,
        }
        return b"\n".join([*self.results, orjson.dumps(tail)]) + b"\n"
