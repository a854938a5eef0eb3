"""``firm.verification_changed``: a register's publication tells each portal which of its firms'
gating attributes now read otherwise.

Written in the publishing transaction (the outbox), one event per firm and attribute whose
reading changed in a way that matters to its portal: the value matching uses, or whether the
register contradicts the declaration (a warning appears or goes). A firm declaring nothing and
absent from the register's first version reads the same before and after (declared false, then
verified false) and is not told.

Expiry needs no write, so it writes no event of its own: each event says until when its
reading holds (``holds_until``: the last day before an entry of the firm's ends or begins,
None when nothing is due), and a portal that must know the day a certificate lapses reads it
there. A firm's answer always shows the reading of the day.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from services.registry import events
from services.registry.models import Firm, RegisterUpload
from services.registry.models.columns import table_of
from services.registry.registers.provenance import (
    Entry,
    Provenance,
    provenance_of,
    public_values,
    registers_and_entries,
)
from services.registry.registers.tables import ENTRY, current_uploads
from shared.china_date import today_in_china
from shared.enums import RegisterKind
from shared.schemas.registers import REGISTERED_FIELDS, ProvenanceStatus
from shared.schemas.webhooks import EventType

FIRM = table_of(Firm)
_FIELD_OF = {kind: name for name, kind in REGISTERED_FIELDS.items()}


@dataclass(frozen=True)
class Before:
    """The firms an upload may change, and their attribute's reading before it."""

    kind: RegisterKind
    firms: list[dict[str, Any]]
    readings: list[tuple[Any, bool]]  # (value, contradicted) per firm


def _affected(session: Session, upload: RegisterUpload, first: bool) -> list[dict[str, Any]]:
    """Registered firms on the upload, or on the list it supersedes (a replace: all of it), or
    (the kind's first version) declaring the attribute: only their reading can change."""
    kind = upload.kind
    codes = sa.select(ENTRY.c.credit_code).where(ENTRY.c.added_in == upload.id)
    if upload.mode == "replace":
        listed = (
            sa.select(ENTRY.c.credit_code)
            .where(ENTRY.c.kind == kind)
            .where(ENTRY.c.removed_in.is_(None))
            .where(ENTRY.c.added_in.in_(current_uploads(kind)))
        )
        codes = codes.union(listed)  # type: ignore[assignment]
    which: sa.ColumnElement[bool] = FIRM.c.credit_code.in_(codes)
    if first:
        column = FIRM.c[_FIELD_OF[RegisterKind(kind)]]
        declared = column.is_(True) if isinstance(column.type, sa.Boolean) else column > 0
        which = sa.or_(which, declared)
    rows = session.connection().execute(sa.select(FIRM).where(which).order_by(FIRM.c.id))
    return [dict(row._mapping) for row in rows]


def _readings(
    session: Session, kind: RegisterKind, firms: list[dict[str, Any]], today: date
) -> tuple[list[Provenance], dict[str, list[Entry]]]:
    codes = [firm["credit_code"] for firm in firms]
    registers, entries = registers_and_entries(session.connection(), codes)
    found = [
        provenance_of(public_values(firm), registers, entries.get(firm["credit_code"], ()), today)
        for firm in firms
    ]
    return found, entries


def before_publish(session: Session, upload: RegisterUpload, *, first: bool) -> Before:
    """What the firms the upload may change read before it is published (call before the
    entries are superseded)."""
    kind = RegisterKind(upload.kind)
    firms = _affected(session, upload, first)
    name = _FIELD_OF[kind]
    found, _ = _readings(session, kind, firms, today_in_china())
    readings = [(p[name].value, p[name].status is ProvenanceStatus.CONTRADICTED) for p in found]
    return Before(kind, firms, readings)


def holds_until(entries: Iterable[Entry], kind: RegisterKind, today: date) -> date | None:
    """The last day the firm's reading of ``kind`` stays as it is today, by its entries' dates
    (None: no entry of the firm ends or begins later)."""
    days: list[date] = []
    for entry in entries:
        if entry.kind != kind.value:
            continue
        if entry.starts_on > today:
            days.append(entry.starts_on - timedelta(days=1))
        elif entry.ends_on is not None and entry.ends_on >= today:
            days.append(entry.ends_on)
    return min(days, default=None)


def emit_changes(session: Session, before: Before) -> int:
    """One ``firm.verification_changed`` per firm whose reading changed, to its portal (call
    once the upload is published, in the same transaction); the number written."""
    if not before.firms:
        return 0
    session.flush()
    today = today_in_china()
    name = _FIELD_OF[before.kind]
    found, entries = _readings(session, before.kind, before.firms, today)
    written = 0
    for firm, (value, contradicted), now in zip(before.firms, before.readings, found, strict=True):
        after = now[name]
        if after.value == value and (after.status is ProvenanceStatus.CONTRADICTED) == contradicted:
            continue
        data = {
            "firm_id": firm["id"],
            "attribute": name,
            "provenance": after.model_dump(mode="json"),
            "previous": {"value": value, "contradicted": contradicted},
            "holds_until": _iso(
                holds_until(entries.get(firm["credit_code"], ()), before.kind, today)
            ),
        }
        events.emit(
            session, EventType.FIRM_VERIFICATION_CHANGED, data, [firm["owner_principal_id"]]
        )
        written += 1
    return written


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()
