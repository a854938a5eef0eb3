"""Reusable constrained field types: bounded money, counts and strings safe for every database."""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

# Bounds are sane business limits, and all fit in a signed 64-bit integer so that neither
# PostgreSQL BIGINT nor SQLite INTEGER can overflow.
MAX_YUAN = 10**13  # 10万亿 yuan: above any SME figure, and far below 2**63
MAX_USD = 10**12
MAX_COUNT = 10_000_000


def _no_nul(value: str) -> str:
    # PostgreSQL cannot store NUL in text; reject it for every backend so both behave alike.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    if not value.isascii():  # ASCII holds no format characters: the common case costs nothing
        for char in value:
            # Format characters are invisible: a right-to-left override (U+202E) makes a name
            # read differently from what is stored, to the bank and the official shown it.
            if unicodedata.category(char) == "Cf":
                raise ValueError(
                    f"must not contain the invisible formatting character U+{ord(char):04X}"
                )
    return value


SafeStr = Annotated[str, AfterValidator(_no_nul)]
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_no_nul),
]
ShortText = Annotated[str, Field(max_length=500), AfterValidator(_no_nul)]
LongText = Annotated[str, Field(max_length=4000), AfterValidator(_no_nul)]

Yuan = Annotated[int, Field(ge=0, le=MAX_YUAN, description="integer yuan")]
PositiveYuan = Annotated[int, Field(gt=0, le=MAX_YUAN, description="integer yuan, > 0")]
Usd = Annotated[int, Field(ge=0, le=MAX_USD, description="integer US dollars")]
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
TermMonths = Annotated[int, Field(ge=1, le=360, description="months, 1–360")]
RateBp = Annotated[int, Field(ge=0, le=3600, description="annual rate in basis points, 0–3600")]
FeeBp = Annotated[int, Field(ge=0, le=3600, description="annual fee in basis points")]
Percent = Annotated[int, Field(ge=0, le=100)]
