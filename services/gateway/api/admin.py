"""Admin: institutions, principals and keys; training jobs; list, promote and roll back models."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from services.gateway.api.proxy import forward
from services.gateway.auth import CurrentPrincipal, keys_changed, require
from services.gateway.idempotency import IdempotentRoute
from services.gateway.model_version import refresh_model_version
from shared.enums import PrincipalRole
from shared.errors import PROBLEM_JSON, problem_responses
from shared.schemas.access import (
    InstitutionCreate,
    InstitutionPublic,
    KeyCreate,
    KeyCreated,
    KeyPublic,
    PrincipalCreate,
    PrincipalPublic,
)
from shared.schemas.matching import TrainRequest
from shared.schemas.page import Cursor, Page
from shared.schemas.training import TrainingJobPublic

router = APIRouter(prefix="/v1/admin", tags=["admin"], route_class=IdempotentRoute)
IdPath = Annotated[int, Path(ge=1, le=2**63 - 1)]
Version = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]


@router.post("/institutions", response_model=InstitutionPublic, status_code=201)
async def create_institution(
    body: InstitutionCreate, request: Request, principal: CurrentPrincipal
) -> Response:
    require(principal, PrincipalRole.ADMIN)
    return await forward(
        request, "POST", "/v1/institutions", principal, json=body.model_dump(mode="json")
    )


@router.get(
    "/institutions",
    response_model=Page[InstitutionPublic],
    summary="List institutions / 机构列表",
)
async def list_institutions(
    request: Request,
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Cursor = None,
) -> Response:
    """Every institution, oldest first, a page at a time (`limit`, `cursor`)."""
    require(principal, PrincipalRole.ADMIN)
    params = {"limit": limit, "cursor": cursor}
    return await forward(request, "GET", "/v1/institutions", principal, params=params)


@router.post("/principals", response_model=PrincipalPublic, status_code=201)
async def create_principal(
    body: PrincipalCreate, request: Request, principal: CurrentPrincipal
) -> Response:
    """A portal, an institution's user, an official (a town, or the city) or an admin."""
    require(principal, PrincipalRole.ADMIN)
    return await forward(
        request, "POST", "/v1/principals", principal, json=body.model_dump(mode="json")
    )


@router.post(
    "/keys",
    response_model=KeyCreated,
    status_code=201,
    summary="Issue an API key (shown once) / 签发密钥（仅显示一次）",
)
async def create_key(body: KeyCreate, request: Request, principal: CurrentPrincipal) -> Response:
    """A new key for a principal, optionally with `expires_at` (in the future, with its UTC
    offset): past it the key answers 401 `key_expired`.

    **Rotation**: issue a new key for the same principal, hand it over, then revoke the old
    one; until it is revoked (or expires) the old key keeps working, so the client can switch
    without a gap. `GET /v1/admin/keys?principal_id=` shows each key's `last_used_at`, to see
    when the old one has fallen out of use.
    """
    require(principal, PrincipalRole.ADMIN)
    return await forward(request, "POST", "/v1/keys", principal, json=body.model_dump(mode="json"))


@router.get("/keys", response_model=Page[KeyPublic], summary="List API keys / 密钥列表")
async def list_keys(
    request: Request,
    principal: CurrentPrincipal,
    principal_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Cursor = None,
) -> Response:
    """Every key, or one principal's: prefix, label, expiry, last use (updated at most once a
    minute, so it may lag the real last use by up to about a minute and a half), revocation.
    Never the key itself."""
    require(principal, PrincipalRole.ADMIN)
    params = {"principal_id": principal_id, "limit": limit, "cursor": cursor}
    return await forward(request, "GET", "/v1/keys", principal, params=params)


@router.post("/keys/{key_id:id}/revoke", response_model=KeyPublic)
async def revoke_key(key_id: IdPath, request: Request, principal: CurrentPrincipal) -> Response:
    """The key stops working at once on every replica sharing the Redis cache (without Redis,
    other replicas stop within FINMATCH_KEY_CACHE_SECONDS, 30 s by default)."""
    require(principal, PrincipalRole.ADMIN)
    answer = await forward(request, "POST", f"/v1/keys/{key_id}/revoke", principal)
    await keys_changed(request)
    return answer


@router.get("/models", summary="Model versions / 模型版本")
async def list_models(request: Request, principal: CurrentPrincipal) -> list[dict[str, Any]]:
    require(principal, PrincipalRole.ADMIN)
    models: list[dict[str, Any]] = await request.app.state.matching.list_models()
    return models


JOB_LOCATION = {
    "Location": {
        "description": "the job, to poll: `/v1/admin/models/jobs/{job_id}`",
        "schema": {"type": "string"},
    }
}
BUSY_EXAMPLE = {
    "type": "https://finmatch.example/problems/training_in_progress",
    "title": "Conflict",
    "status": 409,
    "code": "training_in_progress",
    "detail": "a model is being trained: job 7 (running); wait for it to finish",
    "job_id": 7,
}
TOO_FEW_EXAMPLE = {
    "type": "https://finmatch.example/problems/training_refused",
    "title": "Unprocessable entity",
    "status": 422,
    "code": "training_refused",
    "detail": "120 decisions to train on (live and imported); need at least 200",
}


def _problem(status: int, example: dict[str, Any], description: str) -> dict[str, Any]:
    entry = dict(problem_responses(status)[status])
    entry["description"] = description
    entry["content"] = {
        PROBLEM_JSON: {
            "schema": {"$ref": "#/components/schemas/ProblemDetails"},
            "example": example,
        }
    }
    return entry


@router.post(
    "/models/train",
    status_code=202,
    response_model=TrainingJobPublic,
    summary="Train a challenger (a background job) / 训练新模型（后台任务）",
    responses={
        202: {"description": "the job, queued", "headers": JOB_LOCATION},
        409: _problem(409, BUSY_EXAMPLE, "a job is queued or running; `job_id` names it"),
        422: _problem(422, TOO_FEW_EXAMPLE, "too few decided applications to train on"),
    },
)
async def train(body: TrainRequest, request: Request, principal: CurrentPrincipal) -> JSONResponse:
    """Queue a training job and answer at once (202, `Location` to poll). A matching replica
    runs it in the background, whether or not this client stays connected: it chooses the
    model family and settings on the newest fifth of decisions (the time-ordered holdout),
    refits the choice on every decided row, and promotes it only if it beats the champion on
    holdout decisions the champion never saw (and `auto_promote` is on).

    One job at a time across all replicas: another request meanwhile is a 409
    `training_in_progress` naming the job (`job_id`). Too few decisions to train on is a 422
    `training_refused` before any job starts; a job that fails later says why in `error`."""
    require(principal, PrincipalRole.ADMIN)
    job = await request.app.state.matching.train(body.auto_promote, principal.id)
    return JSONResponse(
        job, status_code=202, headers={"Location": f"/v1/admin/models/jobs/{job['id']}"}
    )


@router.get(
    "/models/jobs",
    response_model=list[TrainingJobPublic],
    summary="Training jobs, newest first / 训练任务列表",
)
async def list_jobs(
    request: Request,
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    """Every trigger's jobs: an admin's, automatic retraining's and the command line's."""
    require(principal, PrincipalRole.ADMIN)
    return await forward(
        request, "GET", "/internal/training-jobs", principal, params={"limit": limit}
    )


@router.get(
    "/models/jobs/{job_id:id}",
    response_model=TrainingJobPublic,
    summary="A training job / 训练任务",
    responses=problem_responses(404),
)
async def get_job(job_id: IdPath, request: Request, principal: CurrentPrincipal) -> JSONResponse:
    """Status (`queued`, `running`, `succeeded`, `failed`), progress (0 to 1, by stage), the
    holdout metrics, the refit (`rows`: every decided row; `data_sha256`), `error`, and the
    `outcome` (version, promoted, reason). A job whose replica died stops reporting and is
    failed as `runner lost` once its lease (FINMATCH_TRAINING_LEASE_SECONDS) runs out."""
    require(principal, PrincipalRole.ADMIN)
    answer = await request.app.state.registry.request(
        "GET", f"/internal/training-jobs/{job_id}", principal_id=principal.id
    )
    job = request.app.state.registry.json_object(answer)
    outcome = job.get("outcome") or {}
    if outcome.get("promoted") and outcome.get("version") != request.app.state.model_version:
        await refresh_model_version(request.app)  # cached matches of the old model end now
    return JSONResponse(job)


@router.post("/models/{version}/promote")
async def promote(version: Version, request: Request, principal: CurrentPrincipal) -> JSONResponse:
    require(principal, PrincipalRole.ADMIN)
    promoted = await request.app.state.matching.promote(version, principal.id)
    await refresh_model_version(request.app)
    return JSONResponse(promoted)


@router.post("/models/rollback")
async def rollback(request: Request, principal: CurrentPrincipal) -> JSONResponse:
    require(principal, PrincipalRole.ADMIN)
    restored = await request.app.state.matching.rollback(principal.id)
    await refresh_model_version(request.app)
    return JSONResponse(restored)
