"""The vocabulary (any principal)."""

from __future__ import annotations

from finmatch_client._async._resource import AsyncResource
from finmatch_client._core import expect, make_call
from finmatch_client.models import IndustrySection, ProductCategoryInfo, Town


class AsyncReference(AsyncResource):
    async def towns(self) -> list[Town]:
        call = make_call("GET", "/v1/reference/towns", expect(list[Town]))
        return await self._session.send(call)

    async def industries(self) -> list[IndustrySection]:
        call = make_call("GET", "/v1/reference/industries", expect(list[IndustrySection]))
        return await self._session.send(call)

    async def product_categories(self) -> list[ProductCategoryInfo]:
        answer = expect(list[ProductCategoryInfo])
        call = make_call("GET", "/v1/reference/product-categories", answer)
        return await self._session.send(call)
