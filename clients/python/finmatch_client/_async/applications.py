"""Applications with consent (portals), leads and decisions (institutions), and the NDJSON
import of past decisions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from finmatch_client._async._pagination import AsyncPaginator
from finmatch_client._async._resource import AsyncResource
from finmatch_client._core import NDJSON, Call, expect, expect_import, make_call, ndjson
from finmatch_client.models import (
    ApplicationCreate,
    ApplicationPublic,
    ApplicationStatus,
    DecisionCreate,
    DecisionPublic,
    HistoryLine,
    ImportResult,
    Page,
)


class AsyncApplications(AsyncResource):
    async def create(
        self,
        application: ApplicationCreate,
        *,
        lang: Literal["zh", "en"] = "zh",
        idempotency_key: str | None = None,
    ) -> ApplicationPublic:
        """Apply to a product, sharing the firm's profile with its institution (consent)."""
        call = make_call(
            "POST",
            "/v1/applications",
            expect(ApplicationPublic),
            params={"lang": lang},
            body=application,
            idempotency_key=idempotency_key,
        )
        return await self._session.send(call)

    def list(
        self,
        *,
        status: ApplicationStatus | str | None = None,
        firm_id: int | None = None,
        product_id: int | None = None,
        page_size: int = 50,
    ) -> AsyncPaginator[ApplicationPublic]:
        """A portal's firms' applications; an institution's leads."""

        def page(cursor: str | None) -> Call[Page[ApplicationPublic]]:
            params = {
                "status": status,
                "firm_id": firm_id,
                "product_id": product_id,
                "limit": page_size,
                "cursor": cursor,
            }
            answer = expect(Page[ApplicationPublic])
            return make_call("GET", "/v1/applications", answer, params=params)

        return AsyncPaginator(self._session, page)

    async def get(self, application_id: int) -> ApplicationPublic:
        call = make_call("GET", f"/v1/applications/{application_id}", expect(ApplicationPublic))
        return await self._session.send(call)

    async def withdraw(
        self, application_id: int, *, idempotency_key: str | None = None
    ) -> ApplicationPublic:
        """Withdraw the application, and with it the consent it carried."""
        call = make_call(
            "POST",
            f"/v1/applications/{application_id}/withdraw",
            expect(ApplicationPublic),
            idempotency_key=idempotency_key,
        )
        return await self._session.send(call)

    async def decide(
        self,
        application_id: int,
        decision: DecisionCreate,
        *,
        idempotency_key: str | None = None,
    ) -> DecisionPublic:
        """Record the institution's decision: approved (amount, rate, term) or rejected."""
        call = make_call(
            "POST",
            f"/v1/applications/{application_id}/decision",
            expect(DecisionPublic),
            body=decision,
            idempotency_key=idempotency_key,
        )
        return await self._session.send(call)

    async def decision(self, application_id: int) -> DecisionPublic:
        call = make_call(
            "GET", f"/v1/applications/{application_id}/decision", expect(DecisionPublic)
        )
        return await self._session.send(call)


class AsyncDecisions(AsyncResource):
    async def import_history(
        self,
        lines: Iterable[HistoryLine] | bytes,
        *,
        import_id: str,
        batch_size: int | None = None,
        idempotency_key: str | None = None,
    ) -> ImportResult:
        """An institution's past applications and decisions (NDJSON), for training only.
        Each batch commits whole; resend with the same ``import_id`` to resume. A line the
        institution already holds (from any import) answers ``duplicate``, not written twice."""
        call = make_call(
            "POST",
            "/v1/decisions/history",
            expect_import,
            params={"import_id": import_id, "batch_size": batch_size},
            content=ndjson(lines),
            content_type=NDJSON,
            idempotency_key=idempotency_key,
        )
        return await self._session.send(call)
