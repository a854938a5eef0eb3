"""`make run` (python -m services.run) as a newcomer uses it: it starts, answers, and Ctrl-C
stops it cleanly, the gateway first so that its last match events reach the registry."""

from __future__ import annotations

import json
import os
import select
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.e2e.cluster import free_port
from tests.polling import wait_until
from tests.registry.dispatcher.receiver import Receiver, serve

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTED_LINE = "Ctrl-C stops all services."
START_TIMEOUT_SECONDS = 300.0


def _read_until(process: subprocess.Popen[str], marker: str, timeout: float) -> str:
    """What ``process`` printed up to and including the line holding ``marker``.

    Reads the pipe's bytes directly: a buffered readline after select() would leave lines that
    arrived together in Python's buffer, where select() never sees them (a quiet console prints
    its whole banner at once and then nothing)."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk and process.poll() is not None:
                break
            seen += chunk
            text = seen.decode("utf-8", errors="replace")
            if marker in text:
                return text
        elif process.poll() is not None:
            break
    tail = "\n".join(seen.decode("utf-8", errors="replace").splitlines()[-40:])
    raise AssertionError(f"no {marker!r} within {timeout:.0f} s:\n" + tail)


def _a_test_ping_reaches_a_receiver(gateway: str, auth: dict[str, str]) -> None:
    """The dispatcher of `make run` delivers: a test ping through the gateway reaches a receiver
    on this machine, signed with the endpoint's secret."""
    with (
        serve(Receiver(secrets=[])) as receiver,
        httpx.Client(base_url=gateway, headers=auth, timeout=30) as api,
    ):
        created = api.post(
            "/v1/webhooks/endpoints",
            json={"url": receiver.url, "event_types": ["application.decided"]},
        )
        assert created.status_code == 201, created.text
        receiver.secrets.append(created.json()["secret"])
        queued = api.post(f"/v1/webhooks/endpoints/{created.json()['id']}/test")
        assert queued.status_code == 202, queued.text
        webhook_id = queued.json()["webhook_id"]
        wait_until(lambda: receiver.seen(webhook_id), timeout=30)
    got = receiver.received[0]
    assert (got.webhook_id, got.verified, got.answered) == (webhook_id, True, 204)
    assert json.loads(got.body)["type"] == "webhook.ping"


def _the_examples_run_against_it(gateway: str, keys_file: Path) -> None:
    """examples/receiver.py and examples/portal.py as docs/integration.md runs them, against
    this make run and the keys it wrote (tests/examples checks them in depth)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINMATCH_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT / "clients" / "python"), str(REPO_ROOT)])
    connection = ["--url", gateway, "--keys-file", str(keys_file)]
    for script, args, verified in (
        ("receiver.py", ["--ping", "--count", "1", "--timeout", "60"], "webhook.ping verified"),
        ("portal.py", ["--timeout", "60"], "application.decided verified"),
    ):
        ran = subprocess.run(
            [sys.executable, str(REPO_ROOT / "examples" / script), *args, *connection],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert verified in ran.stdout, ran.stdout


def test_make_run_answers_and_stops_in_order_on_ctrl_c(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("GATEWAY", "REGISTRY", "MATCHING")}
    dispatcher_port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("FINMATCH_")  # the embedded default: SQLite, no Redis
    }
    env |= {f"FINMATCH_{name}_PORT": str(port) for name, port in ports.items()}
    env |= {"FINMATCH_DISPATCHER_METRICS_PORT": str(dispatcher_port)}
    env |= {"PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}
    # Its own process group, like a terminal's foreground job: Ctrl-C signals the whole group.
    process = subprocess.Popen(
        [sys.executable, "-m", "services.run"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        started = _read_until(process, STARTED_LINE, START_TIMEOUT_SECONDS)
        gateway = f"http://127.0.0.1:{ports['GATEWAY']}"
        assert f"API        {gateway}/v1" in started
        # The fourth process: the webhook dispatcher, allowed to deliver to this machine.
        dispatcher = f"http://127.0.0.1:{dispatcher_port}/metrics"
        assert f"webhooks   a dispatcher delivers them (metrics {dispatcher})" in started
        assert "FINMATCH_WEBHOOK_ALLOW_PRIVATE=1" in started
        assert "finmatch_webhook_outbox_pending" in httpx.get(dispatcher, timeout=10).text
        keys = json.loads((tmp_path / "var" / "demo-keys.json").read_text())
        portal = {"Authorization": f"Bearer {keys['portal']}"}
        firms = httpx.get(f"{gateway}/v1/firms", params={"limit": 1}, headers=portal, timeout=30)
        assert firms.status_code == 200, firms.text
        firm_id = firms.json()["data"][0]["id"]
        answer = httpx.get(f"{gateway}/v1/firms/{firm_id}/matches", headers=portal, timeout=30)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["degraded"] is False
        assert body["is_prior"] is False  # make run trained the first model
        assert body["ranked"]
        _a_test_ping_reaches_a_receiver(gateway, portal)
        # The banner's next step, with this run's gateway (not the default port).
        assert f"try        .venv/bin/python examples/receiver.py --ping --url {gateway}" in started
        _the_examples_run_against_it(gateway, tmp_path / "var" / "demo-keys.json")

        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        output, _ = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 0, output
    console = started + output
    assert "Traceback" not in console, console
    # A quiet console: the banner, then one line at Ctrl-C; access lines and INFO go to the logs.
    assert "/readyz" not in console, console
    assert " INFO " not in console, console
    assert output.strip().endswith("finmatch stopped: all 4 processes (logs in var/log/)"), output
    logs = {p.stem: p.read_text() for p in (tmp_path / "var" / "log").glob("*.log")}
    assert set(logs) == {"registry", "matching", "gateway", "dispatcher"}
    assert "GET /v1/firms/{firm_id}/matches 200" in logs["gateway"]  # access lines kept there
    for name, text in logs.items():
        assert "Traceback" not in text, f"{name}: {text[-3000:]}"
        assert "dropped" not in text, f"{name}: {text[-3000:]}"  # no match events lost
    with sqlite3.connect(tmp_path / "var" / "finmatch.db") as db:
        recorded = db.execute(
            "SELECT count(*) FROM match_event WHERE firm_id = ? AND model_version = ?",
            (firm_id, body["model_version"]),
        ).fetchone()[0]
    assert recorded == len(body["ranked"])
