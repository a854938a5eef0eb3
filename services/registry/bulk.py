"""NDJSON bulk import of firms: per-line results, each batch all-or-nothing, resumable by import id.

A batch is ``batch_size`` consecutive non-blank lines. It commits whole (firms, its
``import_batch`` row and one audit entry in one transaction) or not at all. Sending the same
``import_id`` again skips the batches already committed, so a client that lost its connection
resends the file. Work is split in two stages so that the endpoint can validate batch k+1
(Python CPU) while batch k is being written (database time): ``prepare_batch`` then
``write_batch``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, NamedTuple, cast

import psycopg
import sqlalchemy as sa
from prometheus_client import Histogram
from pydantic import ValidationError
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from services.registry import audit
from services.registry.db import write_session
from services.registry.firm_cache import FirmCache
from services.registry.firms import stored_values
from services.registry.models import Firm, ImportBatch
from services.registry.models.columns import table_of, utcnow
from shared import strict_json
from shared.errors import validation_errors
from shared.firm_entries import EntryWrite, registered_micros
from shared.schemas.firm import FirmCreate, firm_warnings
from shared.strict_json import dotted

FIRM_TABLE = table_of(Firm)
WRITE_COLUMNS = [c.name for c in FIRM_TABLE.columns if c.name not in {"id"}]
UPDATE_COLUMNS = [
    c for c in WRITE_COLUMNS if c not in {"credit_code", "owner_principal_id", "created_at"}
]
MAX_LINE_BYTES = 64 * 1024
NumberedLine = tuple[int, bytes]

IMPORT_PHASE_SECONDS: Final = Histogram(
    "finmatch_bulk_import_phase_seconds",
    "Time of each phase of an NDJSON import's batches, by item (firm, decision) and phase: "
    "validate (its lines parsed and checked), write (its transaction, whole), wait (the "
    "pipeline waiting for the previous batch's write once this one is validated); and within "
    "a firm batch's write: lookup (committed before?), stage (COPY into the staging table), "
    "upsert (INSERT … ON CONFLICT), record (its import_batch row "
    "and audit entry added), entries (markers in Redis), commit (those two rows flushed, "
    "the commit's fsync).",
    ["item", "phase"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


@contextmanager
def timed_phase(item: str, phase: str) -> Iterator[None]:
    """Observe the block's wall time in IMPORT_PHASE_SECONDS."""
    started = time.perf_counter()
    try:
        yield
    finally:
        IMPORT_PHASE_SECONDS.labels(item, phase).observe(time.perf_counter() - started)


class LineInvalid(ValueError):
    """A line that cannot be imported; ``errors`` name the fields, as a 422 would."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("invalid line")
        self.errors = errors


def decode_line(raw: bytes) -> dict[str, Any]:
    """One NDJSON line as a JSON object, read strictly (a repeated key is refused); raises
    LineInvalid. Every NDJSON import (firms, past decisions) reads its lines with it."""
    if len(raw) > MAX_LINE_BYTES:
        raise LineInvalid([{"field": "line", "message": f"longer than {MAX_LINE_BYTES} bytes"}])
    try:
        data = strict_json.loads(raw)
    except strict_json.DuplicateKey as exc:
        error = {"field": dotted(exc.path), "message": exc.message(root="line")}
        raise LineInvalid([error | {"type": "json_duplicate_key"}]) from exc
    except ValueError as exc:  # malformed JSON, or bytes that are no text
        raise LineInvalid([{"field": "line", "message": f"not valid JSON: {exc}"}]) from exc
    if not isinstance(data, dict):
        raise LineInvalid([{"field": "line", "message": "each line must be a JSON object"}])
    return data


def parse_line(raw: bytes) -> dict[str, Any]:
    """Validate one NDJSON line into the values a firm row stores; raises LineInvalid."""
    data = decode_line(raw)
    try:
        return stored_values(FirmCreate.model_validate(data))
    except ValidationError as exc:
        raise LineInvalid(validation_errors(exc.errors())) from exc


@dataclass
class PreparedBatch:
    """A batch after validation, before any database work."""

    batch_no: int
    line_numbers: list[int]
    digest: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    row_lines: list[int] = field(default_factory=list)  # the line each row came from
    invalid: dict[int, list[dict[str, str]]] = field(default_factory=dict)

    @property
    def first_line(self) -> int:
        return self.line_numbers[0]


@dataclass
class BatchOutcome:
    results: list[dict[str, Any]] = field(default_factory=list)
    status: str = "committed"  # committed | rejected | already_committed | conflict


def prepare_batch(batch_no: int, lines: Sequence[NumberedLine]) -> PreparedBatch:
    """Parse and validate every line; find duplicates of a credit code inside the batch."""
    digest = hashlib.sha256(b"\n".join(raw for _n, raw in lines)).hexdigest()
    batch = PreparedBatch(batch_no=batch_no, line_numbers=[n for n, _ in lines], digest=digest)
    seen: dict[str, int] = {}
    for line_no, raw in lines:
        try:
            values = parse_line(raw)
        except LineInvalid as exc:
            batch.invalid[line_no] = exc.errors
            continue
        code = values["credit_code"]
        if code in seen:
            batch.invalid[line_no] = [
                {"field": "credit_code", "message": f"duplicate of line {seen[code]} in this batch"}
            ]
            continue
        seen[code] = line_no
        batch.rows.append(values)
        batch.row_lines.append(line_no)
    return batch


def _all_lines(batch: PreparedBatch, status: str, **extra: Any) -> list[dict[str, Any]]:
    return [{"line": n, "status": status, **extra} for n in batch.line_numbers]


def already_committed(batch: PreparedBatch) -> BatchOutcome:
    return BatchOutcome(_all_lines(batch, "already_committed"), "already_committed")


def rejected(batch: PreparedBatch, invalid: dict[int, list[dict[str, str]]]) -> BatchOutcome:
    """The whole batch refused: the invalid lines with their errors, the others not written."""
    results = []
    for n in batch.line_numbers:
        if n in invalid:
            results.append({"line": n, "status": "invalid", "errors": invalid[n]})
        else:
            results.append({"line": n, "status": "not_written", "reason": "batch_rejected"})
    return BatchOutcome(results=results, status="rejected")


def committed_before(
    session: Session, batch: PreparedBatch, *, principal_id: int, import_id: str
) -> BatchOutcome | None:
    """The outcome of a batch this import already committed (a resumed import skips it, or
    refuses it when its lines differ), or None when it is new."""
    done = session.get(ImportBatch, (principal_id, import_id, batch.batch_no))
    if done is None:
        return None
    if done.digest != batch.digest or done.first_line != batch.first_line:
        problem = {"field": "import_id", "message": "batch committed with other content"}
        return BatchOutcome(_all_lines(batch, "conflict", errors=[problem]), "conflict")
    return already_committed(batch)


def record_batch(
    session: Session, batch: PreparedBatch, *, principal_id: int, import_id: str
) -> None:
    """Mark the batch committed, in the transaction that writes its rows (its primary key makes
    a concurrent resume of the same batch fail at commit: see already_committed)."""
    session.add(
        ImportBatch(
            principal_id=principal_id,
            import_id=import_id,
            batch_no=batch.batch_no,
            first_line=batch.first_line,
            line_count=len(batch.line_numbers),
            digest=batch.digest,
        )
    )


class _OwnedElsewhere(Exception):
    """Some credit codes of the batch belong to another portal: the batch is refused."""

    def __init__(self, codes: set[str]) -> None:
        super().__init__("owned elsewhere")
        self.codes = codes


def write_batch(
    engine: Engine,
    batch: PreparedBatch,
    *,
    principal_id: int,
    import_id: str,
    request_id: str | None,
    firm_cache: FirmCache | None = None,
) -> BatchOutcome:
    """Write one validated batch in its own transaction, or refuse it whole. With a
    ``firm_cache``, each firm's entry in Redis gets a marker of its new version before the
    commit (not the firm itself: the gateway reads a marked firm from the registry once)."""
    with write_session(engine) as session:
        with timed_phase("firm", "lookup"):
            done = committed_before(session, batch, principal_id=principal_id, import_id=import_id)
        if done is not None:
            return done
        if batch.invalid:
            return rejected(batch, batch.invalid)

        now = utcnow()
        for values in batch.rows:
            values |= {
                "owner_principal_id": principal_id,
                "created_at": now,
                "updated_at": now,
                "version": 1,
            }
        try:
            written = _upsert(session, batch.rows, principal_id)
        except _OwnedElsewhere as exc:
            session.rollback()
            owned = [{"field": "credit_code", "message": "registered by another portal"}]
            invalid = {
                line: owned
                for line, row in zip(batch.row_lines, batch.rows, strict=True)
                if row["credit_code"] in exc.codes
            }
            return rejected(batch, invalid)
        created = sum(1 for w in written.values() if w.inserted)
        with timed_phase("firm", "record"):
            record_batch(session, batch, principal_id=principal_id, import_id=import_id)
            audit.record(
                session,
                principal_id=principal_id,
                action="bulk_upsert",
                entity="firm",
                request_id=request_id,
                detail={
                    "import_id": import_id,
                    "batch_no": batch.batch_no,
                    "created": created,
                    "updated": len(batch.rows) - created,
                },
            )
        if firm_cache is not None:  # markers of the new versions, before the commit
            with timed_phase("firm", "entries"):
                firm_cache.write(
                    [
                        EntryWrite(w.id, registered_micros(w.created_at), w.version)
                        for w in written.values()
                    ]
                )
        try:
            with timed_phase("firm", "commit"):
                session.commit()
        except IntegrityError:  # a concurrent resume committed this batch first
            session.rollback()
            return already_committed(batch)

    results = []
    for line, values in zip(batch.row_lines, batch.rows, strict=True):
        firm_id, inserted = written[values["credit_code"]][:2]
        result = {
            "line": line,
            "status": "created" if inserted else "updated",
            "credit_code": values["credit_code"],
            "id": firm_id,
        }
        # Only on the lines that have some: a big import's answer stays small.
        warnings = firm_warnings(values["annual_revenue_yuan"], values["export_revenue_usd"])
        if warnings:
            result["warnings"] = [w.model_dump() for w in warnings]
        results.append(result)
    return BatchOutcome(results=results)


def import_batch(
    engine: Engine,
    *,
    principal_id: int,
    import_id: str,
    batch_no: int,
    lines: Sequence[NumberedLine],
    request_id: str | None,
) -> BatchOutcome:
    """Both stages in one call (for callers that have no pipeline, like the demo seed)."""
    prepared = prepare_batch(batch_no, lines)
    return write_batch(
        engine, prepared, principal_id=principal_id, import_id=import_id, request_id=request_id
    )


class Written(NamedTuple):
    """A firm as a batch left it."""

    id: int
    inserted: bool
    created_at: datetime
    version: int


def _upsert(session: Session, rows: list[dict[str, Any]], principal_id: int) -> dict[str, Written]:
    """Insert or update every row; credit code → the firm as written."""
    if session.get_bind().dialect.name == "postgresql":
        return _upsert_postgres_copy(session, rows, principal_id)
    with timed_phase("firm", "upsert"):
        return _upsert_sqlite(session, rows, principal_id)


def _owners(session: Session, codes: list[str]) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    table = FIRM_TABLE
    for start in range(0, len(codes), 900):  # below SQLite's bound-parameter limit
        stmt = sa.select(table.c.credit_code, table.c.owner_principal_id, table.c.id).where(
            table.c.credit_code.in_(codes[start : start + 900])
        )
        for code, owner, firm_id in session.execute(stmt):
            out[code] = (owner, firm_id)
    return out


def _upsert_sqlite(
    session: Session, rows: list[dict[str, Any]], principal_id: int
) -> dict[str, Written]:
    # SQLite serialises writers (BEGIN IMMEDIATE), so nobody can slip in between the owner
    # check and the write.
    codes = [r["credit_code"] for r in rows]
    before = _owners(session, codes)
    foreign = {code for code, (owner, _id) in before.items() if owner != principal_id}
    if foreign:
        raise _OwnedElsewhere(foreign)
    stmt = sqlite_insert(FIRM_TABLE)
    stmt = stmt.on_conflict_do_update(
        index_elements=["credit_code"],
        set_={c: stmt.excluded[c] for c in UPDATE_COLUMNS if c != "version"}
        | {"version": FIRM_TABLE.c.version + 1},
    )
    session.execute(stmt, rows)
    table = FIRM_TABLE
    after: dict[str, Written] = {}
    for start in range(0, len(codes), 900):  # below SQLite's bound-parameter limit
        stmt_after = sa.select(
            table.c.credit_code, table.c.id, table.c.created_at, table.c.version
        ).where(table.c.credit_code.in_(codes[start : start + 900]))
        for code, firm_id, created_at, version in session.execute(stmt_after):
            after[code] = Written(firm_id, code not in before, created_at, version)
    return {code: after[code] for code in codes}


def _upsert_postgres_copy(
    session: Session, rows: list[dict[str, Any]], principal_id: int
) -> dict[str, Written]:
    """COPY into a temporary table, then INSERT … ON CONFLICT, which writes only the codes
    this portal owns or nobody does."""
    # The raw psycopg connection: SQLAlchemy has no COPY of its own.
    dbapi = cast("psycopg.Connection[Any]", session.connection().connection.dbapi_connection)
    cols = ", ".join(WRITE_COLUMNS)
    with dbapi.cursor() as cur:
        with timed_phase("firm", "stage"):
            # CREATE TABLE AS copies no NOT NULL and no id default: the staging rows need
            # neither.
            cur.execute(
                "CREATE TEMPORARY TABLE IF NOT EXISTS firm_import ON COMMIT DELETE ROWS "
                f"AS SELECT {cols} FROM firm WITH NO DATA"
            )
            with cur.copy(f"COPY firm_import ({cols}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row([row[c] for c in WRITE_COLUMNS])
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in UPDATE_COLUMNS if c != "version")
        with timed_phase("firm", "upsert"):
            # xmax = 0 on the returned row means it was inserted, not updated. A code another
            # portal registered is neither inserted nor updated (the WHERE), so it is missing
            # from what comes back: the batch is then refused and rolled back, below. No
            # separate owner check before: it was a join that read the whole firm table, once
            # per batch (13 ms at 95,000 firms, growing with the registry), for a refusal
            # this statement already finds.
            cur.execute(
                f"INSERT INTO firm ({cols}) SELECT {cols} FROM firm_import "
                f"ON CONFLICT (credit_code) DO UPDATE SET {updates}, version = firm.version + 1 "
                "WHERE firm.owner_principal_id = EXCLUDED.owner_principal_id "
                "RETURNING credit_code, id, (xmax = 0), created_at, version"
            )
            written = {
                code: Written(firm_id, bool(inserted), created_at, version)
                for code, firm_id, inserted, created_at, version in cur.fetchall()
            }
    if len(written) != len(rows):  # registered by another portal (before or meanwhile)
        raise _OwnedElsewhere({r["credit_code"] for r in rows} - set(written))
    return written
