"""The id of the request being served, so that downstream calls and log lines can name it."""

from __future__ import annotations

import uuid
from contextvars import ContextVar

# Set by each service's middleware per request (from X-Request-ID); None outside a request.
request_id_var: ContextVar[str | None] = ContextVar("finmatch_request_id", default=None)


def current_request_id() -> str | None:
    return request_id_var.get()


def new_request_id() -> str:
    return uuid.uuid4().hex
