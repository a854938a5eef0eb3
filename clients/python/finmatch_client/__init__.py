"""finmatch's public API from Python: ``FinmatchClient`` (sync) and ``AsyncFinmatchClient``,
typed models (``finmatch_client.models``), typed errors, and ``verify_webhook``."""

from finmatch_client._async._client import AsyncFinmatchClient
from finmatch_client._async._pagination import AsyncPaginator
from finmatch_client._core import (
    NO_RETRIES,
    Call,
    RetryPolicy,
    etag_of,
    expect,
    expect_nothing,
    make_call,
    new_idempotency_key,
)
from finmatch_client._errors import (
    ApiError,
    BadRequest,
    Conflict,
    FinmatchError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    PreconditionRequired,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    TransportError,
    Unauthorized,
    UnexpectedResponse,
    Unprocessable,
    ValidationFailed,
    WebhookVerificationError,
)
from finmatch_client._sync._client import FinmatchClient
from finmatch_client._sync._pagination import Paginator
from finmatch_client._webhooks import verify_webhook

__all__ = [
    "NO_RETRIES",
    "ApiError",
    "AsyncFinmatchClient",
    "AsyncPaginator",
    "BadRequest",
    "Call",
    "Conflict",
    "FinmatchClient",
    "FinmatchError",
    "Forbidden",
    "NotFound",
    "Paginator",
    "PayloadTooLarge",
    "PreconditionFailed",
    "PreconditionRequired",
    "RateLimited",
    "RetryPolicy",
    "ServerError",
    "ServiceUnavailable",
    "TransportError",
    "Unauthorized",
    "UnexpectedResponse",
    "Unprocessable",
    "ValidationFailed",
    "WebhookVerificationError",
    "etag_of",
    "expect",
    "expect_nothing",
    "make_call",
    "new_idempotency_key",
    "verify_webhook",
]
