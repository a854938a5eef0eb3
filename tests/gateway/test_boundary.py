"""The gateway is a process of its own: it loads no other service and no learning stack.

Checked in a fresh interpreter (a test worker has imported every service already). The same
rule is declared for import-linter in pyproject.toml and checked by ``make lint``; this test
also catches what a static graph cannot see (an import made while the app is built).
"""

from __future__ import annotations

import json
import subprocess
import sys

_PROBE = """
import json, sys
from services.gateway.main import create_app
create_app()
print(json.dumps(sorted(sys.modules)))
"""


def test_the_gateway_process_loads_no_other_service_and_no_learning_stack() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    modules = json.loads(done.stdout.splitlines()[-1])
    assert "services.gateway.api.matches" in modules  # the probe did load the gateway
    other_services = [
        m for m in modules if m.startswith(("services.registry", "services.matching"))
    ]
    assert other_services == []
    learning = [m for m in modules if m.split(".")[0] in {"sklearn", "numpy", "scipy", "joblib"}]
    assert learning == []
