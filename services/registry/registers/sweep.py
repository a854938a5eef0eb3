"""Abandoned register uploads: expired, and their staged entries and batch rows deleted.

An upload left unpublished with no sign of life (``active_at``: its creation, a resend opening
it, a batch staged) for ``FINMATCH_REGISTER_UPLOAD_TTL_HOURS`` is abandoned. The sweep first
marks it ``expired`` in one short transaction, on the condition that it is still open and still
idle (a batch being staged holds the upload's row until it commits, and moves ``active_at``: on
PostgreSQL the sweep's UPDATE waits for it and then finds the upload active; SQLite serialises
the two). From then on no batch is staged and nothing is published under that upload. Its rows
are then deleted in chunks, one short transaction each; an expired upload that still has rows (a
sweep interrupted) is finished by the next sweep. Published uploads and their entries are never
touched: only open uploads are expired, and only expired ones lose rows.

It runs when an upload is opened (registers API) and in each dispatcher's periodic clean-up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.registry import audit
from services.registry.db import write_session
from services.registry.models import ImportBatch
from services.registry.models.columns import table_of, utcnow
from services.registry.models.register import EXPIRED, OPEN
from services.registry.registers.tables import ENTRY, UPLOAD

logger = logging.getLogger("finmatch.registry.registers")
BATCH = table_of(ImportBatch)
# Rows one delete statement removes: a short transaction, a bounded lock (5,000 entries are
# tens of milliseconds), and an upload of 100,000 lines is gone in 20 statements.
SWEEP_CHUNK_ROWS = 5_000
# How often each dispatcher sweeps (besides every upload opened): the TTL is hours.
SWEEP_INTERVAL_SECONDS = 3_600.0


@dataclass
class SweepResult:
    expired: int = 0  # uploads expired by this sweep
    entries: int = 0  # register_entry rows deleted
    batches: int = 0  # import_batch rows deleted


def _batch_import_id(upload_id: Any) -> Any:
    """``RegisterUpload.batch_import_id`` as SQL: the upload's name in import_batch."""
    return sa.literal("register-upload:") + sa.cast(upload_id, sa.String)


def _idle_since(cutoff: datetime) -> sa.ColumnElement[bool]:
    """An open upload with no sign of life since ``cutoff``: neither its row nor a batch."""
    recent_batch = (
        sa.exists()
        .where(BATCH.c.principal_id == UPLOAD.c.principal_id)
        .where(BATCH.c.import_id == _batch_import_id(UPLOAD.c.id))
        .where(BATCH.c.committed_at >= cutoff)
    )
    return sa.and_(
        UPLOAD.c.status == OPEN,
        sa.func.coalesce(UPLOAD.c.active_at, UPLOAD.c.created_at) < cutoff,
        ~recent_batch,
    )


def expire_idle_uploads(engine: Engine, cutoff: datetime) -> int:
    """Mark every upload idle since ``cutoff`` expired, each in its own transaction with its
    audit entry; the uploads expired."""
    with engine.connect() as conn:
        candidates = conn.execute(
            sa.select(UPLOAD.c.id).where(_idle_since(cutoff)).order_by(UPLOAD.c.id)
        ).all()
    expired = 0
    for (upload_pk,) in candidates:
        with write_session(engine) as session:
            now = utcnow()
            # The condition again, in the UPDATE: a resend may have opened it meanwhile.
            row = session.execute(
                sa.update(UPLOAD)
                .where(UPLOAD.c.id == upload_pk)
                .where(_idle_since(cutoff))
                .values(status=EXPIRED, expired_at=now)
                .returning(
                    UPLOAD.c.principal_id,
                    UPLOAD.c.kind,
                    UPLOAD.c.upload_id,
                    UPLOAD.c.entries,
                    UPLOAD.c.active_at,
                )
            ).first()
            if row is None:
                session.rollback()
                continue
            audit.record(
                session,
                principal_id=row.principal_id,
                action="register_upload_expired",
                entity="register_upload",
                entity_id=upload_pk,
                detail={
                    "kind": row.kind,
                    "upload_id": row.upload_id,
                    "entries": row.entries,
                    "active_at": row.active_at.isoformat() if row.active_at else None,
                },
            )
            session.commit()
            expired += 1
    return expired


def _delete_chunk(engine: Engine, table: sa.Table, where: sa.ColumnElement[bool], key: Any) -> int:
    """Delete up to SWEEP_CHUNK_ROWS rows of ``table`` matching ``where`` in one transaction
    (``key`` picks them among those; it need not be unique alone); on PostgreSQL the rows
    another sweep holds are skipped, never waited for."""
    chosen = sa.select(key).where(where).limit(SWEEP_CHUNK_ROWS)
    if engine.dialect.name == "postgresql":
        chosen = chosen.with_for_update(skip_locked=True)
    with write_session(engine) as session, session.begin():
        result = session.execute(
            sa.delete(table).where(where).where(key.in_(chosen.scalar_subquery()))
        )
        return int(getattr(result, "rowcount", 0) or 0)


def purge_expired_uploads(engine: Engine) -> tuple[int, int]:
    """Delete the entries and batch rows of every expired upload that still has some, in
    chunks; the (entries, batches) deleted."""
    has_entries = sa.exists().where(ENTRY.c.added_in == UPLOAD.c.id)
    has_batches = (
        sa.exists()
        .where(BATCH.c.principal_id == UPLOAD.c.principal_id)
        .where(BATCH.c.import_id == _batch_import_id(UPLOAD.c.id))
    )
    with engine.connect() as conn:
        uploads = conn.execute(
            sa.select(UPLOAD.c.id, UPLOAD.c.principal_id)
            .where(UPLOAD.c.status == EXPIRED)
            .where(has_entries | has_batches)
            .order_by(UPLOAD.c.id)
        ).all()
    entries = batches = 0
    for upload_pk, principal_id in uploads:
        staged = ENTRY.c.added_in == upload_pk
        while (count := _delete_chunk(engine, ENTRY, staged, ENTRY.c.id)) > 0:
            entries += count
        # import_batch has a composite key: within one import, batch_no names a row.
        of_upload = (BATCH.c.principal_id == principal_id) & (
            BATCH.c.import_id == f"register-upload:{upload_pk}"
        )
        while (count := _delete_chunk(engine, BATCH, of_upload, BATCH.c.batch_no)) > 0:
            batches += count
    return entries, batches


def sweep_abandoned_uploads(
    engine: Engine, ttl_hours: float, now: datetime | None = None
) -> SweepResult:
    """Expire the uploads idle for ``ttl_hours`` and delete the staged rows of every expired
    upload."""
    cutoff = (now or utcnow()) - timedelta(hours=ttl_hours)
    result = SweepResult(expired=expire_idle_uploads(engine, cutoff))
    result.entries, result.batches = purge_expired_uploads(engine)
    if result.expired or result.entries or result.batches:
        logger.info(
            "abandoned register uploads: %d expired, %d staged entries and %d batch rows deleted",
            result.expired,
            result.entries,
            result.batches,
            extra={"expired": result.expired, "entries": result.entries},
        )
    return result
