"""Where the examples find the API and their keys, and how they report what went wrong.

Each setting comes from, in this order: the command line (``--url``, ``--portal-key``, ...), an
environment variable (``FINMATCH_API_URL``, ``FINMATCH_PORTAL_KEY``, ...), or what ``make run``
wrote: it listens on http://127.0.0.1:8000 and keeps the demo keys it printed in
``var/demo-keys.json`` (made once, when it seeds a fresh database, and the same on every run
after). ``FINMATCH_DEMO_KEYS`` names another keys file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from finmatch_client import ApiError, FinmatchClient, TransportError

DEFAULT_URL = "http://127.0.0.1:8000"
# make run writes it in the checkout it runs from: this file's repository.
DEFAULT_KEYS_FILE = Path(__file__).resolve().parents[1] / "var" / "demo-keys.json"
# The roles of var/demo-keys.json the examples use, and the option and variable for each.
ROLES = ("portal", "institution", "admin")


def add_connection_arguments(parser: argparse.ArgumentParser, roles: Sequence[str]) -> None:
    """``--url``, ``--keys-file`` and one ``--<role>-key`` for each role the example uses."""
    parser.add_argument(
        "--url",
        default=os.environ.get("FINMATCH_API_URL", DEFAULT_URL),
        help="the gateway (FINMATCH_API_URL; default %(default)s, where make run listens)",
    )
    parser.add_argument(
        "--keys-file",
        type=Path,
        default=Path(os.environ.get("FINMATCH_DEMO_KEYS", DEFAULT_KEYS_FILE)),
        help="the demo keys make run wrote (FINMATCH_DEMO_KEYS; default var/demo-keys.json)",
    )
    for role in roles:
        parser.add_argument(
            f"--{role}-key",
            default=os.environ.get(f"FINMATCH_{role.upper()}_KEY"),
            help=f"the {role}'s API key (FINMATCH_{role.upper()}_KEY; default: the demo key)",
        )


def key_for(args: argparse.Namespace, role: str) -> str:
    """The key given for ``role``, else the demo key make run wrote."""
    given: str | None = getattr(args, f"{role.replace('-', '_')}_key")
    if given:
        return given
    path: Path = args.keys_file
    try:
        keys = json.loads(path.read_text())
    except FileNotFoundError:
        raise SystemExit(
            f"no {role} key: pass --{role}-key or set FINMATCH_{role.upper()}_KEY, or start "
            f"`make run` first (it writes the demo keys to {path})"
        ) from None
    if role not in keys:
        raise SystemExit(f"{path} holds no {role!r} key (it has {', '.join(sorted(keys))})")
    key: str = keys[role]
    return key


def client_for(args: argparse.Namespace, role: str) -> FinmatchClient:
    """A client acting as ``role``: every call carries its key, retries 429 and 503 answers
    and network errors, and sends one Idempotency-Key per call (the same on each retry)."""
    return FinmatchClient(args.url, key_for(args, role))


def run(main: Callable[[], int]) -> None:
    """Run an example's ``main``; an API error or an unreachable API ends it with one readable
    message (the problem's code, the field it names and the request id) instead of a
    traceback."""
    try:
        code = main()
    except TransportError as error:
        print(f"\nthe API did not answer ({error}): is `make run` running?", file=sys.stderr)
        code = 1
    except ApiError as error:
        print(f"\nthe API refused: {describe(error)}", file=sys.stderr)
        code = 1
    except TimeoutError as error:
        print(f"\ngave up waiting: {error}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        print("\nstopped", file=sys.stderr)
        code = 130
    sys.exit(code)


def describe(error: ApiError) -> str:
    """A problem answer (RFC 9457) in one line: status, code, field, detail, request id."""
    field = f" (field {error.field})" if error.field else ""
    return f"{error.status} {error.code}{field}: {error.detail} [request id {error.request_id}]"


def say(who: str, text: str) -> None:
    """One line of the exchange, prefixed with who acts: ``[portal]``, ``[bank]``, ..."""
    print(f"[{who}] {text}", flush=True)


def heading(text: str) -> None:
    print(f"\n== {text}", flush=True)


def yuan(amount: int | None) -> str:
    return "-" if amount is None else f"¥{amount:,}"


def percent(basis_points: int | None) -> str:
    return "-" if basis_points is None else f"{basis_points / 100:.2f}%"
