"""Register uploads: open (or resume) one, stage its batches, publish it as the next version.

Batches go through the bulk imports' machinery (services/registry/bulk.py): each commits with
its ``import_batch`` row, so a resend with the same ``upload_id`` skips what is staged, and a
batch whose content differs from the one staged is a conflict. Publishing is one transaction
under the kind's row lock: it counts the diff against the current list, moves the version on
(a replace also moves the base: the uploads before it stop counting; an append supersedes the
entries whose keys it lists again) and writes the audit entry.
"""

from __future__ import annotations

from datetime import date
from typing import Any, cast

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from services.registry import audit
from services.registry.bulk import (
    BatchOutcome,
    PreparedBatch,
    already_committed,
    committed_before,
    record_batch,
)
from services.registry.db import write_session
from services.registry.models import Register, RegisterUpload
from services.registry.models.columns import table_of, utcnow
from services.registry.models.register import EXPIRED, OPEN, PUBLISHED
from services.registry.registers import changes
from services.registry.registers.tables import ENTRY, UPLOAD, current_uploads
from shared.enums import RegisterKind
from shared.error_codes import ErrorCode
from shared.errors import Conflict, Unprocessable
from shared.schemas.registers import RegisterDiff, UploadMode, UploadSummary

ENTRY_COLUMNS = [c.name for c in ENTRY.columns if c.name not in {"id", "added_in", "removed_in"}]


def expired(upload_id: str) -> Conflict:
    """The answer to a resend of an upload the sweep expired (registers/sweep.py)."""
    return Conflict(
        f"upload {upload_id!r} was abandoned (nothing was sent for it for longer than an "
        "upload is kept open) and its staged lines are deleted: start a new upload, sending "
        "the whole file with a new upload_id",
        code=ErrorCode.UPLOAD_EXPIRED,
        field="upload_id",
    )


def open_upload(
    engine: Engine,
    *,
    principal_id: int,
    kind: RegisterKind,
    upload_id: str,
    mode: UploadMode,
    as_of: date,
    as_of_given: bool,
) -> RegisterUpload:
    """The upload with this id, created on its first request; a resend must keep its mode
    (and its as_of, when it gives one), and finds it active again unless it expired."""
    where = (
        (RegisterUpload.principal_id == principal_id)
        & (RegisterUpload.kind == kind.value)
        & (RegisterUpload.upload_id == upload_id)
    )
    with write_session(engine) as session:
        found = session.exec(select(RegisterUpload).where(where)).first()
        if found is None:
            found = RegisterUpload(
                kind=kind.value,
                upload_id=upload_id,
                principal_id=principal_id,
                mode=mode.value,
                as_of=as_of,
            )
            session.add(found)
            try:
                session.commit()
            except IntegrityError:  # the same upload started concurrently: take that one
                session.rollback()
                found = session.exec(select(RegisterUpload).where(where)).one()
        elif found.status == OPEN:
            # A resend is a sign of life: its batches already staged are skipped without a
            # write, and the sweep must not expire the upload meanwhile. Only while it is
            # open: a sweep that expired it first wins.
            session.execute(
                sa.update(UPLOAD)
                .where(UPLOAD.c.id == found.id)
                .where(UPLOAD.c.status == OPEN)
                .values(active_at=utcnow())
            )
            session.commit()
        session.refresh(found)
        session.expunge(found)
    if found.status == EXPIRED:
        raise expired(upload_id)
    if found.mode != mode.value:
        raise Conflict(
            f"upload {upload_id!r} was started as a {found.mode}; resend it the same way or "
            "use a new upload_id",
            code=ErrorCode.UPLOAD_MODE_DIFFERS,
            field="upload_id",
        )
    if as_of_given and found.as_of != as_of:
        raise Conflict(
            f"upload {upload_id!r} was started with as_of {found.as_of.isoformat()}",
            code=ErrorCode.UPLOAD_AS_OF_DIFFERS,
            field="as_of",
        )
    return found


def write_entries(
    engine: Engine, batch: PreparedBatch, *, upload: RegisterUpload, request_id: str | None
) -> BatchOutcome:
    """Stage one batch's entries in its own transaction; its invalid lines are reported, the
    valid ones written (a bad credit code never holds back the rest)."""
    upload_pk = upload.id
    assert upload_pk is not None
    principal_id, import_id = upload.principal_id, upload.batch_import_id
    with write_session(engine) as session:
        done = committed_before(session, batch, principal_id=principal_id, import_id=import_id)
        if done is not None:
            return done
        status = session.execute(
            sa.select(UPLOAD.c.status).where(UPLOAD.c.id == upload_pk).with_for_update()
        ).scalar_one()
        if status == EXPIRED:
            raise expired(upload.upload_id)
        if status != OPEN:
            problem = {"field": "upload_id", "message": "this upload is published: use a new one"}
            refused = [
                {"line": n, "status": "conflict", "errors": [problem]} for n in batch.line_numbers
            ]
            return BatchOutcome(refused, "conflict")
        invalid = dict(batch.invalid)
        try:
            earlier = _stage(session, batch.rows, upload_pk)
        except (IntegrityError, psycopg.errors.UniqueViolation):
            # A concurrent resend staged this batch first.
            session.rollback()
            return already_committed(batch)
        for row in batch.rows:
            if row["entry_key"] in earlier:
                message = f"duplicate of line {earlier[row['entry_key']]}"
                invalid[row["line"]] = [{"field": "credit_code", "message": message}]
        session.execute(
            sa.update(UPLOAD)
            .where(UPLOAD.c.id == upload_pk)
            .values(
                entries=UPLOAD.c.entries + len(batch.rows) - len(earlier),
                invalid_lines=UPLOAD.c.invalid_lines + len(invalid),
                active_at=utcnow(),
            )
        )
        record_batch(session, batch, principal_id=principal_id, import_id=import_id)
        if invalid:
            # The lines refused are kept in the audit trail: an answer can be lost.
            audit.record(
                session,
                principal_id=upload.principal_id,
                action="register_lines_refused",
                entity="register_upload",
                entity_id=upload_pk,
                request_id=request_id,
                detail={"batch_no": batch.batch_no, "lines": sorted(invalid)[:1000]},
            )
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            return already_committed(batch)
    results: list[dict[str, Any]] = []
    for line in batch.line_numbers:
        if line in invalid:
            results.append({"line": line, "status": "invalid", "errors": invalid[line]})
        else:
            results.append({"line": line, "status": "accepted"})
    return BatchOutcome(results=results)


def _stage(session: Session, rows: list[dict[str, Any]], upload_pk: int) -> dict[str, int]:
    """Write the rows as the upload's entries, but those whose key an earlier batch of the
    upload staged: their keys are returned, each with the line that staged it."""
    if not rows:
        return {}
    if session.get_bind().dialect.name != "postgresql":
        # SQLite serialises writers: nothing can slip in between the check and the insert.
        earlier = _staged_lines(session, upload_pk, [row["entry_key"] for row in rows])
        fresh = [row | {"added_in": upload_pk} for row in rows if row["entry_key"] not in earlier]
        if fresh:
            session.execute(ENTRY.insert(), fresh)
        return earlier
    # COPY (a fifth of a many-row INSERT's time) into a staging table, then one INSERT that
    # skips the keys already staged: the unique index finds them row by row, where a lookup
    # of the batch's keys among the upload's rows before it grows with the upload.
    dbapi = cast("psycopg.Connection[Any]", session.connection().connection.dbapi_connection)
    columns = ", ".join([*ENTRY_COLUMNS, "added_in"])
    with dbapi.cursor() as cur:
        cur.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS register_entry_import ON COMMIT DELETE ROWS "
            f"AS SELECT {columns} FROM register_entry WITH NO DATA"
        )
        with cur.copy(f"COPY register_entry_import ({columns}) FROM STDIN") as copy:
            fields = ENTRY_COLUMNS.index("fields")
            for row in rows:
                values = [row[c] for c in ENTRY_COLUMNS]
                values[fields] = psycopg.types.json.Json(values[fields])
                copy.write_row([*values, upload_pk])
        cur.execute(
            f"INSERT INTO register_entry ({columns}) SELECT {columns} FROM register_entry_import "
            "ON CONFLICT (added_in, entry_key) DO NOTHING RETURNING entry_key"
        )
        written = {key for (key,) in cur.fetchall()}
    skipped = [row["entry_key"] for row in rows if row["entry_key"] not in written]
    return _staged_lines(session, upload_pk, skipped) if skipped else {}


def _staged_lines(session: Session, upload_pk: int, keys: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for start in range(0, len(keys), 900):  # below SQLite's bound-parameter limit
        rows = session.execute(
            sa.select(ENTRY.c.entry_key, ENTRY.c.line)
            .where(ENTRY.c.added_in == upload_pk)
            .where(ENTRY.c.entry_key.in_(keys[start : start + 900]))
        )
        for key, line in rows:
            found[key] = line
    return found


# --- publishing ---------------------------------------------------------------------------


def _diff(session: Session, upload: RegisterUpload) -> RegisterDiff:
    new = ENTRY.alias("staged")
    current = ENTRY.alias("listed")
    joined = new.outerjoin(
        current,
        sa.and_(
            current.c.kind == upload.kind,
            current.c.entry_key == new.c.entry_key,
            current.c.removed_in.is_(None),
            current.c.added_in.in_(current_uploads(upload.kind)),
        ),
    )
    added, changed, unchanged = session.execute(
        sa.select(
            sa.func.count().filter(current.c.id.is_(None)),
            sa.func.count().filter(current.c.digest != new.c.digest),
            sa.func.count().filter(current.c.digest == new.c.digest),
        )
        .select_from(joined)
        .where(new.c.added_in == upload.id)
    ).one()
    removed = 0
    if upload.mode == UploadMode.REPLACE:
        listed = session.execute(
            sa.select(sa.func.count())
            .select_from(ENTRY)
            .where(ENTRY.c.kind == upload.kind)
            .where(ENTRY.c.removed_in.is_(None))
            .where(ENTRY.c.added_in.in_(current_uploads(upload.kind)))
        ).scalar_one()
        removed = listed - changed - unchanged
    return RegisterDiff(added=added, removed=removed, changed=changed, unchanged=unchanged)


def _supersede(session: Session, upload: RegisterUpload) -> None:
    """An append supersedes the current entries whose keys it lists again."""
    renewed = sa.select(ENTRY.c.entry_key).where(ENTRY.c.added_in == upload.id)
    session.execute(
        sa.update(ENTRY)
        .where(ENTRY.c.kind == upload.kind)
        .where(ENTRY.c.removed_in.is_(None))
        .where(ENTRY.c.added_in.in_(current_uploads(upload.kind)))
        .where(ENTRY.c.entry_key.in_(renewed))
        .values(removed_in=upload.id)
    )


def _lock_register(session: Session, kind: str) -> Register:
    """The kind's row, created at version 0 if absent, locked until the commit."""
    dialect = session.get_bind().dialect.name
    insert = postgres_insert if dialect == "postgresql" else sqlite_insert
    values = {"kind": kind, "version": 0, "base_version": 0, "updated_at": utcnow()}
    session.execute(insert(table_of(Register)).values(values).on_conflict_do_nothing())
    register = session.get(Register, kind, with_for_update=True, populate_existing=True)
    assert register is not None
    return register


def publish(engine: Engine, upload_pk: int, request_id: str | None) -> UploadSummary:
    """Make the upload the kind's next version (once: a published upload answers its record)."""
    with write_session(engine) as session:
        upload = session.get(RegisterUpload, upload_pk, with_for_update=True)
        assert upload is not None
        if upload.status == PUBLISHED:
            return summary_of(upload)
        if upload.status == EXPIRED:
            raise expired(upload.upload_id)
        if upload.mode == UploadMode.REPLACE and upload.entries == 0:
            raise Unprocessable(
                "no line of this upload is valid: replacing the register with it would empty "
                "it; nothing is published",
                code=ErrorCode.EMPTY_REGISTER_UPLOAD,
                field="body",
            )
        register = _lock_register(session, upload.kind)
        if session.get_bind().dialect.name == "postgresql":
            # The staged rows arrived by COPY moments ago, unseen by the planner: without
            # fresh statistics it nests loops over 100,000 × 100,000 rows (minutes) where a
            # hash join takes milliseconds. ANALYZE samples; it costs a fraction of a second.
            session.execute(sa.text("ANALYZE register_entry"))
        diff = _diff(session, upload)
        before = changes.before_publish(session, upload, first=register.version == 0)
        register.version += 1
        if upload.mode == UploadMode.REPLACE:
            register.base_version = register.version  # the uploads before it stop counting
        else:
            _supersede(session, upload)
        register.as_of = upload.as_of
        register.current_upload = upload.id
        register.updated_at = utcnow()
        upload.status = PUBLISHED
        upload.version = register.version
        upload.published_at = register.updated_at
        for name, count in diff.model_dump().items():
            setattr(upload, name, count)
        session.add_all([register, upload])
        changes.emit_changes(session, before)  # firm.verification_changed, to each portal
        audit.record(
            session,
            principal_id=upload.principal_id,
            action=f"register_{upload.mode}",
            entity="register",
            entity_id=f"{upload.kind}:{register.version}",
            request_id=request_id,
            detail={
                "upload_id": upload.upload_id,
                "as_of": upload.as_of.isoformat(),
                "entries": upload.entries,
                "invalid_lines": upload.invalid_lines,
                **diff.model_dump(),
            },
        )
        session.commit()
        session.refresh(upload)
        return summary_of(upload)


def summary_of(upload: RegisterUpload) -> UploadSummary:
    diff = None
    if upload.status == PUBLISHED:
        diff = RegisterDiff(
            added=upload.added or 0,
            removed=upload.removed or 0,
            changed=upload.changed or 0,
            unchanged=upload.unchanged or 0,
        )
    return UploadSummary(
        kind=RegisterKind(upload.kind),
        mode=UploadMode(upload.mode),
        upload_id=upload.upload_id,
        status=upload.status,
        version=upload.version,
        as_of=upload.as_of,
        entries=upload.entries,
        invalid_lines=upload.invalid_lines,
        diff=diff,
    )
