"""Firms (portals): create or update by credit code, bulk NDJSON import, read, update with
If-Match, erase; a firm's matches and near misses; its consents."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from finmatch_client._async._pagination import AsyncPaginator
from finmatch_client._async._resource import AsyncResource
from finmatch_client._core import (
    NDJSON,
    Call,
    expect,
    expect_import,
    expect_nothing,
    make_call,
    ndjson,
    target,
)
from finmatch_client.models import (
    ConsentPublic,
    FirmCreate,
    FirmPublic,
    FirmUpdate,
    ImportResult,
    MatchesResponse,
    Page,
)

Lang = Literal["zh", "en"]


class AsyncFirms(AsyncResource):
    async def create(self, firm: FirmCreate, *, idempotency_key: str | None = None) -> FirmPublic:
        """Register a firm, or update the one this portal registered with the same credit
        code."""
        call = make_call(
            "POST", "/v1/firms", expect(FirmPublic), body=firm, idempotency_key=idempotency_key
        )
        return await self._session.send(call)

    def list(
        self,
        *,
        town_code: str | None = None,
        credit_code: str | None = None,
        page_size: int = 50,
    ) -> AsyncPaginator[FirmPublic]:
        def page(cursor: str | None) -> Call[Page[FirmPublic]]:
            params = {
                "town_code": town_code,
                "credit_code": credit_code,
                "limit": page_size,
                "cursor": cursor,
            }
            return make_call("GET", "/v1/firms", expect(Page[FirmPublic]), params=params)

        return AsyncPaginator(self._session, page)

    async def get(self, firm_id: int) -> FirmPublic:
        return await self._session.send(
            make_call("GET", f"/v1/firms/{firm_id}", expect(FirmPublic))
        )

    async def update(
        self,
        firm: int | FirmPublic,
        changes: FirmUpdate,
        *,
        if_match: str | None = None,
        idempotency_key: str | None = None,
    ) -> FirmPublic:
        """Change the fields set in ``changes``. Pass the firm as you read it: its version
        is sent as If-Match, and a firm changed since answers PreconditionFailed (412).
        With an id, pass ``if_match`` (the ETag you read, or ``"*"`` to overwrite whatever
        is current); without it the API answers PreconditionRequired (428)."""
        firm_id, if_match = target(firm, if_match)
        call = make_call(
            "PATCH",
            f"/v1/firms/{firm_id}",
            expect(FirmPublic),
            body=changes,
            if_match=if_match,
            idempotency_key=idempotency_key,
        )
        return await self._session.send(call)

    async def delete(self, firm_id: int, *, idempotency_key: str | None = None) -> None:
        """Erase the profile; applications keep an anonymous snapshot."""
        call = make_call(
            "DELETE", f"/v1/firms/{firm_id}", expect_nothing, idempotency_key=idempotency_key
        )
        await self._session.send(call)

    async def bulk_import(
        self,
        firms: Iterable[FirmCreate] | bytes,
        *,
        import_id: str,
        batch_size: int | None = None,
        idempotency_key: str | None = None,
    ) -> ImportResult:
        """NDJSON import, one firm per line: each batch commits whole. Send the same lines
        with the same ``import_id`` again to resume: committed batches are skipped."""
        call = make_call(
            "POST",
            "/v1/firms/bulk",
            expect_import,
            params={"import_id": import_id, "batch_size": batch_size},
            content=ndjson(firms),
            content_type=NDJSON,
            idempotency_key=idempotency_key,
        )
        return await self._session.send(call)

    async def matches(
        self,
        firm_id: int,
        *,
        lang: Lang = "zh",
        limit: int = 20,
        near_miss_limit: int = 10,
        amount_yuan: int | None = None,
        term_months: int | None = None,
    ) -> MatchesResponse:
        """Ranked products (score, approval probability, cost, reasons) and near misses (what
        the firm lacks for a product)."""
        params = {
            "lang": lang,
            "limit": limit,
            "near_miss_limit": near_miss_limit,
            "amount_yuan": amount_yuan,
            "term_months": term_months,
        }
        call = make_call(
            "GET", f"/v1/firms/{firm_id}/matches", expect(MatchesResponse), params=params
        )
        return await self._session.send(call)


class AsyncConsents(AsyncResource):
    """Which institutions received a firm's profile (its owner portal only)."""

    def list(self, firm_id: int, *, page_size: int = 50) -> AsyncPaginator[ConsentPublic]:
        def page(cursor: str | None) -> Call[Page[ConsentPublic]]:
            params = {"limit": page_size, "cursor": cursor}
            path = f"/v1/firms/{firm_id}/consents"
            return make_call("GET", path, expect(Page[ConsentPublic]), params=params)

        return AsyncPaginator(self._session, page)

    async def revoke(
        self, firm_id: int, consent_id: int, *, idempotency_key: str | None = None
    ) -> ConsentPublic:
        """From then on the institution's reads of the firm answer NotFound."""
        call = make_call(
            "POST",
            f"/v1/firms/{firm_id}/consents/{consent_id}/revoke",
            expect(ConsentPublic),
            idempotency_key=idempotency_key,
        )
        return await self._session.send(call)
