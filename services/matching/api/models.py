"""Model lifecycle endpoints: current model, queue a training job, list, promote, roll back."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request
from pydantic import BaseModel

from services.matching.jobs import TrainingBusy
from services.matching.lifecycle import ModelManager
from services.matching.registry_client import RegistryError
from services.matching.train import TrainingRefused
from shared.error_codes import ErrorCode
from shared.errors import Conflict, NotFound, Unprocessable
from shared.schemas.matching import TrainRequest
from shared.schemas.training import JobTrigger

router = APIRouter(prefix="/internal/models", tags=["models"])
Actor = Annotated[int | None, Header(alias="X-Principal-Id", ge=1, le=2**63 - 1)]
Version = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]


def _models(request: Request) -> ModelManager:
    manager: ModelManager = request.app.state.models
    return manager


class CurrentModel(BaseModel):
    version: str
    is_prior: bool
    meta: dict[str, Any]
    last_error: str | None


@router.get("/current", response_model=CurrentModel)
def current(request: Request) -> CurrentModel:
    manager = _models(request)
    return CurrentModel(
        version=manager.scorer.version,
        is_prior=manager.scorer.is_prior,
        meta=dict(manager.scorer.meta),
        last_error=manager.last_error,
    )


@router.post("/train", status_code=202)
async def train_now(request: Request, body: TrainRequest, actor: Actor = None) -> dict[str, Any]:
    """Queue a training job and run it here in the background; answers the queued job.

    422 ``training_refused`` when too few decisions exist to train on (known before any work);
    409 ``training_in_progress`` with ``job_id`` while a job is queued or running anywhere.
    """
    try:
        return await _models(request).submit(
            trigger=JobTrigger.ADMIN, auto_promote=body.auto_promote, actor=actor
        )
    except TrainingRefused as exc:
        raise Unprocessable(str(exc), code=ErrorCode.TRAINING_REFUSED) from exc
    except TrainingBusy as exc:
        raise Conflict(
            str(exc), code=ErrorCode.TRAINING_IN_PROGRESS, extra={"job_id": exc.job_id}
        ) from exc


@router.get("")
async def list_models(request: Request) -> list[dict[str, Any]]:
    return await _models(request).registry.list_models()


@router.post("/rollback")
async def rollback(request: Request, actor: Actor = None) -> dict[str, Any]:
    try:
        return await _models(request).rollback(actor=actor)
    except RegistryError as exc:
        if exc.status == 409:
            raise Conflict(
                "there is no earlier model to roll back to", code=ErrorCode.of(exc.code)
            ) from exc
        raise


@router.post("/{version}/promote")
async def promote(request: Request, version: Version, actor: Actor = None) -> dict[str, Any]:
    try:
        return await _models(request).promote(version, actor=actor)
    except RegistryError as exc:
        if exc.status == 404:
            raise NotFound(f"model version {version} not found") from exc
        raise
