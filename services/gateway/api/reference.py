"""The vocabulary: towns, industries, product categories and problem codes (any principal)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.gateway.auth import CurrentPrincipal
from shared.error_codes import PUBLIC_CODES
from shared.schemas.reference import ErrorCodeInfo
from shared.vocab.categories import CATEGORIES
from shared.vocab.industries import SECTIONS
from shared.vocab.towns import TOWNS

router = APIRouter(prefix="/v1/reference", tags=["reference"])


@router.get("/towns", summary="Towns, subdistricts and parks / 镇街园区")
async def towns(principal: CurrentPrincipal) -> list[dict[str, Any]]:
    return [
        {"code": t.code, "name_zh": t.name_zh, "pinyin": t.pinyin, "kind": t.kind.value}
        for t in TOWNS
    ]


@router.get("/industries", summary="GB/T 4754-2017 sections / 国民经济行业门类")
async def industries(principal: CurrentPrincipal) -> list[dict[str, Any]]:
    return [
        {
            "section": s.letter,
            "name_zh": s.name_zh,
            "name_en": s.name_en,
            "divisions": [s.first_division, s.last_division],
        }
        for s in SECTIONS
    ]


@router.get("/product-categories", summary="Product categories / 产品类别")
async def product_categories(principal: CurrentPrincipal) -> list[dict[str, Any]]:
    return [
        {
            "category": info.category.value,
            "name_zh": info.name_zh,
            "name_en": info.name_en,
            "plan_items": list(info.plan_items),
            "description_zh": info.description_zh,
        }
        for info in CATEGORIES.values()
    ]


@router.get(
    "/error-codes",
    response_model=list[ErrorCodeInfo],
    summary="Problem codes / 错误代码",
)
async def error_codes(principal: CurrentPrincipal) -> list[ErrorCodeInfo]:
    """Every `code` a problem answer of this API can carry, with its HTTP status(es) and its
    meaning in Chinese and English. Each operation's own codes are in its `x-problem-codes`."""
    return [
        ErrorCodeInfo(code=code.value, statuses=list(code.statuses), zh=code.zh, en=code.en)
        for code in PUBLIC_CODES
    ]
