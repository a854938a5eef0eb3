"""Container health check: exit 0 when the service in this container answers 200 on a probe path.

    python deploy/healthcheck.py registry            # GET /healthz on FINMATCH_REGISTRY_PORT
    python deploy/healthcheck.py gateway /readyz
    python deploy/healthcheck.py dispatcher /metrics

Standard library only: the slim image has no curl, and importing httpx would cost more time
than the check itself.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

# Each service's port setting and its default (services/<name>/config.py).
PORTS = {
    "registry": ("FINMATCH_REGISTRY_PORT", 8001),
    "matching": ("FINMATCH_MATCHING_PORT", 8002),
    "gateway": ("FINMATCH_GATEWAY_PORT", 8000),
    # The webhook dispatcher (the registry's image) serves only its metrics.
    "dispatcher": ("FINMATCH_DISPATCHER_METRICS_PORT", 8003),
}


def probe_url(service: str, path: str = "/healthz") -> str:
    variable, default = PORTS[service]
    port = int(os.environ.get(variable, default))
    return f"http://127.0.0.1:{port}{path}"


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2) or argv[0] not in PORTS:
        print(f"usage: healthcheck.py {{{','.join(PORTS)}}} [PATH]", file=sys.stderr)
        return 2
    url = probe_url(*argv)
    try:
        with urllib.request.urlopen(url, timeout=4) as answer:
            status = answer.status
    except (urllib.error.URLError, OSError) as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
