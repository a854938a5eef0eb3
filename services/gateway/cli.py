"""Gateway command line: serve the public API."""

from __future__ import annotations

import sys

import uvicorn

from services.gateway.config import get_settings
from services.gateway.main import create_app
from shared.logging import configure_logging


def main() -> int:
    settings = get_settings()
    configure_logging("gateway", settings.log_level, settings.log_format)
    uvicorn.run(
        create_app(settings),
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_level=settings.log_level.lower(),
        log_config=None,  # keep our format (service and request id on every line)
        access_log=False,  # our access middleware logs each request once, with its id
        # The app reads forwarded headers from FINMATCH_TRUSTED_PROXIES only (not uvicorn's
        # FORWARDED_ALLOW_IPS).
        proxy_headers=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
