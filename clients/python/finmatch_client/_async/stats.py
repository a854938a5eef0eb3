"""Officials' statistics (own town; a city official every town) and the policy what-if."""

from __future__ import annotations

from datetime import date
from typing import Any

from finmatch_client._async._resource import AsyncResource
from finmatch_client._core import expect, make_call
from finmatch_client.models import (
    Breakdown,
    Coverage,
    Dimension,
    FirmsRegistered,
    League,
    Overview,
    ProductCategory,
    ProductEligibility,
    RegisterCoverage,
    RegisterKind,
    Targets,
    WhatIfAnswer,
    WhatIfRequest,
)


def _period(
    date_from: date | None,
    date_to: date | None,
    town_code: str | None,
    category: ProductCategory | str | None,
) -> dict[str, Any]:
    return {
        "date_from": date_from,
        "date_to": date_to,
        "town_code": town_code,
        "category": category,
    }


class AsyncStats(AsyncResource):
    """Periods run from ``date_from`` (included) to ``date_to`` (excluded), China time."""

    async def overview(
        self,
        *,
        date_from: date | None = None,
        date_to: date | None = None,
        town_code: str | None = None,
        category: ProductCategory | str | None = None,
    ) -> Overview:
        params = _period(date_from, date_to, town_code, category)
        call = make_call("GET", "/v1/stats/overview", expect(Overview), params=params)
        return await self._session.send(call)

    async def breakdown(
        self,
        by: Dimension | str,
        *,
        date_from: date | None = None,
        date_to: date | None = None,
        town_code: str | None = None,
        category: ProductCategory | str | None = None,
    ) -> Breakdown:
        params = {"by": by, **_period(date_from, date_to, town_code, category)}
        call = make_call("GET", "/v1/stats/breakdown", expect(Breakdown), params=params)
        return await self._session.send(call)

    async def institutions(
        self,
        *,
        deadline_days: int | None = None,
        date_from: date | None = None,
        date_to: date | None = None,
        town_code: str | None = None,
        category: ProductCategory | str | None = None,
    ) -> League:
        """The institutions' league table (response time, approvals, overdue share)."""
        params = {
            "deadline_days": deadline_days,
            **_period(date_from, date_to, town_code, category),
        }
        call = make_call("GET", "/v1/stats/institutions", expect(League), params=params)
        return await self._session.send(call)

    async def products(
        self,
        *,
        date_from: date | None = None,
        date_to: date | None = None,
        town_code: str | None = None,
        category: ProductCategory | str | None = None,
    ) -> ProductEligibility:
        params = _period(date_from, date_to, town_code, category)
        call = make_call("GET", "/v1/stats/products", expect(ProductEligibility), params=params)
        return await self._session.send(call)

    async def targets(self, *, town_code: str | None = None) -> Targets:
        call = make_call(
            "GET", "/v1/stats/targets", expect(Targets), params={"town_code": town_code}
        )
        return await self._session.send(call)

    async def coverage(
        self,
        *,
        date_from: date | None = None,
        date_to: date | None = None,
        town_code: str | None = None,
        category: ProductCategory | str | None = None,
    ) -> Coverage:
        params = _period(date_from, date_to, town_code, category)
        call = make_call("GET", "/v1/stats/coverage", expect(Coverage), params=params)
        return await self._session.send(call)

    async def registers(
        self, *, town_code: str | None = None, kind: RegisterKind | str | None = None
    ) -> RegisterCoverage:
        """Per official register: listed firms registered with us, matched, applied, approved
        (and green credit for the green list), for the scope and per town."""
        params = {"town_code": town_code, "kind": kind}
        call = make_call("GET", "/v1/stats/registers", expect(RegisterCoverage), params=params)
        return await self._session.send(call)

    async def firms(self, *, town_code: str | None = None) -> FirmsRegistered:
        call = make_call(
            "GET", "/v1/stats/firms", expect(FirmsRegistered), params={"town_code": town_code}
        )
        return await self._session.send(call)

    async def what_if(
        self, question: WhatIfRequest, *, idempotency_key: str | None = None
    ) -> WhatIfAnswer:
        """Firms that would newly qualify if one criterion changed; read-only."""
        call = make_call(
            "POST",
            "/v1/stats/what-if",
            expect(WhatIfAnswer),
            body=question,
            idempotency_key=idempotency_key,
        )
        return await self._session.send(call)
