# Generated from finmatch_client/_async/reference.py by tools/unasync.py: edit that, not this.
"""The vocabulary (any principal)."""

from __future__ import annotations

from finmatch_client._core import expect, make_call
from finmatch_client._sync._resource import Resource
from finmatch_client.models import IndustrySection, ProductCategoryInfo, Town


class Reference(Resource):
    def towns(self) -> list[Town]:
        call = make_call("GET", "/v1/reference/towns", expect(list[Town]))
        return self._session.send(call)

    def industries(self) -> list[IndustrySection]:
        call = make_call("GET", "/v1/reference/industries", expect(list[IndustrySection]))
        return self._session.send(call)

    def product_categories(self) -> list[ProductCategoryInfo]:
        answer = expect(list[ProductCategoryInfo])
        call = make_call("GET", "/v1/reference/product-categories", answer)
        return self._session.send(call)
