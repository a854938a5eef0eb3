"""schemathesis hooks for the live contract run (loaded by ``st run`` through
SCHEMATHESIS_HOOKS): the NDJSON serialiser the schema calls for, and a check that every problem
answered carries a code the operation documents."""

from __future__ import annotations

from typing import Any

import orjson
import schemathesis

from shared.errors import PROBLEM_JSON


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx: Any, value: Any) -> bytes:
    """An array is the lines of the body, as the schema says; anything else (a negative case
    of the wrong type) goes out as one line."""
    items = value if isinstance(value, list) else [value]
    return b"".join(orjson.dumps(item) + b"\n" for item in items)


@schemathesis.check
def problem_code_documented(ctx: Any, response: Any, case: Any) -> bool | None:
    """A problem answer's ``code`` is one the operation lists in ``x-problem-codes``, with the
    status the registry gives it (shared/error_codes.py)."""
    if not response.headers.get("content-type", [""])[0].startswith(PROBLEM_JSON):
        return None
    body = orjson.loads(response.content)
    if case.method.upper() != case.operation.method.upper():  # a method the path does not serve
        if (response.status_code, body.get("code")) != (405, "method_not_allowed"):
            raise AssertionError(f"{case.method} answered {response.status_code} {body}")
        return None
    documented = {
        entry["code"]: entry["statuses"]
        for entry in case.operation.definition.raw.get("x-problem-codes", [])
    }
    code = body.get("code")
    if code not in documented:
        raise AssertionError(
            f"{response.status_code} answered with problem code {code!r}, which "
            f"{case.operation.label} does not list in x-problem-codes"
        )
    if response.status_code not in documented[code]:
        raise AssertionError(
            f"problem code {code!r} answered with {response.status_code}; "
            f"documented with {documented[code]}"
        )
    return None
