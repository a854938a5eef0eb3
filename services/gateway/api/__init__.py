"""The public /v1 API, one router module per resource.

Ids in paths use the ``id`` convertor registered here (``/{firm_id:id}``): any segment but the
literal ones that sit beside an id under the same prefix, so ``/v1/firms/bulk`` is never read as
a firm id (PATCH /v1/firms/bulk answers 405 with Allow, not 422 for a bad firm_id), while
``/v1/firms/abc`` still reaches the route and answers 422 naming firm_id.
"""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor

# The literal segments beside an id: POST /v1/firms/bulk, POST /v1/products/preview.
LITERAL_SEGMENTS = ("bulk", "preview")


class IdConvertor(Convertor[str]):
    regex = rf"(?!(?:{'|'.join(LITERAL_SEGMENTS)})(?:/|$))[^/]+"

    def convert(self, value: str) -> str:
        return value  # the route's parameter validates it (an integer in its bounds)

    def to_string(self, value: str) -> str:
        return str(value)


register_url_convertor("id", IdConvertor())
