"""Registry prestart: wait until the database answers, migrate it, optionally seed the demo.

Runs in the registry image before any registry replica serves (the compose ``migrate``
service, the Kubernetes migration Job):

    python deploy/prestart.py                      # wait, alembic upgrade head, stats cube
    python deploy/prestart.py --seed-demo \\
        --train-first-model http://matching:8002   # the compose ``demo`` profile

The database is the registry's (FINMATCH_DATABASE_URL). Exit status 0 means the schema is at
head; anything else that it is not (the database did not answer in time, or a migration failed:
the message or traceback says which).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from services.registry import cli as registry_cli
from services.registry.config import get_settings
from services.registry.db import make_engine
from services.registry.migrate import upgrade

DEMO_KEYS = Path("var/demo-keys.json")


def wait_for_database(url: str, timeout: float, interval: float = 1.0) -> bool:
    """Whether ``SELECT 1`` succeeded within ``timeout`` seconds (retrying every ``interval``)."""
    deadline = time.monotonic() + timeout
    engine = make_engine(url, pool_size=1)
    try:
        while True:
            try:
                with engine.connect() as conn:
                    conn.execute(sa.text("SELECT 1"))
            except OperationalError as exc:
                if time.monotonic() >= deadline:
                    print(f"prestart: database unreachable after {timeout:.0f} s: {exc}")
                    return False
                # The first line of the driver's message says why (refused, auth, DNS).
                reason = str(exc.orig).splitlines()[0] if exc.orig else type(exc).__name__
                print(f"prestart: waiting for the database ({reason})", flush=True)
                time.sleep(interval)
            else:
                return True
    finally:
        engine.dispose()


def train_first_model(matching_url: str, internal_token: str) -> None:
    """Ask the matching service for a first model unless it already serves a learned one."""
    headers = {"X-Internal-Token": internal_token}
    with httpx.Client(base_url=matching_url, headers=headers, timeout=600) as client:
        current = client.get("/internal/models/current")
        if current.status_code == 200 and not current.json()["is_prior"]:
            print(f"prestart: matching already serves model {current.json()['version']}")
            return
        trained = client.post("/internal/models/train", json={})
    if trained.status_code == 200:
        body = trained.json()
        print(f"prestart: model {body['version']} ({body['algorithm']}): {body['reason']}")
    else:
        # Not fatal: the rule prior ranks, and automatic retraining tries again later.
        print(f"prestart: no first model ({trained.status_code}): {trained.text[:300]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="prestart", description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for it")
    parser.add_argument("--seed-demo", action="store_true", help="seed the synthetic demo")
    parser.add_argument("--keys-file", type=Path, default=DEMO_KEYS, help="demo keys go here")
    parser.add_argument("--train-first-model", metavar="MATCHING_URL", help="after seeding")
    args = parser.parse_args(argv)

    settings = get_settings()
    if not wait_for_database(settings.database_url, args.timeout):
        return 1
    print("prestart: database answers; alembic upgrade head", flush=True)
    upgrade(settings.database_url)
    print("prestart: the schema is at head", flush=True)
    # After a migration or a bulk load the cube is dirty: rebuild it before officials ask.
    registry_cli.refresh_stats(settings.database_url)
    if args.seed_demo:
        registry_cli.main(["seed", "--keys-file", str(args.keys_file)])
        if args.keys_file.exists():
            keys = json.loads(args.keys_file.read_text())
            print("prestart: demo keys (synthetic demo data only):")
            for role, key in keys.items():
                print(f"  {role:<14} {key}")
        else:  # seeded by an earlier run whose keys file is gone; keys are shown only once
            print(f"prestart: the demo was seeded earlier; no keys at {args.keys_file}")
    if args.train_first_model:
        train_first_model(args.train_first_model, settings.internal_token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
