"""The NDJSON bulk imports' bodies as a schema a generator can serialise: an array of the
line's model, each item sent as one line of JSON."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from shared.schemas.firm import FirmCreate
from shared.schemas.history import HistoryLine

NDJSON = "application/x-ndjson"
REF_TEMPLATE = "#/components/schemas/{model}"
NDJSON_BODIES: dict[tuple[str, str], type[BaseModel]] = {
    ("POST", "/v1/firms/bulk"): FirmCreate,
    ("POST", "/v1/decisions/history"): HistoryLine,
}
ITEMS_AS_LINES = (
    "Sent as NDJSON: each item of this array is one line of JSON (UTF-8, `\\n` between "
    "lines), in the array's order; the results answer line by line, then a summary line."
)


def document_ndjson_bodies(schema: dict[str, Any]) -> None:
    components = schema["components"]["schemas"]
    for (method, path), model in NDJSON_BODIES.items():
        item = model.model_json_schema(ref_template=REF_TEMPLATE)
        for name, definition in item.pop("$defs", {}).items():
            components.setdefault(name, definition)
        components.setdefault(model.__name__, item)
        body = schema["paths"][path][method.lower()]["requestBody"]
        media = body["content"][NDJSON]
        media["schema"] = {
            "type": "array",
            "minItems": 1,
            "items": {"$ref": REF_TEMPLATE.format(model=model.__name__)},
            "description": ITEMS_AS_LINES,
        }
        media.pop("example", None)  # replaced by the array form, composed from the model's
