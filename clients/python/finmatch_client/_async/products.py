"""Products: institutions list and maintain theirs (If-Match on update), preview a draft's
reach; every principal browses."""

from __future__ import annotations

from finmatch_client._async._pagination import AsyncPaginator
from finmatch_client._async._resource import AsyncResource
from finmatch_client._core import Call, Versioned, expect, expect_nothing, make_call, target
from finmatch_client.models import (
    Page,
    ProductCategory,
    ProductCreate,
    ProductPublic,
    ProductReach,
    ProductUpdate,
)


class AsyncProducts(AsyncResource):
    async def create(
        self, product: ProductCreate, *, idempotency_key: str | None = None
    ) -> ProductPublic:
        call = make_call(
            "POST",
            "/v1/products",
            expect(ProductPublic),
            body=product,
            idempotency_key=idempotency_key,
        )
        return await self._session.send(call)

    def list(
        self,
        *,
        category: ProductCategory | str | None = None,
        institution_id: int | None = None,
        town_code: str | None = None,
        include_inactive: bool | None = None,
        page_size: int = 100,
    ) -> AsyncPaginator[ProductPublic]:
        def page(cursor: str | None) -> Call[Page[ProductPublic]]:
            params = {
                "category": category,
                "institution_id": institution_id,
                "town_code": town_code,
                "include_inactive": include_inactive,
                "limit": page_size,
                "cursor": cursor,
            }
            return make_call("GET", "/v1/products", expect(Page[ProductPublic]), params=params)

        return AsyncPaginator(self._session, page)

    async def get(self, product_id: int) -> ProductPublic:
        call = make_call("GET", f"/v1/products/{product_id}", expect(ProductPublic))
        return await self._session.send(call)

    async def update(
        self,
        product: int | Versioned,
        changes: ProductUpdate,
        *,
        if_match: str | None = None,
        idempotency_key: str | None = None,
    ) -> ProductPublic:
        """Change the fields set in ``changes``, guarded by the version read (see
        ``firms.update``)."""
        product_id, if_match = target(product, if_match)
        call = make_call(
            "PATCH",
            f"/v1/products/{product_id}",
            expect(ProductPublic),
            body=changes,
            if_match=if_match,
            idempotency_key=idempotency_key,
        )
        return await self._session.send(call)

    async def delete(self, product_id: int, *, idempotency_key: str | None = None) -> None:
        """Removes it, or archives it when applications refer to it."""
        call = make_call(
            "DELETE",
            f"/v1/products/{product_id}",
            expect_nothing,
            idempotency_key=idempotency_key,
        )
        await self._session.send(call)

    async def preview(
        self,
        draft: ProductCreate,
        *,
        town_code: str | None = None,
        idempotency_key: str | None = None,
    ) -> ProductReach:
        """How many registered firms a draft product would reach; nothing is saved."""
        call = make_call(
            "POST",
            "/v1/products/preview",
            expect(ProductReach),
            params={"town_code": town_code},
            body=draft,
            idempotency_key=idempotency_key,
        )
        return await self._session.send(call)

    async def reach(self, product_id: int, *, town_code: str | None = None) -> ProductReach:
        """A listed product's reach: eligible firms by town and size class, which rules bind."""
        call = make_call(
            "GET",
            f"/v1/products/{product_id}/reach",
            expect(ProductReach),
            params={"town_code": town_code},
        )
        return await self._session.send(call)
