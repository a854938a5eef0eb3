"""GET /v1/firms/{id}/matches: the main job — ranked, explained products for one firm."""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from services.gateway.api.held import held_firm, hold_firm, identity, stale_headers
from services.gateway.auth import CurrentPrincipal, require
from services.gateway.cache import stamped, ttl_ms, unstamped
from services.gateway.catalogue import GENERATION_KEY as CATALOGUE_GENERATION
from services.gateway.catalogue import Catalogue
from services.gateway.metrics import match_served
from shared.china_date import today_in_china
from shared.enums import PrincipalRole
from shared.error_codes import ErrorCode
from shared.errors import (
    Conflict,
    NotFound,
    ProblemError,
    ServiceUnavailable,
    problem_responses,
)
from shared.firm_entries import (
    DELETE_IF_HELD_SCRIPT,
    REGISTERS_GENERATION,
    WRITE_SCRIPT,
    WRITER_KEY,
    EntryWrite,
    entry_key,
    entry_stamp,
    read_entry,
    script_arguments,
    stamped_body,
)
from shared.schemas.firm import effective_features, verified_fields
from shared.schemas.matching import Lang, NearMiss, RankedProduct, RankOptions
from shared.types import MAX_YUAN

router = APIRouter(prefix="/v1", tags=["matches"])
log = logging.getLogger("finmatch.gateway.matches")
IdPath = Annotated[int, Path(ge=1, le=2**63 - 1, description="firm id")]
# Seconds a client should wait before asking again when matching is down and no earlier
# answer for the firm is held (the breaker's own Retry-After wins when it gives one).
RETRY_AFTER_SECONDS = 5


class ProductSummary(BaseModel):
    name: str
    category: str
    institution_id: int


class MatchedProduct(RankedProduct):
    product: ProductSummary


class NearMissProduct(NearMiss):
    product: ProductSummary


class MatchesResponse(BaseModel):
    firm_id: int
    model_version: str
    is_prior: bool
    degraded: bool = Field(description="True when the matching service could not answer")
    degraded_reason: str | None = None
    stale: bool = Field(
        default=False,
        description=(
            "True when the matching service could not answer and this is the last answer "
            "computed for the same firm and query (stale-if-error, RFC 5861)"
        ),
    )
    stale_age_seconds: int | None = Field(
        default=None, description="how old a stale answer is; also in the Age header"
    )
    catalogue_version: str
    evaluated: int
    eligible: int
    ranked: list[MatchedProduct]
    near_misses: list[NearMissProduct]


async def _write_back(state: Any, write: EntryWrite, stale: bytes | None) -> None:
    """A firm's entry written back from the registry's answer, after deleting ``stale`` (the
    entry read under an older stamp) if it is still held."""
    settings = state.settings
    if stale is not None:
        await state.cache.run_script(DELETE_IF_HELD_SCRIPT, [entry_key(write.firm_id)], [stale])
    await state.cache.run_script(
        WRITE_SCRIPT, *script_arguments([write], ttl_ms(settings.firm_entry_ttl_seconds))
    )


def _with_product(catalogue: Catalogue, item: dict[str, Any]) -> dict[str, Any]:
    """A ranked product or near miss with the product's name, category and institution."""
    item["product"] = catalogue.summary(item["product_id"])
    return item


@router.get(
    "/firms/{firm_id:id}/matches",
    response_model=MatchesResponse,
    summary="Ranked financing products for a firm / 为企业匹配融资产品",
    description=(
        "Eligible products ranked by approval probability × coverage of the need, less the "
        "effective annual cost; each with reasons and cost, plus near misses that say what "
        "the firm lacks. 按获批概率×额度覆盖−综合年化成本排序，附理由与差距。 When the "
        "matching service cannot answer: the last answer for this firm and query, marked "
        "`stale` (with an Age header), or 503 with Retry-After; likewise when the registry "
        "cannot answer (its database down). 409 when the firm has not "
        "consented to matching."
    ),
    responses=problem_responses(404, 409, 503),
)
async def firm_matches(
    firm_id: IdPath,
    request: Request,
    principal: CurrentPrincipal,
    lang: Lang = "zh",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    near_miss_limit: Annotated[int, Query(ge=0, le=100)] = 10,
    # A query string is text: these are read as numbers (the bodies' strict types would refuse
    # every value), within the bodies' bounds.
    amount_yuan: Annotated[int | None, Query(gt=0, le=MAX_YUAN)] = None,
    term_months: Annotated[int | None, Query(ge=1, le=360)] = None,
) -> Response:
    require(principal, PrincipalRole.PORTAL)
    state = request.app.state
    query = f"{principal.id}:{firm_id}:{lang}:{limit}:{near_miss_limit}:{amount_yuan}:{term_months}"
    key, last_key = f"match:{query}", f"match-last:{query}"
    # One round trip: the portal's firms generation, the registers', the catalogue's, the stored
    # answer, which stands only if it was computed from those same versions (and the current
    # model), and the firm as the registry last committed it (its entry: shared/firm_entries.py).
    (
        firms_generation,
        registers_generation,
        catalogue_generation,
        stored,
        writer,
        entry,
    ) = await state.cache.get_many(
        f"firms:generation:{principal.id}",
        REGISTERS_GENERATION,
        CATALOGUE_GENERATION,
        key,
        WRITER_KEY,
        entry_key(firm_id),
    )
    catalogue: Catalogue = await state.catalogue.at(catalogue_generation)
    firms_stamp = f"{(firms_generation or b'0').decode()}.{(registers_generation or b'0').decode()}"
    stamps = (firms_stamp, catalogue.version, state.model_version)
    cached = unstamped(stored, *stamps)
    if cached is not None:
        match_served("cached")
        return Response(cached, media_type="application/json")

    # Entries count only while a registry keeps them (it holds the writer's lease), and only
    # under today's stamp: a register upload or a new day may change a firm's provenance.
    stamp = entry_stamp(registers_generation, today_in_china())
    held_entry = read_entry(entry, stamp) if writer is not None else None
    if held_entry is not None:
        firm, firm_body, etag = held_entry.firm, None, held_entry.etag
    else:
        try:
            firm, etag = await state.registry.get_firm(principal.id, firm_id)
        except ProblemError as exc:
            if exc.status < 500:
                raise
            # The registry cannot answer (its database down): the last answer for this firm
            # as its owner last saw it, if one is held; else the registry's own 503.
            held = await held_firm(state, principal, firm_id)
            if held is None or not held.firm.get("consent_matching", True):
                raise
            return await _last_answer(
                state, last_key, firm_id, identity(held.firm), exc, "registry"
            )
        firm_body = orjson.dumps(firm)
    if firm["owner_principal_id"] != principal.id:
        raise NotFound(f"firm {firm_id} not found")
    if not firm.get("consent_matching", True):
        # The firm withdrew its consent to be ranked: no ranking, fresh or stale.
        raise Conflict(
            f"firm {firm_id} has not consented to matching; set consent_matching to true "
            "(PATCH /v1/firms/{id}) to rank products for it",
            code=ErrorCode.MATCHING_NOT_CONSENTED,
            field="consent_matching",
        )
    options = RankOptions(
        lang=lang,
        limit=limit,
        near_miss_limit=near_miss_limit,
        requested_amount_yuan=amount_yuan,
        requested_term_months=term_months,
    )
    try:
        # Each gating attribute at the value the registry's provenance gives (the official
        # register's, wherever one covers it): matching ranks what is verified.
        ranking = await state.matching.rank_with_catalogue(
            effective_features(firm),
            catalogue.version,
            catalogue.products,
            options.model_dump(mode="json"),
            verified=verified_fields(firm),
        )
    except ProblemError as exc:
        if exc.status < 500:
            raise
        return await _last_answer(state, last_key, firm_id, identity(firm), exc, "matching")

    body = {
        **ranking,
        "firm_id": firm_id,
        "degraded": False,
        "degraded_reason": None,
        "stale": False,
        "stale_age_seconds": None,
        "catalogue_version": catalogue.version,
        "ranked": [_with_product(catalogue, r) for r in ranking["ranked"]],
        "near_misses": [_with_product(catalogue, m) for m in ranking["near_misses"]],
    }
    payload = orjson.dumps(body)
    settings = state.settings
    writes = [
        state.cache.set(key, stamped(payload, *stamps), settings.match_cache_seconds),
        # Kept longer and whatever changes since: what this firm is served if matching fails.
        state.cache.set(
            last_key,
            stamped(payload, identity(firm), f"{state.wall_clock():.3f}"),
            settings.match_stale_if_error_seconds,
        ),
    ]
    if firm_body is not None:  # read from the registry, not from its entry
        # The firm itself: what vouches for that answer while the registry is down.
        writes.append(hold_firm(state, principal, firm_body, etag))
    if firm_body is not None and writer is not None:
        # And its entry, unless the registry wrote a newer one meanwhile; one read under an
        # older stamp is replaced.
        stale = entry if entry is not None and read_entry(entry) is not None else None
        write = EntryWrite.of_firm(firm, stamped_body(firm_body, stamp))
        writes.append(_write_back(state, write, stale))
    await asyncio.gather(*writes)
    state.recorder.record(
        [
            {
                "firm_id": firm_id,
                "product_id": r["product_id"],
                "rank": r["rank"],
                "score": r["score"],
                "approval_probability": r["approval_probability"],
                "model_version": ranking["model_version"],
                "town_code": firm["town_code"],
            }
            for r in ranking["ranked"]
        ]
    )
    match_served("fresh")
    return Response(payload, media_type="application/json")


def _held_for(held: bytes | None, identity: str) -> tuple[float, bytes] | None:
    """(computed at, payload) of a last answer stored for this registration of the firm."""
    head, _, payload = (held or b"").partition(b"\n")
    owner, _, computed_at = head.decode(errors="replace").rpartition("|")
    if not payload or owner != identity:
        return None
    try:
        return float(computed_at), payload
    except ValueError:
        return None


async def _last_answer(
    state: Any,
    last_key: str,
    firm_id: int,
    registration: str,
    error: ProblemError,
    failing: Literal["matching", "registry"],
) -> Response:
    """The last answer computed for this firm and query, marked stale with its age; or, when
    none is held, 503 with Retry-After (the registry's own, when it is the one failing). The
    gateway ranks nothing itself."""
    retry_after = error.headers.get("Retry-After", str(RETRY_AFTER_SECONDS))
    held = _held_for(await state.cache.get(last_key), registration)
    if held is None:
        match_served("unavailable")
        log.warning("firm %s: %s unavailable (%s), no earlier answer", firm_id, failing, error.code)
        if failing == "registry":
            raise error
        raise ServiceUnavailable(
            f"the matching service is unavailable ({error.code}) and no earlier answer for "
            f"firm {firm_id} is held; retry after {retry_after} s",
            code=ErrorCode.MATCHING_UNAVAILABLE,
            headers={"Retry-After": retry_after},
        )
    computed_at, payload = held
    age = max(0, math.floor(state.wall_clock() - computed_at))
    body = orjson.loads(payload)
    body.update(
        degraded=True,
        degraded_reason=(
            f"{failing} service unavailable ({error.code}): the last answer for this firm, "
            f"{age} s old"
        ),
        stale=True,
        stale_age_seconds=age,
    )
    match_served("stale")
    log.warning(
        "firm %s: %s unavailable (%s), served %d s stale", firm_id, failing, error.code, age
    )
    return Response(
        orjson.dumps(body), media_type="application/json", headers=stale_headers(age, error)
    )
