"""The owner portal's last read of each of its firms, served marked stale when the registry
cannot answer (stale-if-error, RFC 5861), and forgotten when the firm is erased."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import Response

from services.gateway.auth import Principal
from services.gateway.cache import stamped
from shared.enums import PrincipalRole
from shared.errors import ProblemError

log = logging.getLogger("finmatch.gateway.held")
# On a stale answer, beside Age: why it is stale (the downstream's problem code).
STALE_HEADER = "X-Finmatch-Stale"


def _key(principal_id: int, firm_id: int) -> str:
    return f"firm-last:{principal_id}:{firm_id}"


def identity(firm: dict[str, Any]) -> str:
    """Which registration of a firm an answer was computed for. The id alone is not enough:
    SQLite hands an erased firm's id to the next firm registered."""
    return f"{firm['credit_code']}@{firm['created_at']}"


def stale_headers(age: int, error: ProblemError) -> dict[str, str]:
    return {"Age": str(age), STALE_HEADER: error.code}


@dataclass(frozen=True)
class HeldFirm:
    firm: dict[str, Any]
    body: bytes
    etag: str
    age: int


async def hold_firm(
    state: Any, principal: Principal, body: bytes | memoryview, etag: str | None
) -> None:
    """Keep a firm as the registry answered it, if ``principal`` is its owner portal (an
    institution's access ends with the application or the consent, so it gets no copy)."""
    if principal.role != PrincipalRole.PORTAL:
        return
    firm = orjson.loads(body)
    if not isinstance(firm, dict) or firm.get("owner_principal_id") != principal.id:
        return
    await state.cache.set(
        _key(principal.id, int(firm["id"])),
        stamped(bytes(body), etag or "", f"{time.time():.3f}"),
        state.settings.firm_stale_if_error_seconds,
    )


async def forget_firm(state: Any, principal: Principal, firm_id: int) -> None:
    await state.cache.delete(_key(principal.id, firm_id))


async def held_firm(state: Any, principal: Principal, firm_id: int) -> HeldFirm | None:
    value = await state.cache.get(_key(principal.id, firm_id))
    head, _, body = (value or b"").partition(b"\n")
    etag, _, held_at = head.decode(errors="replace").rpartition("|")
    try:
        age = max(0, math.floor(time.time() - float(held_at)))
        firm = orjson.loads(body)
    except (ValueError, orjson.JSONDecodeError):
        return None
    if not isinstance(firm, dict):
        return None
    return HeldFirm(firm=firm, body=body, etag=etag, age=age)


async def stale_firm(
    state: Any, principal: Principal, firm_id: int, error: ProblemError
) -> Response:
    """The held copy of the firm marked stale, or ``error`` again when none is held."""
    held = await held_firm(state, principal, firm_id)
    if held is None:
        raise error
    log.warning(
        "firm %s: registry unavailable (%s), served %d s stale", firm_id, error.code, held.age
    )
    headers = stale_headers(held.age, error)
    if held.etag:
        headers["ETag"] = held.etag
    return Response(held.body, media_type="application/json", headers=headers)
