"""Which problem codes each public operation can answer, written into its OpenAPI responses.

Every operation lists its codes in ``x-problem-codes`` (code, statuses, meaning) and each
response status it can answer names them in its description, with an example problem body
per code. The codes shared by every authenticated operation are added here; the table below
holds what is particular to each operation.
"""

from __future__ import annotations

from typing import Any

from shared.error_codes import ErrorCode as E
from shared.errors import PROBLEM_JSON

OperationKey = tuple[str, str]  # (METHOD, path template)

# Any authenticated call: the key, the rate limit, the registry behind the key's resolution.
AUTHENTICATED = (
    E.MISSING_KEY,
    E.INVALID_KEY,
    E.KEY_EXPIRED,
    E.INVALID_SESSION,
    E.AUTH_THROTTLED,
    E.RATE_LIMITED,
    E.SERVICE_UNAVAILABLE,
    E.DATABASE_UNAVAILABLE,
    E.BAD_GATEWAY,
    E.GATEWAY_TIMEOUT,
)
# A role that may not use an operation, and an id out of scope, both answer 404.
SCOPED = (E.NOT_FOUND,)
WITH_INPUT = (E.VALIDATION_ERROR,)
WITH_BODY = (E.HTTP_ERROR, E.PAYLOAD_TOO_LARGE, E.VALIDATION_ERROR)
# An unsafe method: the dashboard session's CSRF header; Idempotency-Key on every POST.
UNSAFE = (E.CSRF_HEADER_MISSING,)
IDEMPOTENT = (E.IDEMPOTENCY_KEY_REUSED, E.IDEMPOTENCY_IN_FLIGHT)
UPDATE = (E.PRECONDITION_REQUIRED, E.PRECONDITION_FAILED, E.STALE_VERSION)

# What each operation answers beyond the codes above.
OPERATION_CODES: dict[OperationKey, tuple[E, ...]] = {
    ("POST", "/v1/firms"): (E.FIRM_REGISTERED_ELSEWHERE, E.CONCURRENT_CREATE),
    ("GET", "/v1/firms"): (),
    ("POST", "/v1/firms/bulk"): (),
    ("GET", "/v1/firms/{firm_id}"): (),
    ("PATCH", "/v1/firms/{firm_id}"): (),
    ("DELETE", "/v1/firms/{firm_id}"): (),
    ("GET", "/v1/firms/{firm_id}/consents"): (),
    ("POST", "/v1/firms/{firm_id}/consents/{consent_id}/revoke"): (E.CONCURRENT_CREATE,),
    ("GET", "/v1/firms/{firm_id}/matches"): (
        E.MATCHING_NOT_CONSENTED,
        E.MATCHING_UNAVAILABLE,
        E.REGISTRY_UNAVAILABLE,
    ),
    ("POST", "/v1/products"): (),
    ("GET", "/v1/products"): (),
    ("GET", "/v1/products/{product_id}"): (),
    ("PATCH", "/v1/products/{product_id}"): (),
    ("DELETE", "/v1/products/{product_id}"): (),
    ("POST", "/v1/products/preview"): (E.MATCHING_UNAVAILABLE,),
    ("GET", "/v1/products/{product_id}/reach"): (E.MATCHING_UNAVAILABLE,),
    ("POST", "/v1/applications"): (E.NOT_ELIGIBLE, E.APPLICATION_OPEN, E.CONCURRENT_CREATE),
    ("GET", "/v1/applications"): (),
    ("GET", "/v1/applications/{application_id}"): (),
    ("POST", "/v1/applications/{application_id}/withdraw"): (E.INVALID_TRANSITION,),
    ("POST", "/v1/applications/{application_id}/decision"): (E.INVALID_TRANSITION,),
    ("GET", "/v1/applications/{application_id}/decision"): (),
    ("POST", "/v1/decisions/history"): (),
    ("PUT", "/v1/registers/{kind}"): (
        E.UNSUPPORTED_MEDIA_TYPE,
        E.UNKNOWN_COLUMN,
        E.INVALID_REGISTER_LINE,
        E.EMPTY_REGISTER_UPLOAD,
        E.UPLOAD_CONFLICT,
        E.UPLOAD_EXPIRED,
        E.UPLOAD_MODE_DIFFERS,
        E.UPLOAD_AS_OF_DIFFERS,
    ),
    ("POST", "/v1/registers/{kind}"): (
        E.UNSUPPORTED_MEDIA_TYPE,
        E.UNKNOWN_COLUMN,
        E.INVALID_REGISTER_LINE,
        E.UPLOAD_CONFLICT,
        E.UPLOAD_EXPIRED,
        E.UPLOAD_MODE_DIFFERS,
        E.UPLOAD_AS_OF_DIFFERS,
    ),
    ("GET", "/v1/stats/overview"): (),
    ("GET", "/v1/stats/breakdown"): (),
    ("GET", "/v1/stats/institutions"): (),
    ("GET", "/v1/stats/products"): (),
    ("GET", "/v1/stats/targets"): (),
    ("GET", "/v1/stats/coverage"): (),
    ("POST", "/v1/stats/what-if"): (E.REGISTRY_UNAVAILABLE,),
    ("GET", "/v1/stats/firms"): (),
    ("GET", "/v1/stats/registers"): (),
    ("GET", "/v1/admin/institutions"): (),
    ("POST", "/v1/admin/institutions"): (E.CONFLICT,),
    ("POST", "/v1/admin/principals"): (),
    ("POST", "/v1/admin/keys"): (),
    ("GET", "/v1/admin/keys"): (),
    ("POST", "/v1/admin/keys/{key_id}/revoke"): (),
    ("GET", "/v1/admin/models"): (),
    ("POST", "/v1/admin/models/train"): (
        E.TRAINING_IN_PROGRESS,
        E.TRAINING_REFUSED,
        E.REGISTRY_UNAVAILABLE,
    ),
    ("GET", "/v1/admin/models/jobs"): (),
    ("GET", "/v1/admin/models/jobs/{job_id}"): (E.JOB_NOT_FOUND,),
    ("POST", "/v1/admin/models/{version}/promote"): (E.REGISTRY_UNAVAILABLE,),
    ("POST", "/v1/admin/models/rollback"): (E.NO_PREVIOUS_MODEL, E.REGISTRY_UNAVAILABLE),
    ("GET", "/v1/reference/towns"): (),
    ("GET", "/v1/reference/industries"): (),
    ("GET", "/v1/reference/product-categories"): (),
    ("GET", "/v1/reference/error-codes"): (),
    ("POST", "/v1/webhooks/endpoints"): (
        E.TOO_MANY_ENDPOINTS,
        E.UNSAFE_WEBHOOK_URL,
        E.EVENT_TYPE_NOT_RECEIVED,
        E.IDEMPOTENCY_SECRET_NOT_REPLAYED,
    ),
    ("GET", "/v1/webhooks/endpoints"): (),
    ("GET", "/v1/webhooks/endpoints/{endpoint_id}"): (),
    ("PATCH", "/v1/webhooks/endpoints/{endpoint_id}"): (
        E.UNSAFE_WEBHOOK_URL,
        E.EVENT_TYPE_NOT_RECEIVED,
    ),
    ("DELETE", "/v1/webhooks/endpoints/{endpoint_id}"): (),
    ("POST", "/v1/webhooks/endpoints/{endpoint_id}/rotate-secret"): (
        E.IDEMPOTENCY_SECRET_NOT_REPLAYED,
    ),
    ("POST", "/v1/webhooks/endpoints/{endpoint_id}/test"): (E.EVENT_TYPE_NOT_RECEIVED,),
    ("GET", "/v1/webhooks/deliveries"): (),
    ("POST", "/v1/webhooks/deliveries/{delivery_id}/redeliver"): (),
}
# Operators' endpoints: no key, no problem of their own (readiness answers its own JSON).
UNAUTHENTICATED = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")}
# Any principal may read the vocabulary: no role check, no id.
UNSCOPED_PREFIX = "/v1/reference/"


def codes_for(method: str, path: str, operation: dict[str, Any]) -> tuple[E, ...]:
    """Every code the operation can answer, in registry order."""
    if (method, path) in UNAUTHENTICATED:
        return ()
    codes = set(AUTHENTICATED) | set(OPERATION_CODES[(method, path)])
    if not path.startswith(UNSCOPED_PREFIX):
        codes |= set(SCOPED)
    if operation.get("parameters"):
        codes |= set(WITH_INPUT)
    if "requestBody" in operation:
        codes |= set(WITH_BODY)
    if method != "GET":
        codes |= set(UNSAFE)
    if method == "POST":
        codes |= set(IDEMPOTENT)
    if method == "PATCH":
        codes |= set(UPDATE)
    return tuple(code for code in E if code in codes)


def example_problem(code: E, status: int, path: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"https://finmatch.example/problems/{code}",
        "title": code.en.split(";")[0],
        "status": status,
        "code": code.value,
        "detail": code.en,
        "instance": path,
    }
    if code is E.VALIDATION_ERROR:
        body["detail"] = "invalid value for: town_code"
        body["errors"] = [
            {
                "field": "town_code",
                "message": "unknown town code '441900999'; see /v1/reference/towns",
                "type": "value_error",
            }
        ]
    return body


def document_problems(schema: dict[str, Any]) -> None:
    """Write ``x-problem-codes`` and, per status, the codes and an example body of each."""
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            codes = codes_for(method.upper(), path, operation)
            if not codes:
                continue
            operation["x-problem-codes"] = [
                {"code": code.value, "statuses": list(code.statuses)} for code in codes
            ]
            responses = operation.setdefault("responses", {})
            for status in sorted({s for code in codes for s in code.statuses}):
                named = [code for code in codes if status in code.statuses]
                entry = responses.setdefault(str(status), {"description": "error"})
                listed = ", ".join(f"`{code}` ({code.en})" for code in named)
                base = entry.get("description", "error")
                entry["description"] = f"{base}. Codes: {listed}"
                content = entry.setdefault("content", {})
                media = content.setdefault(
                    PROBLEM_JSON, {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}
                )
                # An operation's own example (e.g. with a job_id) stands for its code.
                own = media.pop("example", None)
                media["examples"] = {
                    code.value: {
                        "summary": code.en,
                        "value": own
                        if isinstance(own, dict) and own.get("code") == code
                        else example_problem(code, status, path),
                    }
                    for code in named
                }
