"""Matching command line: serve, or train a model now against a running registry."""

from __future__ import annotations

import argparse
import asyncio
import sys

from services.matching.config import get_settings
from services.matching.events import event_bus
from services.matching.jobs import TrainingBusy
from services.matching.lifecycle import ModelManager
from services.matching.registry_client import RegistryClient
from services.matching.train import TrainingRefused
from shared.logging import configure_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="finmatch-matching", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the matching service with uvicorn")
    train = commands.add_parser(
        "train",
        help="train a challenger now, as a job run in this process (it shows in "
        "/v1/admin/models/jobs); promote it if it is better",
    )
    train.add_argument("--no-promote", action="store_true", help="keep it as a candidate")
    args = parser.parse_args(argv)
    settings = get_settings()
    configure_logging("matching", settings.log_level, settings.log_format)

    if args.command == "serve":
        import uvicorn

        from services.matching.main import create_app

        uvicorn.run(
            create_app(settings),
            host=settings.matching_host,
            port=settings.matching_port,
            log_level=settings.log_level.lower(),
            log_config=None,  # keep our format (service and request id on every line)
            access_log=False,  # our access middleware logs each request once, with its id
        )
        return 0
    return asyncio.run(_train(auto_promote=not args.no_promote))


async def _train(*, auto_promote: bool) -> int:
    settings = get_settings()
    registry = RegistryClient(settings.registry_url, settings.internal_token)
    bus = event_bus(settings.redis_url)
    manager = ModelManager(settings=settings, registry=registry, bus=bus)
    try:
        outcome = await manager.train(auto_promote=auto_promote)
    except TrainingRefused as exc:  # recorded as the job's error too, when a job had started
        print(f"training refused: {exc}", file=sys.stderr)
        return 2
    except TrainingBusy as exc:
        print(f"training refused: {exc} (job {exc.job_id})", file=sys.stderr)
        return 2
    finally:
        await manager.stop()
        await bus.aclose()
        await registry.aclose()
    verdict = "promoted" if outcome.promoted else "kept as candidate"
    print(f"model {outcome.version} ({outcome.algorithm}) {verdict}: {outcome.reason}")
    print("  " + ", ".join(f"{k} {v:.4f}" for k, v in sorted(outcome.metrics.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
