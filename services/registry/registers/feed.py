"""What the firm feed carries of the official registers: which are published, and the entries
of the firms a page holds (see shared.schemas.internal.FirmFeedPage).

Entries go out with their dates, not as a value read today, so the reader (matching's firm
columns) evaluates them on the day it answers: a certificate stops counting after its last
day although nothing was written.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.registry.registers.tables import ENTRY, REGISTER, current_uploads
from shared.schemas.internal import REGISTER_ENTRY_COLUMNS


def published_versions(conn: Connection) -> dict[str, int]:
    """Every published register's kind and version."""
    rows = conn.execute(
        sa.select(REGISTER.c.kind, REGISTER.c.version).where(REGISTER.c.version > 0)
    )
    return {kind: int(version) for kind, version in rows}


def replaced_since(conn: Connection, changed_since: datetime | None) -> list[str]:
    """The registers published at or after ``changed_since`` (all published ones without it)."""
    stmt = sa.select(REGISTER.c.kind).where(REGISTER.c.version > 0).order_by(REGISTER.c.kind)
    if changed_since is not None:
        # Stamped inside the publishing transaction, as a firm's updated_at is: the feed's
        # overlap argument holds for it too.
        stmt = stmt.where(REGISTER.c.updated_at >= changed_since)
    return list(conn.execute(stmt).scalars())


def page_entries(
    conn: Connection,
    firm: sa.Table,
    *,
    after_id: int,
    up_to_id: int | None,
    changed_since: datetime | None,
    replaced: list[str],
) -> dict[str, list[Any]]:
    """The current entries, as columns, of the firms with after_id < id ≤ up_to_id (no upper
    bound when None) that were written since ``changed_since``, or whose register is in
    ``replaced``."""
    joined = ENTRY.join(firm, firm.c.credit_code == ENTRY.c.credit_code)
    which: list[Any] = [ENTRY.c.kind.in_(replaced)] if replaced else []
    if changed_since is not None:
        which.append(firm.c.updated_at >= changed_since)
    if not which:
        return {name: [] for name in REGISTER_ENTRY_COLUMNS}
    stmt = (
        sa.select(firm.c.id, ENTRY.c.kind, ENTRY.c.starts_on, ENTRY.c.ends_on, ENTRY.c.amount_yuan)
        .select_from(joined)
        .where(firm.c.id > after_id)
        .where(ENTRY.c.removed_in.is_(None))
        .where(ENTRY.c.added_in.in_(current_uploads()))
        .where(sa.or_(*which))
        .order_by(firm.c.id, ENTRY.c.kind, ENTRY.c.id)
    )
    if up_to_id is not None:
        stmt = stmt.where(firm.c.id <= up_to_id)
    rows = conn.execute(stmt).all()
    if not rows:
        return {name: [] for name in REGISTER_ENTRY_COLUMNS}
    return dict(zip(REGISTER_ENTRY_COLUMNS, map(list, zip(*rows, strict=True)), strict=True))
