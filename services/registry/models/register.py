"""Official registers: each kind's published version, its uploads, and their entries.

An upload stages its entries (``added_in`` = the upload) while its lines stream in, batch by
batch; nothing reads them until the upload is published, in one transaction that computes the
diff and makes it the kind's next version. So a register is never half-replaced, and an upload
cut off mid-stream resumes by its ``upload_id``.

The current list is the entries of the published uploads from the last replace on
(``register.base_version``) that no later append superseded (``removed_in``). A replace thus
updates no entry (100,000 rows rewritten would cost seconds); an append marks only the entries
whose keys it lists again. Entries are never deleted: every version stays reconstructible.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from services.registry.models.columns import BigId, UtcDateTime, utcnow

# An upload left open (nothing sent for FINMATCH_REGISTER_UPLOAD_TTL_HOURS) is expired: its
# staged entries are deleted (registers/sweep.py), its upload_id stays taken.
OPEN, PUBLISHED, EXPIRED = "open", "published", "expired"


class Register(SQLModel, table=True):
    """A kind's current state: version 0 until its first upload is published."""

    __tablename__ = "register"

    kind: str = Field(max_length=32, primary_key=True)
    version: int = 0
    base_version: int = 0  # the last replace's version: earlier uploads are not current
    as_of: date | None = None
    current_upload: int | None = Field(
        default=None, foreign_key="register_upload.id", sa_type=BigId
    )
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class RegisterUpload(SQLModel, table=True):
    """One upload (one version once published), by the principal that sent it."""

    __tablename__ = "register_upload"
    __table_args__ = (
        sa.UniqueConstraint("principal_id", "kind", "upload_id", name="uq_register_upload_client"),
        sa.UniqueConstraint("kind", "version", name="uq_register_upload_version"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    kind: str = Field(max_length=32)
    upload_id: str = Field(max_length=64)
    principal_id: int = Field(foreign_key="principal.id", sa_type=BigId)
    mode: str = Field(max_length=16)
    as_of: date
    status: str = Field(default=OPEN, max_length=16)
    version: int | None = None
    entries: int = 0
    invalid_lines: int = 0
    added: int | None = None
    removed: int | None = None
    changed: int | None = None
    unchanged: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    published_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # The upload's last sign of life: its creation, a resend opening it, a batch staged. An open
    # upload idle longer than the TTL is abandoned (NULL: created_at).
    active_at: datetime | None = Field(default_factory=utcnow, sa_type=UtcDateTime)
    expired_at: datetime | None = Field(default=None, sa_type=UtcDateTime)

    @property
    def batch_import_id(self) -> str:
        """Its name in import_batch, the bulk imports' record of committed batches."""
        return f"register-upload:{self.id}"


class RegisterEntry(SQLModel, table=True):
    """One line of an upload as stored: the firm, its validity period and the line's fields."""

    __tablename__ = "register_entry"
    __table_args__ = (
        sa.UniqueConstraint("added_in", "entry_key", name="uq_register_entry_upload_key"),
        # A firm's entries, for its provenance; a kind's entries by key, for the diff.
        sa.Index("ix_register_entry_firm", "credit_code", "kind"),
        sa.Index("ix_register_entry_key", "kind", "entry_key"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    kind: str = Field(max_length=32)
    added_in: int = Field(foreign_key="register_upload.id", sa_type=BigId)
    removed_in: int | None = Field(default=None, foreign_key="register_upload.id", sa_type=BigId)
    line: int
    entry_key: str = Field(max_length=100)
    credit_code: str = Field(max_length=18)
    starts_on: date
    ends_on: date | None = None
    amount_yuan: int | None = Field(default=None, sa_type=sa.BigInteger)
    level: str | None = Field(default=None, max_length=16)
    digest: str = Field(max_length=32)
    fields: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
