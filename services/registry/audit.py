"""Audit entries, appended in the caller's transaction so a write and its record commit together."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from services.registry.models import AuditEntry


def record(
    session: Session,
    *,
    principal_id: int | None,
    action: str,
    entity: str,
    entity_id: object = None,
    request_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditEntry(
            principal_id=principal_id,
            action=action,
            entity=entity,
            entity_id=None if entity_id is None else str(entity_id),
            request_id=request_id,
            detail=detail or {},
        )
    )
