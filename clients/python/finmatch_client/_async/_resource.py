"""What every resource group holds: the session its calls go through."""

from __future__ import annotations

from finmatch_client._async._session import AsyncSession


class AsyncResource:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
