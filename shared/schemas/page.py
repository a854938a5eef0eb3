"""A page of a list answer: the items and the opaque cursor of the next page."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field, StringConstraints

T = TypeVar("T")


def _cursor_pattern() -> str:
    """The exact form of a cursor, so that a client generated from the schema (or a fuzzer) can
    tell a well-formed cursor from one the server refuses.

    A cursor is unpadded base64url of ``id:<decimal id>`` (services/registry/pagination.py).
    ``id:`` encodes to ``aWQ6``; each digit is the byte 0x30–0x39, so a run of three digits
    is four characters drawn from small sets, and a trailing one or two digits end in two or
    three. A 19-digit id is taken when it starts with 0–8: every such number fits the 63-bit
    ids (9 followed by 18 digits may not), which no regular expression could bound more finely
    in a useful length.
    """
    lead = "(?:[MN][DTjz]|O[DT])"  # the first digit of a group: 0–9
    lead_low = "(?:[MN][DTjz]|OD)"  # the same, 0–8 only
    rest = "[AEIMQUYcgk]"  # the second digit's high bits and the first's low ones
    last = "[w-z0-5]"  # the third digit
    three = f"{lead}{rest}{last}"
    two = f"{lead}{rest}"
    one = "(?:[MN][AQgw]|O[AQ])"
    up_to_18 = f"(?:{three}){{0,5}}(?:{three}|{two}|{one})"
    nineteen = f"{lead_low}{rest}{last}(?:{three}){{5}}{one}"
    return f"^aWQ6(?:{up_to_18}|{nineteen})$"


CURSOR_PATTERN = _cursor_pattern()
CURSOR_DESCRIPTION = (
    "the previous page's `next_cursor`, unchanged (opaque: unpadded base64url of `id:<last id>`)"
    "; omit it for the first page. Anything else is a 422 naming `cursor`."
)
CursorText = Annotated[str, StringConstraints(max_length=64, pattern=CURSOR_PATTERN)]
# The `cursor` query parameter of a list operation.
Cursor = Annotated[CursorText | None, Query(description=CURSOR_DESCRIPTION)]


class Page(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None = Field(
        default=None,
        description="pass as `cursor` for the next page; null on the last",
        json_schema_extra={"pattern": CURSOR_PATTERN, "examples": ["aWQ6MTAw"]},  # id:100
    )
