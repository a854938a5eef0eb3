"""Statistics for officials (own town; a city official all towns) and admins; short-lived cache."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from services.gateway.api.proxy import clean, forward
from services.gateway.auth import CurrentPrincipal, require
from services.registry.api.stats import Breakdown, Dimension
from shared.enums import PrincipalRole
from shared.types import SafeStr

router = APIRouter(prefix="/v1/stats", tags=["stats"])


@router.get("/breakdown", response_model=Breakdown, summary="Breakdown / 分组统计")
async def breakdown(
    request: Request,
    principal: CurrentPrincipal,
    by: Dimension,
    town_code: Annotated[SafeStr | None, Query(max_length=9)] = None,
    date_from: datetime | None = None,
    date_to: datetime | None = None,
) -> Response:
    """Applications, approvals and amounts by town, category, institution, size class or month."""
    require(principal, PrincipalRole.OFFICIAL, PrincipalRole.ADMIN)
    params = clean(
        {
            "by": by,
            "town_code": town_code,
            "date_from": None if date_from is None else date_from.isoformat(),
            "date_to": None if date_to is None else date_to.isoformat(),
        }
    )
    return await _stats(request, principal.id, "/v1/stats/breakdown", params)


@router.get("/firms", summary="Registered firms / 注册企业")
async def firms(
    request: Request,
    principal: CurrentPrincipal,
    town_code: Annotated[SafeStr | None, Query(max_length=9)] = None,
) -> Response:
    require(principal, PrincipalRole.OFFICIAL, PrincipalRole.ADMIN)
    return await _stats(request, principal.id, "/v1/stats/firms", clean({"town_code": town_code}))


async def _stats(
    request: Request, principal_id: int, path: str, params: dict[str, str]
) -> Response:
    """Statistics change slowly; a short cache per principal keeps dashboards cheap."""
    state = request.app.state
    key = f"stats:{principal_id}:{path}:" + "&".join(f"{k}={v}" for k, v in sorted(params.items()))
    cached = await state.cache.get(key)
    if cached is not None:
        return Response(cached, media_type="application/json")
    answer = await forward(request, "GET", path, request.state.principal, params=params)
    if answer.status_code == 200:
        await state.cache.set(key, bytes(answer.body), state.settings.stats_cache_seconds)
    return answer
