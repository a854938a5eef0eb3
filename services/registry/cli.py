"""Registry command line: migrate, seed the demo world, rebuild the statistics cube, serve."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from services.registry.config import get_settings
from services.registry.db import make_engine
from services.registry.migrate import check, upgrade
from shared.logging import configure_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="finmatch-registry", description=__doc__)
    parser.add_argument("--database-url", help="defaults to FINMATCH_DATABASE_URL")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="alembic upgrade head")
    commands.add_parser("check-migrations", help="fail if models and migrations disagree")
    commands.add_parser(
        "stats-refresh", help="rebuild the statistics cube's dirty months (after a bulk load)"
    )
    entries = commands.add_parser(
        "firm-entries",
        help="the firms' entries in Redis (FINMATCH_REDIS_URL): write them all from the "
        "database (fill), or delete them all after firms were changed by hand (clear)",
    )
    entries.add_argument("action", choices=("fill", "clear"))
    seed = commands.add_parser("seed", help="write the synthetic Dongguan demo data (once)")
    seed.add_argument("--firms", type=int, default=5_000)
    seed.add_argument("--applications", type=int, default=6_000)
    seed.add_argument("--keys-file", type=Path, default=Path("var/demo-keys.json"))
    serve = commands.add_parser("serve", help="migrate, then run the registry with uvicorn")
    serve.add_argument("--seed", action="store_true", help="seed the demo data on first start")
    args = parser.parse_args(argv)

    settings = get_settings()
    configure_logging("registry", settings.log_level, settings.log_format)
    url = args.database_url or settings.database_url
    if args.command == "migrate":
        upgrade(url)
    elif args.command == "check-migrations":
        upgrade(url)
        check(url)
    elif args.command == "seed":
        upgrade(url)
        _seed(url, args.firms, args.applications, args.keys_file)
        refresh_stats(url)
    elif args.command == "stats-refresh":
        upgrade(url)
        refresh_stats(url)
    elif args.command == "firm-entries":
        return _firm_entries(url, args.action)
    elif args.command == "serve":
        upgrade(url)
        if args.seed:
            _seed(url, 5_000, 6_000, Path("var/demo-keys.json"))
        refresh_stats(url)
        import uvicorn

        from services.registry.main import create_app

        settings.database_url = url
        uvicorn.run(
            create_app(settings),
            host=settings.registry_host,
            port=settings.registry_port,
            log_level=settings.log_level.lower(),
            log_config=None,  # keep our format (service and request id on every line)
            access_log=False,  # our access middleware logs each request once, with its id
        )
    return 0


def refresh_stats(url: str) -> None:
    """Rebuild the statistics cube where writes left it dirty, so no official waits for it."""
    from services.registry.stats import refresh_cube

    engine = make_engine(url)
    try:
        started = time.perf_counter()
        months = refresh_cube(engine)
    finally:
        engine.dispose()
    if months:
        took = time.perf_counter() - started
        print(f"statistics cube: {months} month(s) rebuilt in {took:.1f} s", flush=True)


def _firm_entries(url: str, action: str) -> int:
    from services.registry.firm_cache import FirmCache

    settings = get_settings()
    if not settings.redis_url:
        print("FINMATCH_REDIS_URL is not set: the registry keeps no firm entries", file=sys.stderr)
        return 2
    cache = FirmCache(
        settings.redis_url,
        prefix=settings.redis_prefix,
        ttl_seconds=settings.firm_entry_ttl_seconds,
        timeout_seconds=max(settings.redis_timeout_seconds, 5.0),
    )
    engine = make_engine(url)
    try:
        if action == "fill":
            print(f"firm entries: {cache.fill(engine):,} firms written", flush=True)
        else:
            cache.clear()
            print("firm entries: all deleted", flush=True)
    finally:
        engine.dispose()
        cache.close()
    return 0


def _seed(url: str, firms: int, applications: int, keys_file: Path) -> None:
    from services.registry.seed.loader import seed_demo

    engine = make_engine(url)
    try:
        result = seed_demo(engine, n_firms=firms, n_applications=applications, keys_file=keys_file)
    finally:
        engine.dispose()
    if result.seeded:
        print(
            f"seeded synthetic demo data: {result.firms} firms, {result.products} products, "
            f"{result.applications} applications; demo keys in {keys_file}"
        )
    else:
        print("demo data already present; nothing seeded")


if __name__ == "__main__":
    sys.exit(main())
