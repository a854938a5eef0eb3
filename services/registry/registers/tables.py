"""The register tables as Core tables, and which uploads are published (what readers see)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from services.registry.models import Register, RegisterEntry, RegisterUpload
from services.registry.models.columns import table_of
from services.registry.models.register import PUBLISHED

ENTRY = table_of(RegisterEntry)
UPLOAD = table_of(RegisterUpload)
REGISTER = table_of(Register)


def published_uploads(kind: str | None = None) -> sa.Select[Any]:
    """The ids of published uploads (of one kind): only their entries are ever read."""
    stmt = sa.select(UPLOAD.c.id).where(UPLOAD.c.status == PUBLISHED)
    return stmt if kind is None else stmt.where(UPLOAD.c.kind == kind)
