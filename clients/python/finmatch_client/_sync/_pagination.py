# Generated from finmatch_client/_async/_pagination.py by tools/unasync.py: edit that, not this.
"""Lists as iterators: items across pages, following each page's cursor."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from finmatch_client._core import Call
from finmatch_client._sync._session import Session
from finmatch_client.models._base import Page

T = TypeVar("T")


class Paginator(Generic[T]):
    """Every item of a list, page after page (``for item in ...``). Nothing is fetched
    until it is iterated; each iteration starts again from the first page."""

    def __init__(self, session: Session, page: Callable[[str | None], Call[Page[T]]]) -> None:
        self._session = session
        self._page = page

    def __iter__(self) -> Iterator[T]:
        return self._items()

    def _items(self) -> Iterator[T]:
        for page in self.pages():
            for item in page.data:
                yield item

    def pages(self) -> Iterator[Page[T]]:
        """The pages themselves, for a caller that wants their cursors."""
        cursor: str | None = None
        while True:
            page = self._session.send(self._page(cursor))
            yield page
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def first_page(self) -> Page[T]:
        return self._session.send(self._page(None))

    def collect(self, limit: int | None = None) -> list[T]:
        """The items in a list (the first ``limit`` of them)."""
        items: list[T] = []
        for item in self:
            if limit is not None and len(items) >= limit:
                break
            items.append(item)
        return items
