"""The register tables as Core tables, and which uploads hold the current lists."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from services.registry.models import Register, RegisterEntry, RegisterUpload
from services.registry.models.columns import table_of
from services.registry.models.register import PUBLISHED

ENTRY = table_of(RegisterEntry)
UPLOAD = table_of(RegisterUpload)
REGISTER = table_of(Register)


def current_uploads(kind: str | None = None) -> sa.Select[Any]:
    """The ids of the uploads whose entries make the current lists (of one kind): published,
    from the kind's last replace on. Their entries count unless ``removed_in`` is set."""
    stmt = (
        sa.select(UPLOAD.c.id)
        .join(REGISTER, REGISTER.c.kind == UPLOAD.c.kind)
        .where(UPLOAD.c.status == PUBLISHED)
        .where(UPLOAD.c.version >= REGISTER.c.base_version)
    )
    return stmt if kind is None else stmt.where(UPLOAD.c.kind == kind)
