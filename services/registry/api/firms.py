"""Firms: upsert by credit code, read, optimistic update, erase, list, NDJSON bulk import."""

from __future__ import annotations

import re
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

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
from services.registry.api.ndjson import NDJSON_BODY, BatchSize, ImportId, NdjsonImport
from services.registry.bulk import prepare_batch, write_batch
from services.registry.db import around_commit, is_sqlite, statement_session
from services.registry.firm_cache import FirmCache, entry_of, tombstone_of
from services.registry.idempotency import IdempotentWriteRoute
from services.registry.models import Firm, Principal
from services.registry.pagination import page_of
from services.registry.registers.provenance import firm_public, firms_public, provenance_from_json
from shared.enums import PrincipalRole
from shared.errors import (
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
)
from shared.firm_entries import EntryWrite
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


def entry_stamp_of(request: Request) -> str | None:
    """The stamp of the entry this request will write (None without entries)."""
    cache: FirmCache | None = request.app.state.firm_cache
    return None if cache is None else cache.stamp()


def write_through(request: Request, session: Session, entry: EntryWrite) -> None:
    """The firm's entry in Redis (shared/firm_entries.py) around the session's commit: a marker
    of the new version (or the tombstone) before it, the entry itself after it."""
    cache: FirmCache | None = request.app.state.firm_cache
    if cache is None:
        return
    marker = EntryWrite(entry.firm_id, entry.registered, entry.version)
    after = partial(cache.write, [entry]) if entry.body else None
    around_commit(session, before=partial(cache.write, [marker]), after=after)


@router.post("", response_model=FirmPublic, status_code=201)
def upsert_firm(
    body: FirmCreate,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    request_id: RequestIdDep,
    response: Response,
) -> FirmPublic:
    require_role(principal, PrincipalRole.PORTAL)
    firm, created = firm_rules.upsert_firm(session, body, principal, request_id)
    stamp = entry_stamp_of(request)  # before the registers are read for the answer
    answer = firm_public(session.connection(), firm)
    write_through(request, session, entry_of(firm, answer, stamp))
    session.commit()
    response.status_code = 201 if created else 200
    response.headers["ETag"] = etag(firm)
    return answer


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
    page = page_of(session, stmt, Firm.id, limit=limit, cursor=cursor)
    page["data"] = firms_public(session.connection(), page["data"])
    return page


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
        row["provenance"] = provenance_from_json(row, row.pop("registers_json"))
        return FirmPublic.model_validate(row).model_dump_json().encode(), row["version"]
    with statement_session(engine) as session:  # two statements (three for an institution)
        firm = firm_rules.firm_visible_to(session, firm_id, principal)
        answer = firm_public(session.connection(), firm)
        return answer.model_dump_json().encode(), firm.version


@router.patch("/{firm_id}", response_model=FirmPublic)
def update_firm(
    firm_id: IdPath,
    body: FirmUpdate,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    request_id: RequestIdDep,
    response: Response,
    if_match: Annotated[str | None, Header(max_length=40)] = None,
) -> FirmPublic:
    firm = firm_rules.firm_owned_by(session, firm_id, principal)
    expected = parse_if_match(if_match)
    if expected is None:
        # "*": whatever version is current. Locked, as a product's row is, so that a writer
        # committing meanwhile makes this one wait and apply on top, not fail with a 412.
        session.refresh(firm, with_for_update=True)
        expected = firm.version
    firm = firm_rules.update_firm(session, firm, body, expected, principal, request_id)
    stamp = entry_stamp_of(request)  # before the registers are read for the answer
    answer = firm_public(session.connection(), firm)
    write_through(request, session, entry_of(firm, answer, stamp))
    session.commit()
    response.headers["ETag"] = etag(firm)
    return answer


@router.delete("/{firm_id}", status_code=204)
def erase_firm(
    firm_id: IdPath,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    request_id: RequestIdDep,
) -> Response:
    firm = firm_rules.firm_owned_by(session, firm_id, principal)
    write_through(request, session, tombstone_of(firm))
    firm_rules.erase_firm(session, firm, principal, request_id)
    session.commit()
    return Response(status_code=204)


@router.post(
    "/bulk",
    response_class=Response,
    responses={200: {"content": {"application/x-ndjson": {}}}},
    openapi_extra=NDJSON_BODY,
)
async def bulk_import(
    request: Request,
    principal: PrincipalDep,
    settings: SettingsDep,
    request_id: RequestIdDep,
    import_id: ImportId,
    batch_size: BatchSize = None,
) -> Response:
    """One firm per line. Answers NDJSON: one result per input line, then a summary line."""
    require_role(principal, PrincipalRole.PORTAL)
    principal_id = principal.id
    assert principal_id is not None
    write = partial(
        write_batch,
        request.app.state.engine,
        firm_cache=request.app.state.firm_cache,
        principal_id=principal_id,
        import_id=import_id,
        request_id=request_id,
    )
    importer = NdjsonImport(
        prepare_batch,
        write,
        import_id=import_id,
        statuses=("created", "updated"),
        item="firm",
        batch_size=batch_size or settings.bulk_batch_size,
        max_lines=settings.bulk_max_lines,
        pool=request.app.state.validation_pool,  # its prepare pickles
    )
    try:
        await importer.consume(request.stream())
    finally:
        await importer.finish()
    return Response(importer.body(), media_type="application/x-ndjson")
