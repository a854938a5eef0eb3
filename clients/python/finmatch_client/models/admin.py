"""Admin: institutions, principals and API keys; training jobs and model versions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from finmatch_client.models._base import Answer, Body
from finmatch_client.models.enums import InstitutionKind, JobStatus, JobTrigger, PrincipalRole


class InstitutionCreate(Body):
    name: str
    kind: InstitutionKind


class InstitutionPublic(Answer):
    id: int
    name: str
    kind: InstitutionKind
    created_at: datetime


class PrincipalCreate(Body):
    """A portal, an institution's user (``institution_id``), an official (``town_code``; None
    for the whole city) or an admin."""

    role: PrincipalRole
    name: str
    town_code: str | None = None
    institution_id: int | None = None


class PrincipalPublic(Answer):
    id: int
    role: PrincipalRole
    name: str
    town_code: str | None = None
    institution_id: int | None
    created_at: datetime


class KeyCreate(Body):
    """``expires_at``: when the key stops working (with its UTC offset); None: until revoked."""

    principal_id: int
    label: str = ""
    expires_at: datetime | None = None


class KeyCreated(Answer):
    """``key`` is shown once: only its digest is stored."""

    id: int
    principal_id: int
    prefix: str
    label: str
    expires_at: datetime | None = None
    key: str


class KeyPublic(Answer):
    """A key as listed: never the key itself, only its first characters."""

    id: int
    principal_id: int
    prefix: str
    label: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked: bool
    revoked_at: datetime | None


class TrainRequest(Body):
    auto_promote: bool = True


class JobOutcome(Answer):
    """What became of the challenger: its version, and whether (and why) it now serves."""

    version: str
    algorithm: str
    promoted: bool
    reason: str
    champion_version: str | None = None
    champion_metrics: dict[str, float] | None = None


class JobRefit(Answer):
    """The served model's own fit: every decided row, identified by their sha256."""

    rows: int
    data_sha256: str


class TrainingJobPublic(Answer):
    id: int
    status: JobStatus
    trigger: JobTrigger
    requested_by: int | None
    auto_promote: bool
    progress: float
    stage: str
    created_at: datetime
    started_at: datetime | None
    heartbeat_at: datetime | None
    finished_at: datetime | None
    metrics: dict[str, float] | None
    refit: JobRefit | None
    error: str | None
    outcome: JobOutcome | None

    @property
    def finished(self) -> bool:
        return self.status in {JobStatus.SUCCEEDED, JobStatus.FAILED}


class ModelVersion(Answer):
    """A trained model; ``status`` champion (serving), challenger or retired."""

    version: str
    status: str
    algorithm: str
    metrics: dict[str, Any]
    meta: dict[str, Any]
    artifact_sha256: str
    size_bytes: int
    previous_version: str | None
    created_at: datetime
    promoted_at: datetime | None
