"""The vocabulary: towns, industry sections and product categories."""

from __future__ import annotations

from finmatch_client.models._base import Answer
from finmatch_client.models.enums import ProductCategory


class Town(Answer):
    """A town (镇), subdistrict (街道) or functional zone, by its 9-digit code."""

    code: str
    name_zh: str
    pinyin: str
    kind: str


class IndustrySection(Answer):
    """A GB/T 4754-2017 section and its first and last 2-digit division."""

    section: str
    name_zh: str
    name_en: str
    divisions: list[int]


class ProductCategoryInfo(Answer):
    category: ProductCategory
    name_zh: str
    name_en: str
    plan_items: list[int]
    description_zh: str
