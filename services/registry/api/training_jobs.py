"""Internal training jobs: matching asks for one, reports on it; the gateway reads them.

The registry is where a job lives so that every matching replica sees it and it outlives the
replica running it. One job is queued or running at a time (a unique partial index). A runner
renews its lease with every report; a job whose lease ran out is failed as "runner lost" the
next time anyone looks, so a replica that died mid-job never blocks training for good.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from services.registry import audit
from services.registry.api.deps import RequestIdDep, SessionDep, require_internal_token
from services.registry.models import TrainingJob
from services.registry.models.columns import utcnow
from shared.error_codes import ErrorCode
from shared.errors import Conflict, NotFound
from shared.schemas.training import (
    ACTIVE_STATUSES,
    FINISHED_STATUSES,
    JobCreate,
    JobStatus,
    JobUpdate,
    TrainingJobPublic,
)
from shared.strict_json import StrictJSONRoute

router = APIRouter(
    route_class=StrictJSONRoute,
    prefix="/internal/training-jobs",
    tags=["internal"],
    dependencies=[Depends(require_internal_token)],
)
JobId = Annotated[int, Path(ge=1, le=2**63 - 1)]
ACTIVE = [status.value for status in ACTIVE_STATUSES]
# Which status may follow which; a finished job never changes again.
NEXT: dict[str, set[str]] = {
    JobStatus.QUEUED.value: {JobStatus.RUNNING.value, JobStatus.FAILED.value},
    JobStatus.RUNNING.value: {JobStatus.SUCCEEDED.value, JobStatus.FAILED.value},
}


def _expire_stale(session: Session, now: datetime) -> None:
    """Fail the active jobs whose runner stopped reporting (flushed, not committed)."""
    stale = session.exec(
        select(TrainingJob)
        .where(col(TrainingJob.status).in_(ACTIVE))
        .where(col(TrainingJob.lease_until) < now)
        .with_for_update()
    ).all()
    for job in stale:
        last = job.heartbeat_at or job.created_at
        job.status = JobStatus.FAILED.value
        job.error = (
            f"runner lost: {job.runner} stopped reporting at {last.isoformat()} "
            f"(stage {job.stage}); the job was abandoned"
        )
        job.finished_at = now
        session.add(job)
    session.flush()


def _active(session: Session) -> TrainingJob | None:
    return session.exec(select(TrainingJob).where(col(TrainingJob.status).in_(ACTIVE))).first()


def _busy(job: TrainingJob | None) -> Conflict:
    which = "another job" if job is None else f"job {job.id} ({job.status})"
    return Conflict(
        f"a model is being trained: {which}; wait for it to finish",
        code=ErrorCode.TRAINING_IN_PROGRESS,
        extra={"job_id": None if job is None else job.id},
    )


@router.post("", response_model=TrainingJobPublic, status_code=201)
def create_job(
    body: JobCreate, session: SessionDep, request_id: RequestIdDep, response: Response
) -> TrainingJob:
    """A queued job for ``runner``; 409 ``training_in_progress`` (with ``job_id``) while
    another is queued or running."""
    now = utcnow()
    _expire_stale(session, now)
    session.commit()  # a lost job stays failed even if the insert below loses a race
    job = TrainingJob(
        status=JobStatus.QUEUED.value,
        trigger=body.trigger.value,
        requested_by=body.requested_by,
        auto_promote=body.auto_promote,
        runner=body.runner,
        created_at=now,
        lease_until=now + timedelta(seconds=body.lease_seconds),
    )
    session.add(job)
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise _busy(_active(session)) from exc
    audit.record(
        session,
        principal_id=body.requested_by,
        action="train",
        entity="training_job",
        entity_id=job.id,
        request_id=request_id,
        detail={"trigger": body.trigger.value, "auto_promote": body.auto_promote},
    )
    session.commit()
    response.headers["Location"] = f"/internal/training-jobs/{job.id}"
    return job


@router.get("", response_model=list[TrainingJobPublic])
def list_jobs(
    session: SessionDep, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> list[TrainingJob]:
    """The newest jobs first (a lost runner's job shows as failed)."""
    _expire_stale(session, utcnow())
    session.commit()
    return list(session.exec(select(TrainingJob).order_by(col(TrainingJob.id).desc()).limit(limit)))


def _get(session: Session, job_id: int, *, lock: bool = False) -> TrainingJob:
    stmt = select(TrainingJob).where(TrainingJob.id == job_id)
    if lock:
        stmt = stmt.with_for_update()
    job = session.exec(stmt).first()
    if job is None:
        raise NotFound(f"training job {job_id} not found", code=ErrorCode.JOB_NOT_FOUND)
    return job


@router.get("/{job_id}", response_model=TrainingJobPublic)
def get_job(job_id: JobId, session: SessionDep) -> TrainingJob:
    _expire_stale(session, utcnow())
    session.commit()
    return _get(session, job_id)


@router.post("/{job_id}/report", response_model=TrainingJobPublic)
def report(job_id: JobId, body: JobUpdate, session: SessionDep) -> TrainingJob:
    """The runner's heartbeat, progress or result; renews its lease. 409 ``job_not_owned``
    to another runner, ``job_finished`` once the job ended (e.g. failed as runner lost): the
    runner then stops and uploads nothing."""
    job = _get(session, job_id, lock=True)
    if job.runner != body.runner:
        raise Conflict(
            f"training job {job_id} is run by another runner", code=ErrorCode.JOB_NOT_OWNED
        )
    if job.status in {status.value for status in FINISHED_STATUSES}:
        raise Conflict(
            f"training job {job_id} already {job.status}: {job.error or 'done'}",
            code=ErrorCode.JOB_FINISHED,
            extra={"status": job.status},
        )
    now = utcnow()
    changes = body.changes()
    status = changes.pop("status", None)
    if status is not None and status != job.status:
        if status not in NEXT[job.status]:
            raise Conflict(
                f"training job {job_id} cannot go from {job.status} to {status}",
                code=ErrorCode.INVALID_TRANSITION,
                field="status",
            )
        job.status = status
        if status == JobStatus.RUNNING.value:
            job.started_at = now
        else:
            job.finished_at = now
    for name, value in changes.items():
        setattr(job, name, value)
    job.heartbeat_at = now
    job.lease_until = now + timedelta(seconds=body.lease_seconds)
    session.add(job)
    session.commit()
    return job
