"""Each example script against the live demo stack: what it prints, and what it did there (the
webhook received and verified, the decision recorded, the history imported, nothing left
behind)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from finmatch_client.models import ApplicationStatus, DecisionOutcome
from tests.e2e.cluster import free_port
from tests.examples.conftest import SCRIPT_TIMEOUT, Demo, read_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis]
EXAMPLE_CREDIT_CODE = "91441900LUL54GBXAB"


def endpoints_left(demo: Demo, role: str) -> list[str]:
    return [e.description for e in demo.client(role).webhooks.list_endpoints()]


def example_firm_id(demo: Demo) -> int:
    (firm,) = demo.client("portal").firms.list(credit_code=EXAMPLE_CREDIT_CODE)
    return firm.id


def number_after(pattern: str, output: str) -> int:
    found = re.search(pattern, output)
    assert found, f"no {pattern!r} in:\n{output}"
    return int(found.group(1))


def test_the_receiver_gets_a_verified_ping_and_removes_its_endpoint(demo: Demo) -> None:
    ran = demo.run("receiver.py", "--ping", "--count", "1", "--timeout", "60", *demo.connection())
    assert ran.returncode == 0, ran.output
    webhook_id = re.search(r"test ping queued: webhook-id (\S+)", ran.output)
    assert webhook_id, ran.output
    assert f"webhook.ping verified (webhook-id {webhook_id.group(1)}" in ran.output
    assert "event 1: webhook.ping" in ran.output
    assert "refused" not in ran.output
    assert "examples/receiver.py" not in endpoints_left(demo, "portal")


def test_the_portal_alone_applies_and_receives_the_verified_decision(demo: Demo) -> None:
    ran = demo.run("portal.py", "--timeout", "90", *demo.connection())
    assert ran.returncode == 0, ran.output
    output = ran.output
    product_id = number_after(r"\[bank, played\] listed product (\d+)", output)
    application_id = number_after(r"application (\d+): submitted", output)
    assert re.search(r"products fit the firm; ranked by", output), output
    assert "<- the one to apply to" in output  # the new product is among the matches
    assert "near miss " in output
    assert "eligibility eligible" in output
    assert re.search(r"consent \d+: .+ holds the profile", output), output
    decided = re.search(
        rf"application\.decided (msg_\S+): application {application_id} approved, "
        r"¥2,000,000 at 3\.95% for 12 months",
        output,
    )
    assert decided, output
    assert f"application.decided verified (webhook-id {decided.group(1)}" in output

    portal = demo.client("portal")
    application = portal.applications.get(application_id)
    assert application.status == ApplicationStatus.APPROVED
    assert application.firm_id == example_firm_id(demo)
    assert portal.applications.decision(application_id).outcome == DecisionOutcome.APPROVED
    # Nothing left behind: the endpoint is deleted, the played bank's product archived.
    assert "examples/portal.py" not in endpoints_left(demo, "portal")
    assert product_id not in {p.id for p in portal.products.list(page_size=500)}


def test_the_bank_alone_gets_a_lead_decides_and_imports_its_history(demo: Demo) -> None:
    before = demo.decisions_count()
    ran = demo.run("bank.py", *demo.connection())
    assert ran.returncode == 0, ran.output
    output = ran.output
    assert re.search(r"draft with 3 invention patents: .* firms with a need qualify", output)
    product_id = number_after(r"\[bank\] listed product (\d+)", output)
    assert re.search(rf"product {product_id}: .* firms with a need qualify", output), output
    lead = re.search(
        r"application\.submitted (msg_\S+): application (\d+) for ¥2,000,000 over 12 months, "
        r"eligibility eligible",
        output,
    )
    assert lead, output
    assert f"application.submitted verified (webhook-id {lead.group(1)}" in output
    application_id = int(lead.group(2))
    assert (
        f"firm {example_firm_id(demo)} 东莞市示例智能装备有限公司 ({EXAMPLE_CREDIT_CODE})" in output
    )
    assert re.search(r"decision \d+: approved ¥2,000,000 at 3\.95% for 12 months", output)
    assert "'imported': 240" in output
    assert "sent again with the same import id: every line already_committed" in output

    bank = demo.client("institution")
    decision = bank.applications.decision(application_id)
    assert (decision.outcome, decision.approved_amount_yuan, decision.rate_bp) == (
        DecisionOutcome.APPROVED,
        2_000_000,
        395,
    )
    after = demo.decisions_count()
    assert after["imported"] == before["imported"] + 240  # once, though sent twice
    assert after["live"] == before["live"] + 1
    assert "examples/bank.py" not in endpoints_left(demo, "institution")
    assert product_id not in {p.id for p in bank.products.list(page_size=500)}


def test_the_bank_and_the_portal_in_two_terminals(demo: Demo) -> None:
    """What docs/integration.md walks through: the bank waits with its receiver; the portal
    applies to the product the bank printed and waits for the bank's decision."""
    bank = demo.start("bank.py", "--wait-for-portal", "--timeout", "120", *demo.connection())
    try:
        started = read_until(bank, "--wait-for-bank", timeout=120)
        product_id = number_after(r"portal\.py --product-id (\d+) --wait-for-bank", started)
        portal = demo.run(
            "portal.py",
            *("--product-id", str(product_id), "--wait-for-bank", "--timeout", "120"),
            *demo.connection(),
        )
        rest, _ = bank.communicate(timeout=SCRIPT_TIMEOUT)
    finally:
        if bank.poll() is None:
            bank.kill()
            bank.wait()
    assert portal.returncode == 0, portal.output
    assert bank.returncode == 0, started + rest
    assert "played" not in started + rest + portal.output  # each side was itself
    application_id = number_after(r"application (\d+): submitted", portal.output)
    assert "application.submitted verified" in rest
    assert f"application {application_id} for ¥2,000,000" in rest
    assert re.search(
        rf"application\.decided msg_\S+: application {application_id} approved", portal.output
    ), portal.output


def test_without_keys_or_api_the_examples_say_what_to_do(demo: Demo, tmp_path: Path) -> None:
    missing = tmp_path / "var" / "demo-keys.json"
    no_keys = demo.run("portal.py", "--url", demo.url, "--keys-file", str(missing))
    assert no_keys.returncode != 0
    assert "no portal key: pass --portal-key or set FINMATCH_PORTAL_KEY" in no_keys.output
    assert "make run" in no_keys.output
    assert "Traceback" not in no_keys.output

    # Keys from the environment: a wrong one is the API's 401, printed as its problem.
    wrong = demo.run(
        "receiver.py",
        *("--url", demo.url, "--keys-file", str(missing)),
        FINMATCH_PORTAL_KEY="fm_port_not-a-key",
    )
    assert wrong.returncode == 1
    assert re.search(r"the API refused: 401 \w+: .* \[request id \w+\]", wrong.output), wrong.output
    assert "Traceback" not in wrong.output

    nowhere = f"http://127.0.0.1:{free_port()}"
    down = demo.run("bank.py", "--url", nowhere, "--keys-file", str(demo.keys_file))
    assert down.returncode == 1
    assert "the API did not answer" in down.output
    assert "is `make run` running?" in down.output
    assert "Traceback" not in down.output


def test_the_portal_needs_the_product_when_it_waits_for_a_bank(demo: Demo) -> None:
    ran = demo.run("portal.py", "--wait-for-bank", *demo.connection())
    assert ran.returncode == 2  # argparse's usage error
    assert "--wait-for-bank needs --product-id" in ran.output
