"""Institutions, principals and API keys (admin), and key resolution for the gateway."""

from __future__ import annotations

import hashlib
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from services.registry import audit
from services.registry.api.deps import (
    IdPath,
    PrincipalDep,
    ReadSessionDep,
    RequestIdDep,
    SessionDep,
    require_internal_token,
    require_role,
)
from services.registry.idempotency import IdempotentWriteRoute
from services.registry.models import ApiKey, Institution, Principal
from services.registry.models.columns import utcnow
from services.registry.pagination import page_of
from shared.enums import PrincipalRole
from shared.errors import Conflict, NotFound, Unauthorized
from shared.schemas.access import (
    InstitutionCreate,
    InstitutionPublic,
    KeyCreate,
    KeyCreated,
    KeyPublic,
    KeyResolve,
    PrincipalCreate,
    PrincipalPublic,
)
from shared.schemas.page import Page

router = APIRouter(prefix="/v1", tags=["access"], route_class=IdempotentWriteRoute)
internal = APIRouter(
    prefix="/internal", tags=["internal"], dependencies=[Depends(require_internal_token)]
)

KEY_BYTES = 32  # 256 bits of randomness


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
    key, api_key = issue_key(session, owner, body.label)
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
        key=key,
    )


def issue_key(session: Any, owner: Principal, label: str = "") -> tuple[str, ApiKey]:
    key = new_key(owner.role)
    api_key = ApiKey(
        principal_id=owner.id or 0, key_hash=hash_key(key), prefix=key[:12], label=label
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
    assert api_key.id is not None
    return KeyPublic(
        id=api_key.id,
        principal_id=api_key.principal_id,
        prefix=api_key.prefix,
        label=api_key.label,
        revoked=True,
    )


@internal.post("/auth/resolve", response_model=PrincipalPublic)
def resolve_key(body: KeyResolve, session: ReadSessionDep) -> Principal:
    """The gateway sends a key's digest; an unknown or revoked key is 401."""
    row = session.exec(
        select(ApiKey, Principal)
        .join(Principal, col(Principal.id) == col(ApiKey.principal_id))
        .where(ApiKey.key_hash == body.key_hash)
    ).first()
    if row is None or row[0].revoked_at is not None:
        raise Unauthorized("unknown or revoked API key", code="invalid_key")
    return row[1]
