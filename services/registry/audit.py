"""Audit entries, appended in the caller's transaction so a write and its record commit together."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import Session

from services.registry.models import AuditEntry
from services.registry.models.columns import table_of


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


def erased_since(conn: Connection, entity: str, since: datetime) -> list[int]:
    """Ids of the ``entity`` rows erased at or after ``since`` (their audit entries' time)."""
    entry = table_of(AuditEntry)
    stmt = sa.select(entry.c.entity_id).where(
        entry.c.at >= since, entry.c.entity == entity, entry.c.action == "erase"
    )
    return sorted({int(value) for value in conn.execute(stmt).scalars() if value})
