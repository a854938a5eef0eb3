"""The policy what-if question, as the gateway takes it and the matching service answers it."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.config import JsonDict

from shared.criteria import WHAT_IF
from shared.types import Id
from shared.vocab.categories import ProductCategory

# A JSON number, nothing else: no NaN or Infinity (Python's JSON reader takes them, and the
# question is forwarded as strict JSON), no true/false or "5" standing in for a number.
Threshold = Annotated[float, Field(strict=True, allow_inf_nan=False)]
_CRITERIA = ", ".join(f"{name} ({c.label[1]} / {c.label[0]})" for name, c in WHAT_IF.items())
# The product field's own name is taken too where the what-if's older name differs
# (min_years_established for min_years), and read as that name.
_BY_PRODUCT_FIELD = {c.code: name for name, c in WHAT_IF.items() if c.code != name}


# "Exactly one of product_id and category", stated in the schema (the model validator enforces
# it) so that a client generated from it, or a fuzzer, does not send a body that is refused.
_ONE_TARGET: JsonDict = {
    "oneOf": [
        {
            "title": "a product",
            "required": ["product_id"],
            "properties": {
                "product_id": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
                "category": {"type": "null"},
            },
        },
        {
            "title": "a product category",
            "required": ["category"],
            "properties": {"category": {"type": "string"}, "product_id": {"type": "null"}},
        },
    ]
}


class WhatIfRequest(BaseModel):
    """The criterion changes for one product (`product_id`) or for a whole `category`:
    exactly one of the two is named, the other left out or null."""

    # A misspelt or unknown field is an error naming it, never silently dropped.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra=_ONE_TARGET
        | {
            "examples": [
                {"category": "guanmaotong", "criterion": "min_export_usd", "value": 5_000_000}
            ]
        },
    )

    product_id: Id | None = None
    category: ProductCategory | None = None
    criterion: str = Field(
        description=f"the eligibility criterion to change: {_CRITERIA}",
        json_schema_extra={"enum": [*WHAT_IF, *_BY_PRODUCT_FIELD]},
    )
    value: Threshold | list[str] | None = Field(
        description="the new threshold (null removes it), or the allowed classes/sections"
    )
    town_code: str | None = Field(default=None, max_length=9)

    @field_validator("criterion")
    @classmethod
    def _known(cls, value: str) -> str:
        value = _BY_PRODUCT_FIELD.get(value, value)
        if value not in WHAT_IF:
            raise ValueError(f"{value!r} is not a criterion the what-if may change: {_CRITERIA}")
        return value

    @model_validator(mode="after")
    def _one_target(self) -> WhatIfRequest:
        if (self.product_id is None) == (self.category is None):
            raise ValueError("name exactly one of product_id and category")
        return self


class ReachCell(BaseModel):
    key: str
    label_zh: str
    label_en: str
    firms: int | None = Field(description="None when fewer than 3 (withheld)")
    suppressed: bool


class ReachCriterion(BaseModel):
    """One rule the product sets, and what one notch easier would add."""

    criterion: str = Field(description="the product field that sets it, e.g. min_revenue_yuan")
    label_zh: str
    label_en: str
    setting: Any
    relaxed_to: Any = Field(description="one notch easier; null: the rule dropped")
    additional_firms: int | None = Field(
        description="firms that would qualify only with it relaxed (None when 1 or 2: withheld)"
    )
    binding: bool = Field(description="relaxing it alone would admit more firms")
    suppressed: bool


class ProductReach(BaseModel):
    """Whom a product would reach among registered firms that consented to matching and
    stated a need: aggregates only, groups of fewer than 3 firms withheld, no firm ids."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "product_id": 7,
                    "town_code": None,
                    "as_of": "2026-12-07",
                    "model_version": "m-20261201-1",
                    "is_prior": False,
                    "firms_considered": 4210,
                    "eligible": 612,
                    "expected_approval_share": 0.4371,
                    "expected_approval_share_margin": 0.0,
                    "expected_approval_share_scored": 612,
                    "by_town": [
                        {
                            "key": "441900116",
                            "label_zh": "塘厦镇",
                            "label_en": "Tangxia",
                            "firms": 58,
                            "suppressed": False,
                        }
                    ],
                    "by_size_class": [
                        {
                            "key": "small",
                            "label_zh": "小型",
                            "label_en": "small",
                            "firms": 401,
                            "suppressed": False,
                        }
                    ],
                    "criteria": [
                        {
                            "criterion": "min_revenue_yuan",
                            "label_zh": "年营业收入",
                            "label_en": "annual revenue",
                            "setting": 5_000_000,
                            "relaxed_to": 2_000_000,
                            "additional_firms": 233,
                            "binding": True,
                            "suppressed": False,
                        }
                    ],
                }
            ]
        }
    )

    product_id: int | None = Field(description="None for a draft")
    town_code: str | None
    as_of: str
    model_version: str
    is_prior: bool = Field(description="no model yet: no expected approval share")
    firms_considered: int = Field(description="firms with consent to matching and a need")
    eligible: int | None
    expected_approval_share: float | None = Field(
        description="the model's mean approval probability among the eligible firms (over a "
        "uniform sample of 20,000 of them when they are more)"
    )
    expected_approval_share_margin: float | None = Field(
        description="the share is within ± this of every eligible firm's mean (99.9%): 0 when "
        "every eligible firm was scored; null with no share"
    )
    expected_approval_share_scored: int | None = Field(
        description="eligible firms the model scored for the share; null with no share"
    )
    by_town: list[ReachCell]
    by_size_class: list[ReachCell]
    criteria: list[ReachCriterion]
