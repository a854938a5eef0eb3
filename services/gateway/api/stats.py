"""Statistics for officials (own town; a city official all towns) and admins.

Aggregates come from the registry, coverage gaps and what-ifs from the matching service's
eligibility rules over the registered firms. Answers are cached per principal for a short
while (``FINMATCH_STATS_CACHE_SECONDS``): dashboards poll, figures move slowly.
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response

from services.gateway.api.proxy import clean, forward
from services.gateway.auth import CurrentPrincipal, Principal, require
from services.gateway.clients import DownstreamError
from services.gateway.idempotency import IdempotentRoute
from shared.enums import PrincipalRole, RegisterKind
from shared.errors import NotFound, problem_responses
from shared.schemas.policy import WhatIfRequest
from shared.schemas.stats import (
    Breakdown,
    Dimension,
    League,
    Overview,
    ProductEligibility,
    RegisterCoverage,
    Targets,
)
from shared.types import SafeStr
from shared.vocab.categories import ProductCategory
from shared.vocab.towns import is_town_code

router = APIRouter(prefix="/v1/stats", tags=["stats"], route_class=IdempotentRoute)

DateFrom = Annotated[date | None, Query(description="first day, China time / 起始日（含）")]
DateTo = Annotated[date | None, Query(description="day after the last / 截止日（不含）")]
Town = Annotated[SafeStr | None, Query(max_length=9, description="9-digit town code / 镇街代码")]
Category = Annotated[ProductCategory | None, Query(description="product category / 产品类别")]
OFFICIALS = (PrincipalRole.OFFICIAL, PrincipalRole.ADMIN)


def period_filters(
    date_from: DateFrom = None,
    date_to: DateTo = None,
    town_code: Town = None,
    category: Category = None,
) -> dict[str, Any]:
    """The filters every period statistic takes, as the registry's query parameters."""
    return clean(
        {
            "date_from": None if date_from is None else date_from.isoformat(),
            "date_to": None if date_to is None else date_to.isoformat(),
            "town_code": town_code,
            "category": category,
        }
    )


Filters = Annotated[dict[str, Any], Depends(period_filters)]


def scoped_town(principal: Principal, town_code: str | None) -> str | None:
    """A town official's own town whatever they ask; another town is 404, like the registry."""
    if town_code is not None and not is_town_code(town_code):
        raise NotFound(f"town {town_code} not found")
    if principal.role is PrincipalRole.OFFICIAL and principal.town_code is not None:
        if town_code is not None and town_code != principal.town_code:
            raise NotFound(f"town {town_code} not found")
        return principal.town_code
    return town_code


@router.get(
    "/overview",
    response_model=Overview,
    summary="Overview / 总览",
    responses=problem_responses(404, 422),
)
async def overview(request: Request, principal: CurrentPrincipal, filters: Filters) -> Response:
    """Firms registered, with a need and matched; applications, approvals, amounts, first
    loans (首贷户), small/micro share, response times and rates, for a period.

    企业注册、需求、匹配、申请、获批、金额、首贷户、小微占比、响应时长与平均利率。"""
    require(principal, *OFFICIALS)
    return await _stats(request, principal, "/v1/stats/overview", filters)


@router.get(
    "/breakdown",
    response_model=Breakdown,
    summary="Breakdown / 分组统计",
    responses=problem_responses(404, 422),
)
async def breakdown(
    request: Request, principal: CurrentPrincipal, by: Dimension, filters: Filters
) -> Response:
    """Applications, approvals and amounts by town, category, institution, size class,
    industry section or month; cells of fewer than 3 firms are suppressed.

    按镇街、类别、机构、规模、行业或月份分组；少于 3 家企业的单元格不予显示。"""
    require(principal, *OFFICIALS)
    return await _stats(request, principal, "/v1/stats/breakdown", {"by": by.value, **filters})


@router.get(
    "/institutions",
    response_model=League,
    summary="Institution league table / 机构排行",
    responses=problem_responses(404, 422),
)
async def institutions(
    request: Request,
    principal: CurrentPrincipal,
    filters: Filters,
    deadline_days: Annotated[int | None, Query(ge=1, le=60)] = None,
) -> Response:
    """Response time, approval rate, amount to small/micro firms, first loans and the share
    left unanswered past the deadline (working days; action-plan item 68).

    机构响应时长、获批率、小微金额、首贷与超期未答复占比（第 68 条）。"""
    require(principal, *OFFICIALS)
    params = dict(filters)
    if deadline_days is not None:
        params["deadline_days"] = deadline_days
    return await _stats(request, principal, "/v1/stats/institutions", params)


@router.get(
    "/products",
    response_model=ProductEligibility,
    summary="Applications per product, and how many were ineligible / 各产品申请与不符合条件占比",
    responses=problem_responses(404, 422),
)
async def products(request: Request, principal: CurrentPrincipal, filters: Filters) -> Response:
    """Per product: applications, and the share that matching's rules found ineligible at
    submission (unknown: not checked). Officials (their town) and admins see every product; an
    institution its own. Products with fewer than 3 applying firms are withheld.

    各产品申请量及提交时经规则校验不符合条件的占比；少于 3 家企业的产品不予显示。"""
    require(principal, *OFFICIALS, PrincipalRole.INSTITUTION)
    return await _stats(request, principal, "/v1/stats/products", filters)


@router.get(
    "/targets",
    response_model=Targets,
    summary="Targets / 目标进度",
    responses=problem_responses(404, 422),
)
async def targets(
    request: Request, principal: CurrentPrincipal, town_code: Town = None
) -> Response:
    """Progress towards the action plan's targets (items 65, 69, 74); settings change them.
    The plan sets them for the city: for a town, a count or amount is its contribution to the
    city's total (``measure: contribution``, ``met`` null) and a share is the town's own.

    行动方案目标（第 65、69、74 条）完成进度；镇街看到的是本镇对全市目标的贡献。"""
    require(principal, *OFFICIALS)
    return await _stats(request, principal, "/v1/stats/targets", clean({"town_code": town_code}))


@router.get("/coverage", summary="Coverage gaps / 覆盖缺口", responses=problem_responses(404, 422))
async def coverage(request: Request, principal: CurrentPrincipal, filters: Filters) -> Response:
    """Towns and sections where firms state a need no active product admits, and where
    firms were matched but never applied. Without the matching service the first list is
    empty and ``degraded`` is true.

    有需求但无可申请产品、有匹配但未申请的镇街与行业。"""
    require(principal, *OFFICIALS)
    town = scoped_town(principal, filters.get("town_code"))
    params = clean(filters | {"town_code": town})
    key = _cache_key(principal, "/v1/stats/coverage", params)
    state = request.app.state
    cached = await state.cache.get(key)
    if cached is not None:
        return Response(cached, media_type="application/json")

    async def no_eligible_product() -> tuple[list[Any], bool]:
        """Matching's gaps, and whether they are missing (matching down: degraded)."""
        try:
            response = await state.matching.request(
                "GET", "/internal/policy/coverage", params=clean({"town_code": town})
            )
            return state.matching.json_object(response)["rows"], False
        except DownstreamError:
            return [], True

    # The two answers are independent: asked at once, the slower one sets the time.
    matched, (gaps, degraded) = await asyncio.gather(
        state.registry.request(
            "GET", "/v1/stats/coverage/matched", principal_id=principal.id, params=params
        ),
        no_eligible_product(),
    )
    body = orjson.dumps(
        {
            "filters": params | {"town_code": town},
            "no_eligible_product": gaps,
            "matched_no_application": matched.json()["rows"],
            "degraded": degraded,
        }
    )
    if not degraded:
        await state.cache.set(key, body, state.settings.stats_cache_seconds)
    return Response(body, media_type="application/json")


@router.post(
    "/what-if",
    summary="Policy what-if / 政策模拟",
    responses=problem_responses(404, 422, 503),
)
async def policy_what_if(
    request: Request, principal: CurrentPrincipal, body: WhatIfRequest
) -> Response:
    """Change one eligibility criterion of a product or category (e.g. 莞贸通's export
    threshold from US$10M to US$5M) and count the registered firms of the town (or city)
    that would newly qualify, by industry and size class, with the amount they ask for.
    Read-only: no product changes; every question is written to the audit log.

    调整某产品或类别的一项准入条件，测算新增符合条件的企业数、行业与规模分布及需求金额；
    只读，不修改产品，每次测算记入审计日志。"""
    require(principal, *OFFICIALS)
    town = scoped_town(principal, body.town_code)
    question = body.model_dump(mode="json") | {"town_code": town}
    state = request.app.state
    await state.registry.request(
        "POST",
        "/internal/audit",
        principal_id=principal.id,
        json={"action": "what_if", "entity": "policy", "detail": question},
    )
    response = await state.matching.request(
        "POST", "/internal/policy/what-if", json=question, idempotent=True
    )
    return Response(response.content, media_type="application/json")


@router.get("/firms", summary="Registered firms / 注册企业", responses=problem_responses(404))
async def firms(request: Request, principal: CurrentPrincipal, town_code: Town = None) -> Response:
    """Registered firms by size class, with how many state a need. 注册企业按规模统计。"""
    require(principal, *OFFICIALS)
    return await _stats(request, principal, "/v1/stats/firms", clean({"town_code": town_code}))


@router.get(
    "/registers",
    response_model=RegisterCoverage,
    summary="Official registers' coverage / 官方名录覆盖情况",
    responses=problem_responses(404, 422),
)
async def registers(
    request: Request,
    principal: CurrentPrincipal,
    town_code: Town = None,
    kind: Annotated[RegisterKind | None, Query(description="one register / 名录类别")] = None,
) -> Response:
    """Per official register: the registered firms on its current list (entries valid today),
    and how many of them were matched, applied and were approved; for the green list, how many
    reached green credit (action-plan item 44). Totals for the city (a town official: their
    town), and a row per town whose cells of fewer than 3 firms are withheld.

    各官方名录中已注册且名录当前有效的企业数，及其中获匹配、申请、获批的企业数；
    绿色企业名录另计获得绿色信贷的企业数（第 44 条）。分镇街统计，少于 3 家企业的单元格不予显示。"""
    require(principal, *OFFICIALS)
    params = clean({"town_code": town_code, "kind": None if kind is None else kind.value})
    return await _stats(request, principal, "/v1/stats/registers", params)


def _cache_key(principal: Principal, path: str, params: dict[str, Any]) -> str:
    query = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
    return f"stats:{principal.id}:{path}:{query}"


async def _stats(
    request: Request, principal: Principal, path: str, params: dict[str, Any]
) -> Response:
    """Statistics change slowly; a short cache per principal keeps dashboards cheap."""
    state = request.app.state
    key = _cache_key(principal, path, params)
    cached = await state.cache.get(key)
    if cached is not None:
        return Response(cached, media_type="application/json")
    answer = await forward(request, "GET", path, principal, params=params)
    if answer.status_code == 200:
        await state.cache.set(key, bytes(answer.body), state.settings.stats_cache_seconds)
    return answer
