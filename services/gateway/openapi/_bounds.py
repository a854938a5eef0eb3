"""Integer bounds back as integers: FastAPI's OpenAPI model types ``minimum``/``maximum`` as
float, so ``le=2**63 - 1`` comes out as ``9.223372036854776e+18``, which is 2**63: a client
or a fuzzer reading the schema then sends 2**63, which the id's validation refuses."""

from __future__ import annotations

from typing import Any

from shared.types import MAX_ID

BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
# Floats hold every integer up to 2**53 exactly; above it, the one bound we declare is MAX_ID.
EXACT_UP_TO = 2**53
LOSSY = {float(MAX_ID): MAX_ID}


def integer_bounds(node: Any) -> None:
    """Rewrite, in place, every integral float bound of ``node`` (a schema, at any depth)."""
    if isinstance(node, list):
        for item in node:
            integer_bounds(item)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key in BOUNDS and isinstance(value, float) and value.is_integer():
            node[key] = _exact(value)
        else:
            integer_bounds(value)


def _exact(value: float) -> int:
    if abs(value) <= EXACT_UP_TO:
        return int(value)
    if value in LOSSY:
        return LOSSY[value]
    # A new bound above 2**53 would be published rounded: say so rather than guess.
    raise ValueError(f"bound {value!r} is not exact as a float; add it to LOSSY")
