"""``python -m services.registry.dispatcher``: deliver webhooks until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from prometheus_client import REGISTRY, start_http_server

from services.registry.config import RegistrySettings
from services.registry.db import make_engine
from services.registry.dispatcher.loop import Dispatcher
from services.registry.dispatcher.metrics import OutboxCollector
from services.registry.dispatcher.scanner import Scanner
from shared.logging import configure_logging

logger = logging.getLogger("finmatch.dispatcher")


async def serve(settings: RegistrySettings) -> None:
    engine = make_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        connect_timeout_seconds=settings.db_connect_timeout_seconds,
    )
    if settings.dispatcher_metrics_port:
        REGISTRY.register(OutboxCollector(engine))
        start_http_server(settings.dispatcher_metrics_port, addr=settings.dispatcher_metrics_host)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    dispatcher = Dispatcher(engine, settings)
    scanner = Scanner(engine, settings)
    logger.info(
        "webhook dispatcher started (private targets %s; proactive matching asks %s)",
        "allowed" if settings.webhook_private_targets_allowed else "refused",
        settings.matching_url,
    )
    try:
        await asyncio.gather(dispatcher.run(stop), scanner.run(stop))
    finally:
        engine.dispose()
    logger.info("webhook dispatcher stopped")


def main() -> int:
    settings = RegistrySettings()
    configure_logging("dispatcher", settings.log_level, settings.log_format)
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
