"""The body of every error answer (RFC 9457 problem details)."""

from __future__ import annotations

from finmatch_client.models._base import Answer


class FieldError(Answer):
    field: str
    message: str
    type: str | None = None


class ProblemDetails(Answer):
    type: str
    title: str
    status: int
    code: str
    detail: str
    instance: str | None = None
    errors: list[FieldError] | None = None
