# Generated from finmatch_client/_async/_resource.py by tools/unasync.py: edit that, not this.
"""What every resource group holds: the session its calls go through."""

from __future__ import annotations

from finmatch_client._sync._session import Session


class Resource:
    def __init__(self, session: Session) -> None:
        self._session = session
