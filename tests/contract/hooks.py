"""schemathesis hooks for the live contract run (loaded by ``st run`` through
SCHEMATHESIS_HOOKS): the NDJSON serialiser the schema calls for, a check that every problem
answered carries a code the operation documents, and the few refusals no JSON Schema can
state, each accepted for the operations it concerns only (REFUSALS_BEYOND_SCHEMA)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import orjson
import schemathesis

from shared.errors import PROBLEM_JSON
from shared.schemas.product import RANGES


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx: Any, value: Any) -> bytes:
    """An array is the lines of the body, as the schema says; text is the body itself; anything
    else (a negative case of the wrong type) goes out as one line. The json module, not orjson:
    a negative case may hold an integer beyond 64 bits, which is what it is there to send."""
    if isinstance(value, str):  # a body documented as NDJSON text (register uploads)
        return value.encode()
    items = value if isinstance(value, list) else [value]
    return b"".join(json.dumps(item).encode() + b"\n" for item in items)


def _problem(response: Any) -> dict[str, Any] | None:
    if not response.headers.get("content-type", [""])[0].startswith(PROBLEM_JSON):
        return None
    body = orjson.loads(response.content)
    return body if isinstance(body, dict) else None


@schemathesis.check
def problem_code_documented(ctx: Any, response: Any, case: Any) -> bool | None:
    """A problem answer's ``code`` is one the operation lists in ``x-problem-codes``, with the
    status the registry gives it (shared/error_codes.py)."""
    body = _problem(response)
    if body is None:
        return None
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


@dataclass(frozen=True)
class Refusal:
    """A refusal of a schema-valid request that is right, and that no JSON Schema can state:
    the problem ``code``, and for a validation error the only ``fields`` it may name and a
    fragment its message ``says``."""

    code: str
    why: str
    fields: frozenset[str] = frozenset()
    says: str = ""

    def covers(self, error: dict[str, Any]) -> bool:
        return error.get("field") in self.fields and self.says in str(error.get("message"))


def _whole_number_as_float(error: dict[str, Any], body: Any) -> bool:
    """A JSON integer field sent as 12.0: JSON Schema's "integer" admits it (12.0 equals 12),
    this API's strict types refuse it (issue 11: a count is a JSON integer, nothing is
    coerced; tests/gateway/test_strict_types.py)."""
    if error.get("type") != "int_type" or not isinstance(body, dict):
        return False
    sent = body.get(str(error.get("field")))
    return isinstance(sent, float) and sent.is_integer()


def refused_beyond_schema(
    problem: dict[str, Any], refusals: tuple[Refusal, ...], body: Any
) -> bool:
    """The problem is one of ``refusals``: its code is, and (for one that names fields) each
    error it lists is one of theirs or a whole number sent as a float (a request may break two
    such rules at once)."""
    code = problem.get("code")
    mine = [refusal for refusal in refusals if refusal.code == code]
    if any(not refusal.fields for refusal in mine):
        return True
    errors = problem.get("errors") or []
    if code != "validation_error" or not errors:
        return False
    return all(
        _whole_number_as_float(error, body) or any(r.covers(error) for r in mine)
        for error in errors
    )


def _range(low: str, high: str) -> Refusal:
    return Refusal(
        "validation_error",
        "a (min, max) pair with min > max: JSON Schema cannot compare two fields",
        frozenset({low, high}),
        "is greater than",
    )


PRODUCT_RULES = (
    *(_range(low, high) for low, high in RANGES),
    Refusal(
        "validation_error",
        "verified_only names only criteria the product sets: a pairing of fields",
        frozenset({"verified_only"}),
        "which the product does not require",
    ),
)
STALE = Refusal(
    "stale_version",
    "If-Match names a well-formed version that is not the stored one: stored data decides",
)
FIRM_DATA = (
    Refusal(
        "validation_error",
        "the credit code's mod-31 check character (GB 32100): the schema states the form only",
        frozenset({"credit_code"}),
        "check character",
    ),
    Refusal(
        "validation_error",
        "founded between 1900 and today: format date has no bounds, and today moves",
        frozenset({"established_on"}),
        "established date is",
    ),
    Refusal(
        "validation_error",
        "the division must be one of its section's (GB/T 4754): a pairing of two fields",
        frozenset({"industry_section", "industry_division"}),
        "belongs to section",
    ),
)
WEBHOOK_URL = (
    Refusal(
        "unsafe_webhook_url",
        "the host must resolve, to public addresses: DNS decides, not the URL's form",
    ),
    Refusal(
        "event_type_not_received",
        "each event type is sent to one role: the key's role decides, the schema is every role's",
    ),
)
PERIOD = (
    Refusal(
        "validation_error",
        "a statistics period lies in 2000–2099: format date has no bounds",
        frozenset({"date_from", "date_to"}),
        "must lie between 2000 and 2099",
    ),
    Refusal(
        "validation_error",
        "date_to after date_from: JSON Schema cannot compare two parameters",
        frozenset({"date_to"}),
        "date_to must be after date_from",
    ),
)
STATS_WITH_PERIOD = (
    "/v1/stats/overview",
    "/v1/stats/breakdown",
    "/v1/stats/institutions",
    "/v1/stats/products",
    "/v1/stats/coverage",
)
REFUSALS_BEYOND_SCHEMA: dict[tuple[str, str], tuple[Refusal, ...]] = {
    ("POST", "/v1/firms"): FIRM_DATA,
    ("PATCH", "/v1/firms/{firm_id}"): (*FIRM_DATA, STALE),
    ("POST", "/v1/products"): PRODUCT_RULES,
    ("POST", "/v1/products/preview"): PRODUCT_RULES,
    # A patch is merged onto the stored product before its ranges are checked.
    ("PATCH", "/v1/products/{product_id}"): (*PRODUCT_RULES, STALE),
    ("POST", "/v1/applications"): (
        Refusal(
            "not_eligible",
            "strict: true refuses a firm the product's rules exclude: stored data decides",
        ),
        Refusal(
            "validation_error",
            "the amount and term asked must lie in the product's own ranges: stored data decides",
            frozenset({"requested_amount_yuan", "requested_term_months"}),
            "for this product",
        ),
    ),
    ("POST", "/v1/applications/{application_id}/decision"): (
        Refusal(
            "validation_error",
            "an approval grants at most the amount asked: stored data decides",
            frozenset({"approved_amount_yuan"}),
            "exceeds the requested amount",
        ),
        Refusal(
            "validation_error",
            "an approval's amount, rate and term lie in the product's terms: stored data decides",
            frozenset({"approved_amount_yuan", "rate_bp", "term_months"}),
            "is outside the product's terms",
        ),
    ),
    ("POST", "/v1/admin/keys"): (
        Refusal(
            "validation_error",
            "expires_at in the future: format date-time has no bounds, and now moves",
            frozenset({"expires_at"}),
            "expires_at",
        ),
    ),
    ("POST", "/v1/admin/models/train"): (
        Refusal(
            "training_refused",
            "too few decided applications to train on: stored data decides",
        ),
    ),
    ("POST", "/v1/webhooks/endpoints"): WEBHOOK_URL,
    ("PATCH", "/v1/webhooks/endpoints/{endpoint_id}"): (*WEBHOOK_URL, STALE),
    **{("GET", path): PERIOD for path in STATS_WITH_PERIOD},
    # An upload's body is text (NDJSON or CSV) whose columns depend on the register named in
    # the path: one line schema per path value is beyond OpenAPI, so the registry checks lines.
    **{
        (method, "/v1/registers/{kind}"): (
            Refusal("invalid_register_line", "a line the register's kind does not take"),
            Refusal("unknown_column", "a column the register's kind does not have"),
            Refusal("empty_register_upload", "a full upload with no entry in its text"),
            Refusal(
                "validation_error",
                "as_of from 1990 on: format date has no bounds",
                frozenset({"as_of"}),
                "as_of is",
            ),
            Refusal(
                "validation_error",
                "text with no entry in it (a CSV header alone): the schema says text, not lines",
                frozenset({"body"}),
                "holds no line",
            ),
        )
        for method in ("PUT", "POST")
    },
}
# NDJSON imports answer 200 with a result per line: a line that breaks the schema is refused
# in the answer (not written: "invalid", or its whole batch refused), not by the status of the
# whole request.
NDJSON_IMPORTS = {("POST", "/v1/firms/bulk"), ("POST", "/v1/decisions/history")}


def _invalid_lines_refused(case: Any, response: Any) -> bool:
    """The negative part of the case is its body only, and the answer's summary says that a
    line was not written."""
    modes = {str(location.value): str(info.mode) for location, info in case.meta.components.items()}
    if modes.pop("body", None) != "negative" or "negative" in modes.values():
        return False
    lines = [orjson.loads(line) for line in response.content.splitlines() if line.strip()]
    summary = next((line["summary"] for line in lines if "summary" in line), {})
    return summary.get("invalid", 0) + summary.get("not_written", 0) > 0


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep every failure but the refusals stated above, each for its own operations."""
    key = (case.operation.method.upper(), case.operation.path)
    if failure.code == "ST201" and key in NDJSON_IMPORTS and response.status_code == 200:
        return not _invalid_lines_refused(case, response)
    if failure.code != "ST202":
        return True
    problem = _problem(response)
    refusals = REFUSALS_BEYOND_SCHEMA.get(key, ())
    body = case.body if isinstance(case.body, dict) else None
    return problem is None or not refused_beyond_schema(problem, refusals, body)
