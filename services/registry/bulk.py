"""NDJSON bulk import of firms: per-line results, each batch all-or-nothing, resumable by import id.

A batch is ``batch_size`` consecutive lines. It commits whole (firms, its ``import_batch`` row
and one audit entry in one transaction) or not at all. Sending the same ``import_id`` again
skips the batches already committed, so a client that lost its connection resends the file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
import psycopg
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from services.registry import audit
from services.registry.db import write_session
from services.registry.firms import stored_values
from services.registry.models import Firm, FirmCreate, ImportBatch
from services.registry.models.columns import table_of, utcnow
from shared.errors import validation_errors

FIRM_TABLE = table_of(Firm)
WRITE_COLUMNS = [c.name for c in FIRM_TABLE.columns if c.name not in {"id"}]
UPDATE_COLUMNS = [
    c for c in WRITE_COLUMNS if c not in {"credit_code", "owner_principal_id", "created_at"}
]
MAX_LINE_BYTES = 64 * 1024


@dataclass
class BatchOutcome:
    results: list[dict[str, Any]] = field(default_factory=list)
    status: str = "committed"  # committed | rejected | already_committed | conflict


def _line_error(line_no: int, errors: list[dict[str, str]]) -> dict[str, Any]:
    return {"line": line_no, "status": "invalid", "errors": errors}


def parse_line(raw: bytes) -> dict[str, Any]:
    """Validate one NDJSON line into the values a firm row stores; raises ValueError."""
    if len(raw) > MAX_LINE_BYTES:
        raise _LineInvalid([{"field": "line", "message": f"longer than {MAX_LINE_BYTES} bytes"}])
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _LineInvalid([{"field": "line", "message": f"not valid JSON: {exc}"}]) from exc
    if not isinstance(data, dict):
        raise _LineInvalid([{"field": "line", "message": "each line must be a JSON object"}])
    try:
        return stored_values(FirmCreate.model_validate(data))
    except ValidationError as exc:
        raise _LineInvalid(validation_errors(exc.errors())) from exc


class _LineInvalid(ValueError):
    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("invalid line")
        self.errors = errors


def import_batch(
    engine: Engine,
    *,
    principal_id: int,
    import_id: str,
    batch_no: int,
    first_line: int,
    lines: Sequence[bytes],
    request_id: str | None,
) -> BatchOutcome:
    """Validate and write one batch in its own transaction."""
    digest = hashlib.sha256(b"\n".join(lines)).hexdigest()
    outcome = BatchOutcome()
    with write_session(engine) as session:
        done = session.get(ImportBatch, (principal_id, import_id, batch_no))
        if done is not None:
            if done.digest != digest or done.first_line != first_line:
                outcome.status = "conflict"
                outcome.results = [
                    {
                        "line": first_line + i,
                        "status": "conflict",
                        "errors": [
                            {
                                "field": "import_id",
                                "message": "batch already committed with different content",
                            }
                        ],
                    }
                    for i in range(len(lines))
                ]
            else:
                outcome.status = "already_committed"
                outcome.results = [
                    {"line": first_line + i, "status": "already_committed"}
                    for i in range(len(lines))
                ]
            return outcome

        rows: list[dict[str, Any]] = []
        invalid: dict[int, list[dict[str, str]]] = {}
        seen: dict[str, int] = {}
        for i, raw in enumerate(lines):
            try:
                values = parse_line(raw)
            except _LineInvalid as exc:
                invalid[i] = exc.errors
                continue
            code = values["credit_code"]
            if code in seen:
                invalid[i] = [
                    {
                        "field": "credit_code",
                        "message": f"duplicate of line {first_line + seen[code]} in this batch",
                    }
                ]
                continue
            seen[code] = i
            rows.append(values)

        existing = _existing_owners(session, list(seen))
        for code, (owner, _firm_id) in existing.items():
            if owner != principal_id:
                invalid[seen[code]] = [
                    {"field": "credit_code", "message": "registered by another portal"}
                ]

        if invalid:
            outcome.status = "rejected"
            for i in range(len(lines)):
                if i in invalid:
                    outcome.results.append(_line_error(first_line + i, invalid[i]))
                else:
                    outcome.results.append(
                        {
                            "line": first_line + i,
                            "status": "not_written",
                            "reason": "batch_rejected",
                        }
                    )
            return outcome

        now = utcnow()
        for values in rows:
            values["owner_principal_id"] = principal_id
            values["created_at"] = now
            values["updated_at"] = now
            values["version"] = 1
        try:
            ids = _upsert(session, rows, principal_id)
            if len(ids) != len(rows):
                raise _OwnershipRace
            session.add(
                ImportBatch(
                    principal_id=principal_id,
                    import_id=import_id,
                    batch_no=batch_no,
                    first_line=first_line,
                    line_count=len(lines),
                    digest=digest,
                )
            )
            created = sum(1 for r in rows if r["credit_code"] not in existing)
            audit.record(
                session,
                principal_id=principal_id,
                action="bulk_upsert",
                entity="firm",
                request_id=request_id,
                detail={
                    "import_id": import_id,
                    "batch_no": batch_no,
                    "created": created,
                    "updated": len(rows) - created,
                },
            )
            session.commit()
        except (IntegrityError, _OwnershipRace):
            session.rollback()
            outcome.status = "rejected"
            outcome.results = [
                {"line": first_line + i, "status": "not_written", "reason": "concurrent_change"}
                for i in range(len(lines))
            ]
            return outcome

        for values in rows:
            code = values["credit_code"]
            outcome.results.append(
                {
                    "line": first_line + seen[code],
                    "status": "updated" if code in existing else "created",
                    "credit_code": code,
                    "id": ids[code],
                }
            )
        outcome.results.sort(key=lambda r: int(r["line"]))
        return outcome


class _OwnershipRace(Exception):
    """A code was registered by another portal between our check and our write."""


def _existing_owners(session: Session, codes: list[str]) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for start in range(0, len(codes), 900):
        chunk = codes[start : start + 900]
        stmt = sa.select(FIRM_TABLE.c.credit_code, FIRM_TABLE.c.owner_principal_id, FIRM_TABLE.c.id)
        for code, owner, firm_id in session.execute(
            stmt.where(FIRM_TABLE.c.credit_code.in_(chunk))
        ):
            out[code] = (owner, firm_id)
    return out


def _upsert(session: Session, rows: list[dict[str, Any]], principal_id: int) -> dict[str, int]:
    if session.get_bind().dialect.name == "postgresql":
        return _upsert_postgres_copy(session, rows)
    stmt = sqlite_insert(FIRM_TABLE)
    stmt = stmt.on_conflict_do_update(
        index_elements=["credit_code"],
        set_={c: stmt.excluded[c] for c in UPDATE_COLUMNS if c != "version"}
        | {"version": FIRM_TABLE.c.version + 1},
        where=FIRM_TABLE.c.owner_principal_id == stmt.excluded.owner_principal_id,
    )
    session.execute(stmt, rows)
    return {
        code: firm_id
        for code, (_o, firm_id) in _existing_owners(
            session, [r["credit_code"] for r in rows]
        ).items()
    }


def _upsert_postgres_copy(session: Session, rows: list[dict[str, Any]]) -> dict[str, int]:
    """COPY into a temporary table, then one INSERT … ON CONFLICT: the fastest safe upsert."""
    conn = session.connection()
    # The raw psycopg connection: SQLAlchemy has no COPY of its own.
    dbapi = cast("psycopg.Connection[Any]", conn.connection.dbapi_connection)
    cols = ", ".join(WRITE_COLUMNS)
    with dbapi.cursor() as cur:
        # CREATE TABLE AS copies no NOT NULL and no id default: the staging rows need neither.
        cur.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS firm_import ON COMMIT DELETE ROWS "
            f"AS SELECT {cols} FROM firm WITH NO DATA"
        )
        with cur.copy(f"COPY firm_import ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[c] for c in WRITE_COLUMNS])
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in UPDATE_COLUMNS if c != "version")
        cur.execute(
            f"INSERT INTO firm ({cols}) SELECT {cols} FROM firm_import "
            f"ON CONFLICT (credit_code) DO UPDATE SET {updates}, version = firm.version + 1 "
            "WHERE firm.owner_principal_id = EXCLUDED.owner_principal_id "
            "RETURNING credit_code, id"
        )
        return dict(cur.fetchall())
