"""Which model the matching service serves, as the gateway knows it (part of cache keys)."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from shared.errors import ProblemError

log = logging.getLogger("finmatch.gateway.model_version")


async def refresh_model_version(app: FastAPI) -> None:
    """Ask the matching service; on failure keep what we knew."""
    try:
        current = await app.state.matching.current_model()
        app.state.model_version = str(current["version"])
    except ProblemError as exc:
        log.debug("model version unknown: %s", exc)
