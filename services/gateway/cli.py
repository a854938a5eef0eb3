"""Gateway command line: serve the public API."""

from __future__ import annotations

import sys

import uvicorn

from services.gateway.config import get_settings
from services.gateway.main import create_app


def main() -> int:
    settings = get_settings()
    uvicorn.run(
        create_app(settings),
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_level=settings.log_level.lower(),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
