"""The policy what-if question, as the gateway takes it and the matching service answers it."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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


class WhatIfRequest(BaseModel):
    # A misspelt or unknown field is an error naming it, never silently dropped.
    model_config = ConfigDict(extra="forbid")

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
