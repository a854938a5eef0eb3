"""Keyset pagination by id with an opaque cursor."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from shared.errors import Unprocessable


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
