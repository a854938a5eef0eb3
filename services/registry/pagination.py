"""Keyset pagination by id with an opaque cursor."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlmodel import Session, col
from sqlmodel.sql.expression import SelectOfScalar

from shared.errors import Unprocessable

T = TypeVar("T")


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode()).decode()
        kind, _, value = text.partition(":")
        last_id = int(value)
        if kind != "id" or last_id < 0 or last_id > 2**63 - 1:
            raise ValueError(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Unprocessable("cursor is not valid", field="cursor") from exc
    return last_id


def next_cursor(rows: Sequence[Any], limit: int) -> str | None:
    if len(rows) < limit:
        return None
    return encode_cursor(int(rows[-1].id))


def page_of(
    session: Session,
    stmt: SelectOfScalar[T],
    id_column: Any,
    *,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    """One page of ``stmt``'s rows in id order, after the cursor's id, as a ``Page`` answer."""
    after = decode_cursor(cursor)
    if after is not None:
        stmt = stmt.where(col(id_column) > after)
    rows = list(session.exec(stmt.order_by(col(id_column)).limit(limit)))
    return {"data": rows, "next_cursor": next_cursor(rows, limit)}
