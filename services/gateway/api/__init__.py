"""The public /v1 API, one router module per resource.

Ids in paths use the ``id`` convertor registered here (``/{firm_id:id}``): a segment that is not
a number of at most 19 digits matches no id route, so ``/v1/firms/bulk`` is never read as a
firm id (PATCH /v1/firms/bulk answers 405, not 422) and a 5,000-digit segment never reaches
``int()`` (Python refuses it: a 500).
"""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor


class IdConvertor(Convertor[int]):
    regex = "[0-9]{1,19}"  # 2**63 - 1 has 19 digits; the parameter's own bounds say the rest

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        return str(value)


register_url_convertor("id", IdConvertor())
