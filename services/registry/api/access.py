"""Institutions, principals and API keys (admin), and key resolution for the gateway."""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import datetime, timedelta
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import col, select

from services.registry import audit
from services.registry.api.deps import (
    EngineDep,
    IdPath,
    PrincipalDep,
    ReadSessionDep,
    RequestIdDep,
    SessionDep,
    require_internal_token,
    require_role,
)
from services.registry.db import write_session
from services.registry.idempotency import IdempotentWriteRoute
from services.registry.models import ApiKey, Institution, Principal
from services.registry.models.columns import table_of, utcnow
from services.registry.pagination import page_of
from shared.enums import PrincipalRole
from shared.error_codes import ErrorCode
from shared.errors import Conflict, NotFound, Unauthorized
from shared.schemas.access import (
    InstitutionCreate,
    InstitutionPublic,
    KeyCreate,
    KeyCreated,
    KeyPublic,
    KeyResolve,
    KeyResolved,
    PrincipalCreate,
    PrincipalPublic,
)
from shared.schemas.page import Page
from shared.strict_json import StrictJSONRoute

router = APIRouter(prefix="/v1", tags=["access"], route_class=IdempotentWriteRoute)
internal = APIRouter(
    route_class=StrictJSONRoute,
    prefix="/internal",
    tags=["internal"],
    dependencies=[Depends(require_internal_token)],
)

log = logging.getLogger("finmatch.registry.access")

KEY_BYTES = 32  # 256 bits of randomness
# last_used_at is written when a resolution finds it older than this: at most one write a
# minute per key, however many replicas resolve it (the gateway caches resolutions anyway).
LAST_USED_INTERVAL = timedelta(minutes=1)


def hash_key(key: str) -> str:
    # Keys are high-entropy random strings, so a fast unsalted digest is safe here (unlike
    # passwords); it also lets the gateway look a key up by its digest in one query.
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(role: str) -> str:
    return f"fm_{role[:4]}_{secrets.token_urlsafe(KEY_BYTES)}"


@router.post("/institutions", response_model=InstitutionPublic, status_code=201)
def create_institution(
    body: InstitutionCreate, session: SessionDep, principal: PrincipalDep, request_id: RequestIdDep
) -> Institution:
    require_role(principal, PrincipalRole.ADMIN)
    institution = Institution(**body.model_dump(mode="json"))
    session.add(institution)
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict("an institution with this name exists", field="name") from exc
    audit.record(
        session,
        principal_id=principal.id,
        action="create",
        entity="institution",
        entity_id=institution.id,
        request_id=request_id,
    )
    session.commit()
    return institution


@router.get("/institutions", response_model=Page[InstitutionPublic])
def list_institutions(
    session: SessionDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    stmt = select(Institution)
    return page_of(session, stmt, Institution.id, limit=limit, cursor=cursor)


@router.get("/institutions/{institution_id}", response_model=InstitutionPublic)
def get_institution(
    institution_id: IdPath, session: SessionDep, principal: PrincipalDep
) -> Institution:
    institution = session.get(Institution, institution_id)
    if institution is None:
        raise NotFound(f"institution {institution_id} not found")
    return institution


@router.post("/principals", response_model=PrincipalPublic, status_code=201)
def create_principal(
    body: PrincipalCreate, session: SessionDep, principal: PrincipalDep, request_id: RequestIdDep
) -> Principal:
    require_role(principal, PrincipalRole.ADMIN)
    if body.institution_id is not None and session.get(Institution, body.institution_id) is None:
        raise NotFound(f"institution {body.institution_id} not found", field="institution_id")
    created = Principal(
        role=body.role.value,
        name=body.name,
        institution_id=body.institution_id,
        town_code=body.town_code,
    )
    session.add(created)
    session.flush()
    audit.record(
        session,
        principal_id=principal.id,
        action="create",
        entity="principal",
        entity_id=created.id,
        request_id=request_id,
    )
    session.commit()
    return created


@router.get("/principals/{principal_id}", response_model=PrincipalPublic)
def get_principal(principal_id: IdPath, session: SessionDep, principal: PrincipalDep) -> Principal:
    if principal.role != PrincipalRole.ADMIN and principal.id != principal_id:
        raise NotFound(f"principal {principal_id} not found")
    found = session.get(Principal, principal_id)
    if found is None:
        raise NotFound(f"principal {principal_id} not found")
    return found


@router.post("/keys", response_model=KeyCreated, status_code=201)
def create_key(
    body: KeyCreate,
    session: SessionDep,
    principal: PrincipalDep,
    request_id: RequestIdDep,
    response: Response,
) -> KeyCreated:
    require_role(principal, PrincipalRole.ADMIN)
    # The key is shown once: no cache keeps it, nor the idempotency record (idempotency.py).
    response.headers["Cache-Control"] = "no-store"
    owner = session.get(Principal, body.principal_id)
    if owner is None:
        raise NotFound(f"principal {body.principal_id} not found", field="principal_id")
    key, api_key = issue_key(session, owner, body.label, expires_at=body.expires_at)
    audit.record(
        session,
        principal_id=principal.id,
        action="create",
        entity="api_key",
        entity_id=api_key.id,
        request_id=request_id,
        detail={"for_principal": owner.id},
    )
    session.commit()
    assert api_key.id is not None
    return KeyCreated(
        id=api_key.id,
        principal_id=owner.id or 0,
        prefix=api_key.prefix,
        label=api_key.label,
        expires_at=api_key.expires_at,
        key=key,
    )


def issue_key(
    session: Any, owner: Principal, label: str = "", *, expires_at: datetime | None = None
) -> tuple[str, ApiKey]:
    key = new_key(owner.role)
    api_key = ApiKey(
        principal_id=owner.id or 0,
        key_hash=hash_key(key),
        prefix=key[:12],
        label=label,
        expires_at=expires_at,
    )
    session.add(api_key)
    session.flush()
    return key, api_key


@router.post("/keys/{key_id}/revoke", response_model=KeyPublic)
def revoke_key(
    key_id: IdPath, session: SessionDep, principal: PrincipalDep, request_id: RequestIdDep
) -> KeyPublic:
    require_role(principal, PrincipalRole.ADMIN)
    api_key = session.get(ApiKey, key_id)
    if api_key is None:
        raise NotFound(f"key {key_id} not found")
    if api_key.revoked_at is None:
        api_key.revoked_at = utcnow()
        audit.record(
            session,
            principal_id=principal.id,
            action="revoke",
            entity="api_key",
            entity_id=key_id,
            request_id=request_id,
        )
        session.commit()
    return key_public(api_key)


@router.get("/keys", response_model=Page[KeyPublic])
def list_keys(
    session: SessionDep,
    principal: PrincipalDep,
    principal_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """Every key (or one principal's), oldest first: never a key itself, only its prefix."""
    require_role(principal, PrincipalRole.ADMIN)
    stmt = select(ApiKey)
    if principal_id is not None:
        stmt = stmt.where(ApiKey.principal_id == principal_id)
    page = page_of(session, stmt, ApiKey.id, limit=limit, cursor=cursor)
    return page | {"data": [key_public(api_key) for api_key in page["data"]]}


def key_public(api_key: ApiKey) -> KeyPublic:
    assert api_key.id is not None
    return KeyPublic(
        id=api_key.id,
        principal_id=api_key.principal_id,
        prefix=api_key.prefix,
        label=api_key.label,
        created_at=api_key.created_at,
        expires_at=api_key.expires_at,
        last_used_at=api_key.last_used_at,
        revoked=api_key.revoked_at is not None,
        revoked_at=api_key.revoked_at,
    )


@internal.post("/auth/resolve", response_model=KeyResolved)
def resolve_key(body: KeyResolve, session: ReadSessionDep, engine: EngineDep) -> KeyResolved:
    """The gateway sends a key's digest; an unknown, revoked or expired key is 401.

    The codes tell the gateway why (invalid_key, key_revoked, key_expired); the gateway
    answers its clients invalid_key for the first two alike.
    """
    row = session.exec(
        select(ApiKey, Principal)
        .join(Principal, col(Principal.id) == col(ApiKey.principal_id))
        .where(ApiKey.key_hash == body.key_hash)
    ).first()
    if row is None:
        raise Unauthorized("unknown or revoked API key", code=ErrorCode.INVALID_KEY)
    api_key, owner = row
    if api_key.revoked_at is not None:
        raise Unauthorized("unknown or revoked API key", code=ErrorCode.KEY_REVOKED)
    now = utcnow()
    if api_key.expires_at is not None and api_key.expires_at <= now:
        raise Unauthorized("the API key has expired", code=ErrorCode.KEY_EXPIRED)
    if api_key.last_used_at is None or api_key.last_used_at <= now - LAST_USED_INTERVAL:
        _touch(engine, api_key, now)
    assert api_key.id is not None
    return KeyResolved.model_validate(
        owner.model_dump() | {"key_id": api_key.id, "key_expires_at": api_key.expires_at}
    )


def _touch(engine: Engine, api_key: ApiKey, now: datetime) -> None:
    """Record the key's use. Conditional, so replicas resolving it at once write it once; a
    failure costs only the timestamp, never the caller's request."""
    table = table_of(ApiKey)
    stale = now - LAST_USED_INTERVAL
    try:
        with write_session(engine) as writer:
            writer.execute(
                sa.update(table)
                .where(
                    table.c.id == api_key.id,
                    sa.or_(table.c.last_used_at.is_(None), table.c.last_used_at <= stale),
                )
                .values(last_used_at=now)
            )
            writer.commit()
    except SQLAlchemyError:
        log.warning("could not record the use of key %s", api_key.id, exc_info=True)
