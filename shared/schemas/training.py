"""Training jobs: an admin's (or the automatic) "train a challenger", run in the background.

The registry keeps each job (it survives a matching restart and is seen by every replica);
the matching replica that runs one reports its progress and result through the registry.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)
FINISHED_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED)


class JobTrigger(StrEnum):
    ADMIN = "admin"  # POST /v1/admin/models/train
    AUTO = "auto"  # automatic retraining after FINMATCH_RETRAIN_AFTER_DECISIONS decisions
    CLI = "cli"  # python -m services.matching.cli train


class JobOutcome(BaseModel):
    """What became of the challenger: its version, and whether (and why) it now serves."""

    version: str
    algorithm: str
    promoted: bool
    reason: str
    champion_version: str | None = None
    champion_metrics: dict[str, float] | None = None


class JobRefit(BaseModel):
    """The served model's own fit: every decided row, identified by their sha256."""

    rows: int
    data_sha256: str


class TrainingJobPublic(BaseModel):
    """A training job as admins see it (``GET /v1/admin/models/jobs/{job_id}``)."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 7,
                    "status": "succeeded",
                    "trigger": "admin",
                    "requested_by": 1,
                    "auto_promote": True,
                    "progress": 1.0,
                    "stage": "done",
                    "created_at": "2027-02-10T09:00:00Z",
                    "started_at": "2027-02-10T09:00:00.2Z",
                    "heartbeat_at": "2027-02-10T09:00:41Z",
                    "finished_at": "2027-02-10T09:00:41Z",
                    "metrics": {"auc": 0.83, "brier": 0.17, "log_loss": 0.51, "n": 1800.0},
                    "refit": {"rows": 9000, "data_sha256": "3f1c…"},
                    "error": None,
                    "outcome": {
                        "version": "m-20270210T090000-3f1c2a9b",
                        "algorithm": "hist_gradient_boosting",
                        "promoted": True,
                        "reason": "log_loss 0.5100 beats the champion's 0.5321 on 1200 "
                        "holdout decisions it never saw",
                        "champion_version": "m-20270201T080000-0a1b2c3d",
                        "champion_metrics": {"log_loss": 0.5321},
                    },
                }
            ]
        },
    )

    id: int
    status: JobStatus
    trigger: JobTrigger
    requested_by: int | None = Field(description="the admin who asked; null for auto and cli")
    auto_promote: bool
    progress: float = Field(ge=0.0, le=1.0, description="0 to 1, by stage")
    stage: str = Field(description="queued, exporting, training, uploading, judging, done")
    created_at: datetime
    started_at: datetime | None
    heartbeat_at: datetime | None
    finished_at: datetime | None
    metrics: dict[str, float] | None = Field(
        description="the chosen model's scores on the time-ordered holdout"
    )
    refit: JobRefit | None
    error: str | None
    outcome: JobOutcome | None


class JobCreate(BaseModel):
    """Matching asks the registry for a job (409 ``training_in_progress`` while one is active)."""

    model_config = ConfigDict(extra="forbid")

    trigger: JobTrigger
    requested_by: int | None = Field(default=None, ge=1, le=2**63 - 1)
    auto_promote: bool = True
    runner: str = Field(min_length=1, max_length=128)
    lease_seconds: float = Field(gt=0, le=3600)


class JobUpdate(BaseModel):
    """The runner's report: a heartbeat (renews the lease), progress, or the end."""

    model_config = ConfigDict(extra="forbid")

    runner: str = Field(min_length=1, max_length=128)
    lease_seconds: float = Field(gt=0, le=3600)
    status: JobStatus | None = None
    stage: str | None = Field(default=None, max_length=32)
    progress: float | None = Field(default=None, ge=0.0, le=1.0)
    metrics: dict[str, float] | None = None
    refit: JobRefit | None = None
    error: str | None = Field(default=None, max_length=2000)
    outcome: JobOutcome | None = None

    def changes(self) -> dict[str, Any]:
        """The fields given, besides who reports and for how long."""
        return self.model_dump(mode="json", exclude_unset=True, exclude={"runner", "lease_seconds"})
