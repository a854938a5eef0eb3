"""The id of the request being served, so that downstream calls and log lines can name it."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from contextvars import ContextVar

# Set by each service's middleware per request (from X-Request-ID); None outside a request.
request_id_var: ContextVar[str | None] = ContextVar("finmatch_request_id", default=None)


def current_request_id() -> str | None:
    return request_id_var.get()


def new_request_id() -> str:
    return uuid.uuid4().hex


_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def request_id_from_headers(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The caller's X-Request-ID if it is sane (it ends up in logs), else a new one."""
    given = dict(headers).get(b"x-request-id", b"").decode("latin-1")
    return given if _VALID_ID.match(given) else new_request_id()
