"""Reusable constrained field types: bounded money, counts and strings safe for every database.

Numbers and flags are strict: a count is a JSON integer and a flag is ``true`` or ``false``
(pydantic's lax mode would take ``"45"``, ``1`` or ``"yes"``: what the client meant is
unknowable when it sends the wrong type). Dates are ISO strings (lax mode reads a number as a
Unix time); strict mode itself is not used for them, since FastAPI validates parsed JSON, where
a strict date refuses every string.
"""

from __future__ import annotations

import sys
import unicodedata
from datetime import date
from decimal import Decimal
from functools import cache
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, Strict, StringConstraints
from pydantic_core import PydanticCustomError

# Bounds are sane business limits, and all fit in a signed 64-bit integer so that neither
# PostgreSQL BIGINT nor SQLite INTEGER can overflow.
MAX_YUAN = 10**13  # 10万亿 yuan: above any SME figure, and far below 2**63
MAX_USD = 10**12
MAX_COUNT = 10_000_000
MAX_ID = 2**63 - 1
MAX_TERM_MONTHS = 360
MAX_RATE_BP = 3600
# One fixed, round rate wherever US dollars meet yuan (exports against revenue, export caps, the
# demo data): an assumption of ours that keeps answers reproducible, not a market rate.
YUAN_PER_USD = Decimal("7.1")


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


@cache
def _refused_characters() -> str:
    """What _no_nul refuses, as the inside of a regex character class: NUL and every format
    character (BMP ones escaped; the few beyond it written as themselves). Built when a schema
    is first rendered, not at import: it scans every code point."""
    refused = [0, *(c for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf")]
    runs: list[tuple[int, int]] = []
    for point in refused:
        if runs and runs[-1][1] == point - 1:
            runs[-1] = (runs[-1][0], point)
        else:
            runs.append((point, point))

    def char(point: int) -> str:
        return f"\\u{point:04X}" if point <= 0xFFFF else chr(point)

    return "".join(char(a) if a == b else f"{char(a)}-{char(b)}" for a, b in runs)


def _text_schema(schema: dict[str, Any]) -> None:
    schema["pattern"] = f"^[^{_refused_characters()}]*$"


def _name_schema(schema: dict[str, Any]) -> None:
    # Stripped, it must keep a character: not only whitespace.
    refused = _refused_characters()
    schema["pattern"] = f"^[^{refused}]*[^\\s{refused}][^{refused}]*$"


# Text safe for every database and reader, and the schema says so (a pattern of what it refuses).
SafeStr = Annotated[str, AfterValidator(_no_nul), Field(json_schema_extra=_text_schema)]
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_no_nul),
    Field(json_schema_extra=_name_schema),
]


def safe_text(max_length: int) -> Any:
    """SafeStr of at most ``max_length`` characters (the length checked first)."""
    return Annotated[
        str,
        Field(max_length=max_length),
        AfterValidator(_no_nul),
        Field(json_schema_extra=_text_schema),
    ]


ShortText = safe_text(500)
LongText = safe_text(4000)


def _iso_date(value: Any) -> Any:
    # A date object comes from the database or a Python caller; a JSON body gives text.
    if isinstance(value, str | date):
        return value
    raise PydanticCustomError("date_type", "Input should be an ISO 8601 date string (YYYY-MM-DD)")


IsoDate = Annotated[date, BeforeValidator(_iso_date)]
Flag = Annotated[bool, Strict()]
Id = Annotated[int, Strict(), Field(ge=1, le=MAX_ID)]
Yuan = Annotated[int, Strict(), Field(ge=0, le=MAX_YUAN, description="integer yuan")]
PositiveYuan = Annotated[int, Strict(), Field(gt=0, le=MAX_YUAN, description="integer yuan, > 0")]
Usd = Annotated[int, Strict(), Field(ge=0, le=MAX_USD, description="integer US dollars")]
Count = Annotated[int, Strict(), Field(ge=0, le=MAX_COUNT)]
TermMonths = Annotated[int, Strict(), Field(ge=1, le=MAX_TERM_MONTHS, description="months, 1–360")]
RateBp = Annotated[
    int, Strict(), Field(ge=0, le=MAX_RATE_BP, description="annual rate in basis points, 0–3600")
]
FeeBp = Annotated[int, Strict(), Field(ge=0, le=3600, description="annual fee in basis points")]
Percent = Annotated[int, Strict(), Field(ge=0, le=100)]
