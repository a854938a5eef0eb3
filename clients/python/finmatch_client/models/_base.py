"""The two kinds of model: a body the client sends, an answer it reads; and a page of a list."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


class Body(BaseModel):
    """What the client sends. A misspelt field fails here, before any request; the value
    rules (bounds, codes, dates) are the API's, which answers 422 naming the field."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class Answer(BaseModel):
    """What the API answers. A field added by a newer API is kept (``model_extra``), not an
    error: an older client keeps working."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())


class Page(Answer, Generic[T]):
    """One page of a list; ``next_cursor`` is None on the last."""

    data: list[T]
    next_cursor: str | None = None
