"""Provenance of firms' gating attributes, read today from the published registers.

The registry computes each gating attribute's effective value where it serves firms: in the
firm answer (``provenance``, which the gateway ranks on), in the features it exports to
matching (``effective_columns``) and in an application's snapshot. Matching never knows a
register exists. Validity is a matter of dates, read at each request: a certificate counts
through its last valid day and stops the next, with no upload and no job.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.registry.registers.tables import ENTRY, REGISTER, current_uploads
from shared.china_date import today_in_china
from shared.enums import RegisterKind
from shared.schemas.firm import FirmPublic
from shared.schemas.registers import (
    GATING_FIELDS,
    REGISTER_LABELS,
    AttributeProvenance,
    ProvenanceStatus,
    RegisterReference,
)

Provenance = dict[str, AttributeProvenance]


@dataclass(frozen=True)
class Listed:
    """A register with a published version."""

    kind: RegisterKind
    version: int
    as_of: date

    def reference(self) -> RegisterReference:
        return RegisterReference(kind=self.kind, version=self.version, as_of=self.as_of)

    def named(self) -> str:
        return f"the {REGISTER_LABELS[self.kind][1]} (version {self.version}, as of {self.as_of})"


@dataclass(frozen=True)
class Entry:
    kind: str
    starts_on: date
    ends_on: date | None
    amount_yuan: int | None
    fields: dict[str, Any]

    def valid_on(self, day: date) -> bool:
        return self.starts_on <= day and (self.ends_on is None or day <= self.ends_on)


def published_registers(conn: Connection) -> dict[str, Listed]:
    rows = conn.execute(
        sa.select(REGISTER.c.kind, REGISTER.c.version, REGISTER.c.as_of).where(
            REGISTER.c.version > 0
        )
    )
    return {kind: Listed(RegisterKind(kind), version, as_of) for kind, version, as_of in rows}


def registers_and_entries(
    conn: Connection, codes: Sequence[str]
) -> tuple[dict[str, Listed], dict[str, list[Entry]]]:
    """The published registers, and each credit code's entries in their current versions
    (valid today or not), in one query per 900 codes."""
    registers: dict[str, Listed] = {}
    entries: dict[str, list[Entry]] = defaultdict(list)
    for start in range(0, max(len(codes), 1), 900):  # below SQLite's bound-parameter limit
        joined = REGISTER.outerjoin(
            ENTRY,
            sa.and_(
                ENTRY.c.kind == REGISTER.c.kind,
                ENTRY.c.credit_code.in_(codes[start : start + 900]),
                ENTRY.c.removed_in.is_(None),
                ENTRY.c.added_in.in_(current_uploads()),
            ),
        )
        rows = conn.execute(
            sa.select(
                REGISTER.c.kind,
                REGISTER.c.version,
                REGISTER.c.as_of,
                ENTRY.c.credit_code,
                ENTRY.c.starts_on,
                ENTRY.c.ends_on,
                ENTRY.c.amount_yuan,
                ENTRY.c.fields,
            )
            .select_from(joined)
            .where(REGISTER.c.version > 0)
            .order_by(REGISTER.c.kind, ENTRY.c.starts_on, ENTRY.c.id)
        )
        for kind, version, as_of, code, starts_on, ends_on, amount, fields in rows:
            registers[kind] = Listed(RegisterKind(kind), version, as_of)
            if code is not None:
                entries[code].append(Entry(kind, starts_on, ends_on, amount, fields))
    return registers, entries


# The same reading folded into the firm's own driver-level read on PostgreSQL (every uncached
# match reads its firm: one round trip, not three). Rows of [kind, version, as_of, starts_on,
# ends_on, amount_yuan, fields]; entry columns null for a register without the firm.
PG_REGISTERS_JSON = """(
  SELECT coalesce(json_agg(json_build_array(
           r.kind, r.version, r.as_of, e.starts_on, e.ends_on, e.amount_yuan, e.fields)
         ORDER BY r.kind, e.starts_on, e.id), '[]')
  FROM register r LEFT JOIN register_entry e
    ON e.kind = r.kind AND e.credit_code = firm.credit_code AND e.removed_in IS NULL
   AND e.added_in IN (SELECT u.id FROM register_upload u WHERE u.kind = r.kind
                      AND u.status = 'published' AND u.version >= r.base_version)
  WHERE r.version > 0
) AS registers_json"""


def provenance_from_json(
    firm: Mapping[str, Any], rows: Sequence[Sequence[Any]], today: date | None = None
) -> Provenance:
    """A firm's provenance from its ``registers_json`` column (see PG_REGISTERS_JSON)."""
    registers: dict[str, Listed] = {}
    entries: list[Entry] = []
    for kind, version, as_of, starts_on, ends_on, amount, fields in rows:
        registers[kind] = Listed(RegisterKind(kind), version, date.fromisoformat(as_of))
        if starts_on is not None:
            ends = None if ends_on is None else date.fromisoformat(ends_on)
            entries.append(Entry(kind, date.fromisoformat(starts_on), ends, amount, fields))
    return provenance_of(firm, registers, entries, today or today_in_china())


def provenance_of(
    declared: Mapping[str, Any],
    registers: Mapping[str, Listed],
    entries: Iterable[Entry],
    today: date,
) -> Provenance:
    """Each gating attribute: the portal's value, the register's reading today, and which
    one matching uses (the register's, wherever one is published)."""
    by_kind: dict[str, list[Entry]] = defaultdict(list)
    for entry in entries:
        by_kind[entry.kind].append(entry)
    out: Provenance = {}
    for name, kind in GATING_FIELDS.items():
        value = declared[name]
        listed = registers.get(kind) if kind is not None else None
        if listed is None:
            out[name] = AttributeProvenance(
                status=ProvenanceStatus.DECLARED, declared=value, value=value
            )
            continue
        own = by_kind.get(listed.kind, [])
        valid = [entry for entry in own if entry.valid_on(today)]
        reading: bool | int
        if isinstance(value, bool):
            reading = bool(valid)
        else:
            reading = sum(entry.amount_yuan or 0 for entry in valid)
        agrees = bool(reading) == bool(value)
        out[name] = AttributeProvenance(
            status=ProvenanceStatus.VERIFIED if agrees else ProvenanceStatus.CONTRADICTED,
            declared=value,
            value=reading,
            source=listed.reference(),
            evidence=[entry.fields for entry in valid],
            reason=None if agrees else _why(name, value, reading, listed, own, today),
        )
    return out


def _why(
    name: str, declared: Any, reading: Any, listed: Listed, own: list[Entry], today: date
) -> str:
    if not declared:
        held = (
            f" (¥{reading:,} in contracts running today)" if not isinstance(reading, bool) else ""
        )
        return f"{name} is declared {declared!r}, but {listed.named()} lists the firm{held}"
    ended = [entry.ends_on for entry in own if entry.ends_on is not None and entry.ends_on < today]
    if ended:
        return (
            f"{name} is declared {declared!r}, but the firm's entry in {listed.named()} "
            f"ended on {max(ended).isoformat()}"
        )
    if own:
        return (
            f"{name} is declared {declared!r}, but no entry of the firm in {listed.named()} "
            f"is valid on {today.isoformat()}"
        )
    return f"{name} is declared {declared!r}, but the firm is not in {listed.named()}"


def provenance_for(
    conn: Connection, firms: Sequence[Mapping[str, Any]], today: date | None = None
) -> list[Provenance]:
    """The provenance of each firm (its stored values, with its credit code), in order."""
    today = today or today_in_china()
    registers, entries = registers_and_entries(conn, [f["credit_code"] for f in firms])
    return [
        provenance_of(firm, registers, entries.get(firm["credit_code"], ()), today)
        for firm in firms
    ]


_PUBLIC_FIELDS = tuple(name for name in FirmPublic.model_fields if name != "provenance")


def public_values(firm: Any) -> dict[str, Any]:
    """A firm (a table row object or a mapping of its columns) as FirmPublic reads it."""
    if isinstance(firm, Mapping):
        return {name: firm[name] for name in _PUBLIC_FIELDS}
    return {name: getattr(firm, name) for name in _PUBLIC_FIELDS}


def firms_public(conn: Connection, firms: Sequence[Any]) -> list[FirmPublic]:
    values = [public_values(firm) for firm in firms]
    provenance = provenance_for(conn, values)
    return [
        FirmPublic.model_validate(v | {"provenance": p})
        for v, p in zip(values, provenance, strict=True)
    ]


def firm_public(conn: Connection, firm: Any) -> FirmPublic:
    return firms_public(conn, [firm])[0]


def effective_values(provenance: Provenance) -> dict[str, Any]:
    return {name: p.value for name, p in provenance.items()}


def effective_columns(
    conn: Connection, firm: sa.Table, names: Sequence[str], today: date | None = None
) -> list[Any]:
    """Columns of ``firm`` to select as matching's features: each gating attribute a published
    register covers is read from that register (valid today), the others as stored."""
    today = today or today_in_china()
    registers = published_registers(conn)
    columns: list[Any] = []
    for name in names:
        kind = GATING_FIELDS.get(name)
        if kind is None or kind.value not in registers:
            columns.append(firm.c[name])
            continue
        valid = sa.and_(
            ENTRY.c.kind == kind.value,
            ENTRY.c.credit_code == firm.c.credit_code,
            ENTRY.c.removed_in.is_(None),
            ENTRY.c.added_in.in_(current_uploads(kind.value)),
            ENTRY.c.starts_on <= today,
            sa.or_(ENTRY.c.ends_on.is_(None), ENTRY.c.ends_on >= today),
        )
        if isinstance(firm.c[name].type, sa.Boolean):
            columns.append(sa.exists().where(valid).label(name))
        else:
            total = sa.func.coalesce(sa.func.sum(ENTRY.c.amount_yuan), 0)
            columns.append(
                sa.select(sa.cast(total, sa.BigInteger)).where(valid).scalar_subquery().label(name)
            )
    return columns
