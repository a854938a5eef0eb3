"""Request and response examples for every operation, composed from the schemas' own.

A model's ``examples`` (or a field's) is used as written; an object is the composition of its
fields' examples; what has none gets the first value its schema allows (an enum's first, a
minimum, a default). The gateway's tests hold every composed example to its schema, so a
field whose pattern or bounds the composer cannot meet shows up there and gets an example of
its own.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from services.gateway.openapi._answers import ANSWER_EXAMPLES

MAX_DEPTH = 8
FORMAT_EXAMPLES = {
    "date": "2025-03-01",
    "date-time": "2025-03-01T09:30:00+08:00",
    "uri": "https://portal.example/hooks/finmatch",
    "email": "ops@portal.example",
}


def compose(schema: Any, components: dict[str, Any], depth: int = 0) -> Any:
    """An example value for ``schema`` (``#/components/schemas/...`` refs resolved)."""
    if not isinstance(schema, dict) or depth > MAX_DEPTH:
        return None
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return compose(components[name], components, depth + 1)
    for key in ("examples", "example"):
        if key in schema:
            found = schema[key]
            if key == "examples" and isinstance(found, list) and found:
                return _restore_nulls(deepcopy(found[0]), schema, components, depth)
            if key == "example":
                return _restore_nulls(deepcopy(found), schema, components, depth)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if schema.get("default") is not None:
        return deepcopy(schema["default"])
    for key in ("oneOf", "anyOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return compose(options[0], components, depth + 1)
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            value = compose(part, components, depth + 1)
            if isinstance(value, dict):
                merged |= value
        return merged
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind == "object" or "properties" in schema:
        return {
            name: compose(sub, components, depth + 1)
            for name, sub in schema.get("properties", {}).items()
        }
    if kind == "array":
        # Items with several examples (an NDJSON body's lines, e.g. an approval and a
        # rejection) show them all.
        items = _resolve(schema.get("items", {}), components)
        several = items.get("examples") if isinstance(items, dict) else None
        if isinstance(several, list) and len(several) > 1:
            return [_restore_nulls(deepcopy(e), items, components, depth) for e in several]
        item = compose(schema.get("items", {}), components, depth + 1)
        return [item] * max(1, int(schema.get("minItems", 1)))
    if kind == "string":
        return _string(schema)
    if kind == "integer":
        return int(_number(schema, 1))
    if kind == "number":
        return float(_number(schema, 1.0))
    if kind == "boolean":
        return True
    return None


def _resolve(schema: Any, components: dict[str, Any]) -> Any:
    while isinstance(schema, dict) and "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _nullable(schema: Any, components: dict[str, Any]) -> bool:
    schema = _resolve(schema, components)
    if not isinstance(schema, dict):
        return False
    kind = schema.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    options: list[Any] = schema.get("anyOf") or schema.get("oneOf") or []
    return any(_nullable(option, components) for option in options)


def _restore_nulls(value: Any, schema: Any, components: dict[str, Any], depth: int) -> Any:
    """Put back the nulls of a model's own example: FastAPI drops every None from the schema
    it renders, which leaves a required, nullable field missing from the example."""
    schema = _resolve(schema, components)
    if depth > MAX_DEPTH or not isinstance(schema, dict):
        return value
    if isinstance(value, list) and "items" in schema:
        return [_restore_nulls(v, schema["items"], components, depth + 1) for v in value]
    if not isinstance(value, dict):
        return value
    options = [s for s in schema.get("anyOf", []) if _resolve(s, components).get("properties")]
    if options and "properties" not in schema:
        return _restore_nulls(value, options[0], components, depth + 1)
    properties = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in value and _nullable(properties.get(name), components):
            value[name] = None
    for name, sub in properties.items():
        if name in value:
            value[name] = _restore_nulls(value[name], sub, components, depth + 1)
    return value


def _string(schema: dict[str, Any]) -> str:
    text = FORMAT_EXAMPLES.get(schema.get("format", ""), "example")
    minimum, maximum = schema.get("minLength", 0), schema.get("maxLength")
    if len(text) < minimum:
        text = text + "x" * (minimum - len(text))
    if maximum is not None:
        text = text[:maximum]
    return text


def _number(schema: dict[str, Any], fallback: float) -> float:
    if "minimum" in schema:
        low = float(schema["minimum"])
        return max(low, fallback) if schema.get("maximum", low + fallback) >= fallback else low
    if "exclusiveMinimum" in schema:
        return float(schema["exclusiveMinimum"]) + 1
    if "maximum" in schema:
        return min(float(schema["maximum"]), fallback)
    return fallback


def add_examples(schema: dict[str, Any]) -> None:
    """An ``example`` on every request body and success answer that has none."""
    components = schema.get("components", {}).get("schemas", {})
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            body = operation.get("requestBody", {}).get("content", {})
            answers = [
                response.get("content", {})
                for status, response in operation.get("responses", {}).items()
                if status.startswith("2")
            ]
            written = ANSWER_EXAMPLES.get((method.upper(), path))
            for content in [body, *answers]:
                for media in content.values():
                    if "example" in media or "examples" in media:
                        continue
                    if written is not None and content is not body:
                        media["example"] = deepcopy(written)
                    elif "schema" in media:
                        media["example"] = compose(media["schema"], components)
