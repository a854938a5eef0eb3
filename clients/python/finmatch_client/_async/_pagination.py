"""Lists as iterators: items across pages, following each page's cursor."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Generic, TypeVar

from finmatch_client._async._session import AsyncSession
from finmatch_client._core import Call
from finmatch_client.models._base import Page

T = TypeVar("T")


class AsyncPaginator(Generic[T]):
    """Every item of a list, page after page (``async for item in ...``). Nothing is fetched
    until it is iterated; each iteration starts again from the first page."""

    def __init__(self, session: AsyncSession, page: Callable[[str | None], Call[Page[T]]]) -> None:
        self._session = session
        self._page = page

    def __aiter__(self) -> AsyncIterator[T]:
        return self._items()

    async def _items(self) -> AsyncIterator[T]:
        async for page in self.pages():
            for item in page.data:
                yield item

    async def pages(self) -> AsyncIterator[Page[T]]:
        """The pages themselves, for a caller that wants their cursors."""
        cursor: str | None = None
        while True:
            page = await self._session.send(self._page(cursor))
            yield page
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def first_page(self) -> Page[T]:
        return await self._session.send(self._page(None))

    async def collect(self, limit: int | None = None) -> list[T]:
        """The items in a list (the first ``limit`` of them)."""
        items: list[T] = []
        async for item in self:
            if limit is not None and len(items) >= limit:
                break
            items.append(item)
        return items
