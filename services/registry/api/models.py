"""Internal model store: the matching service uploads signed artifacts; promotion picks one."""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from services.registry import audit, events
from services.registry.api.deps import RequestIdDep, SessionDep, require_internal_token
from services.registry.models import (
    Decision,
    ImportedDecision,
    ModelStatus,
    ModelVersion,
    ModelVersionPublic,
)
from services.registry.models.columns import utcnow
from shared.error_codes import ErrorCode
from shared.errors import Conflict, NotFound, Unprocessable
from shared.strict_json import StrictJSONRoute

router = APIRouter(
    route_class=StrictJSONRoute,
    prefix="/internal",
    tags=["internal"],
    dependencies=[Depends(require_internal_token)],
)

VersionPath = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
MAX_ARTIFACT_BYTES = 200 * 1024 * 1024
ActorHeader = Annotated[int | None, Header(alias="X-Principal-Id", ge=1, le=2**63 - 1)]


class ModelUpload(BaseModel):
    version: str = Field(max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
    algorithm: str = Field(max_length=64)
    metrics: dict[str, float]
    meta: dict[str, Any]
    artifact_b64: str = Field(max_length=MAX_ARTIFACT_BYTES * 4 // 3 + 4)


def _get(session: Session, version: str, *, lock: bool = False) -> ModelVersion:
    stmt = select(ModelVersion).where(ModelVersion.version == version)
    if lock:
        stmt = stmt.with_for_update()
    found = session.exec(stmt).first()
    if found is None:
        raise NotFound(f"model version {version} not found")
    return found


@router.post("/models", response_model=ModelVersionPublic, status_code=201)
def upload_model(body: ModelUpload, session: SessionDep, request_id: RequestIdDep) -> ModelVersion:
    try:
        artifact = base64.b64decode(body.artifact_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Unprocessable("artifact_b64 is not valid base64", field="artifact_b64") from exc
    model = ModelVersion(
        version=body.version,
        algorithm=body.algorithm,
        metrics=body.metrics,
        meta=body.meta,
        artifact=artifact,
        artifact_sha256=hashlib.sha256(artifact).hexdigest(),
        size_bytes=len(artifact),
    )
    session.add(model)
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(f"model version {body.version} exists", field="version") from exc
    audit.record(
        session,
        principal_id=None,
        action="upload",
        entity="model",
        entity_id=body.version,
        request_id=request_id,
        detail={"algorithm": body.algorithm, "metrics": body.metrics},
    )
    session.commit()
    return model


@router.get("/models", response_model=list[ModelVersionPublic])
def list_models(
    session: SessionDep, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[ModelVersion]:
    stmt = select(ModelVersion).order_by(col(ModelVersion.id).desc()).limit(limit)
    return list(session.exec(stmt))


@router.get("/models/champion", response_model=ModelVersionPublic)
def champion(session: SessionDep) -> ModelVersion:
    found = session.exec(
        select(ModelVersion).where(ModelVersion.status == ModelStatus.CHAMPION.value)
    ).first()
    if found is None:
        raise NotFound("no model has been promoted yet", code=ErrorCode.NO_CHAMPION)
    return found


@router.get("/models/{version}", response_model=ModelVersionPublic)
def get_model(version: VersionPath, session: SessionDep) -> ModelVersion:
    return _get(session, version)


@router.get(
    "/models/{version}/artifact",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def get_artifact(version: VersionPath, session: SessionDep) -> Response:
    model = _get(session, version)
    return Response(
        model.artifact,
        media_type="application/octet-stream",
        headers={"X-Artifact-SHA256": model.artifact_sha256},
    )


def _make_champion(session: Session, model: ModelVersion, previous: str | None) -> None:
    current = session.exec(
        select(ModelVersion)
        .where(ModelVersion.status == ModelStatus.CHAMPION.value)
        .with_for_update()
    ).all()
    for old in current:
        old.status = ModelStatus.RETIRED.value
    session.flush()  # one champion at a time: retire before crowning
    model.status = ModelStatus.CHAMPION.value
    model.promoted_at = utcnow()
    model.previous_version = previous


@router.post("/models/{version}/promote", response_model=ModelVersionPublic)
def promote(
    version: VersionPath, session: SessionDep, request_id: RequestIdDep, actor: ActorHeader = None
) -> ModelVersion:
    model = _get(session, version, lock=True)
    if model.status == ModelStatus.CHAMPION.value:
        return model
    current = session.exec(
        select(ModelVersion.version).where(ModelVersion.status == ModelStatus.CHAMPION.value)
    ).first()
    _make_champion(session, model, current)
    events.model_promoted(session, version, current, how="promote", actor=actor)
    audit.record(
        session,
        principal_id=actor,
        action="promote",
        entity="model",
        entity_id=version,
        request_id=request_id,
        detail={"previous": current},
    )
    session.commit()
    return model


@router.post("/models/rollback", response_model=ModelVersionPublic)
def rollback(
    session: SessionDep, request_id: RequestIdDep, actor: ActorHeader = None
) -> ModelVersion:
    """Serve the champion's predecessor again."""
    current = session.exec(
        select(ModelVersion)
        .where(ModelVersion.status == ModelStatus.CHAMPION.value)
        .with_for_update()
    ).first()
    if current is None or current.previous_version is None:
        raise Conflict(
            "there is no earlier model to roll back to", code=ErrorCode.NO_PREVIOUS_MODEL
        )
    previous = _get(session, current.previous_version, lock=True)
    _make_champion(session, previous, previous.previous_version)
    events.model_promoted(session, previous.version, current.version, how="rollback", actor=actor)
    audit.record(
        session,
        principal_id=actor,
        action="rollback",
        entity="model",
        entity_id=previous.version,
        request_id=request_id,
        detail={"from": current.version},
    )
    session.commit()
    return previous


class DecisionCount(BaseModel):
    """The decisions training reads: the live ones and those institutions imported."""

    count: int
    live: int
    imported: int
    latest_decided_at: datetime | None


@router.get("/decisions/count", response_model=DecisionCount)
def decisions_count(session: SessionDep, since: datetime | None = None) -> DecisionCount:
    """How many decisions training would read (since a time): the live ones and the imported
    past ones (``POST /v1/decisions/history``), as the training export gives both. The matching
    service refuses to train below its minimum and retrains on growth. ``since`` counts live
    decisions decided after it and imported ones imported after it (an imported decision is
    dated in the past, but it is new to training when it arrives)."""
    live_stmt = select(func.count(), func.max(Decision.decided_at))
    imported_stmt = select(func.count(), func.max(ImportedDecision.decided_at))
    if since is not None:
        live_stmt = live_stmt.where(col(Decision.decided_at) > since)
        imported_stmt = imported_stmt.where(col(ImportedDecision.imported_at) > since)
    live, latest_live = session.exec(live_stmt).one()
    imported, latest_imported = session.exec(imported_stmt).one()
    dates = [moment for moment in (latest_live, latest_imported) if moment is not None]
    return DecisionCount(
        count=int(live) + int(imported),
        live=int(live),
        imported=int(imported),
        latest_decided_at=max(dates, default=None),
    )
