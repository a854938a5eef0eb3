"""A bank: it previews a draft product's reach, lists the product, reads its reach, receives a
lead as a signed webhook (``application.submitted``, verified before it is believed), reads the
consenting firm, records a decision, and imports its past decisions (NDJSON) for training.

    python examples/bank.py                      # one terminal: this script plays the portal too
    python examples/bank.py --wait-for-portal    # a real portal applies (examples/portal.py)

Alone, the script also plays the portal's part with the demo portal key (lines marked
``[portal, played]``): it registers the example firm and applies to the new product. With
``--wait-for-portal`` it prints the product's id and the command that applies to it, and waits.
At the end the product is archived again (``--keep-product`` keeps it listed).
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import sys
from pathlib import Path

from connection import add_connection_arguments, client_for, heading, percent, run, say, yuan
from receiver import WebhookReceiver, registered
from samples import EXAMPLE_FIRM, example_product, past_decisions

from finmatch_client import FinmatchClient
from finmatch_client.models import (
    ApplicationCreate,
    DecisionCreate,
    DecisionOutcome,
    EventType,
    ProductPublic,
    ProductReach,
    WebhookEvent,
)

PLAYED_PORTAL = "portal, played"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--wait-for-portal",
        action="store_true",
        help="do not play the portal: wait for an application from examples/portal.py",
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for the application"
    )
    parser.add_argument(
        "--history", type=int, default=240, help="past decisions to import (default %(default)s)"
    )
    parser.add_argument("--keep-product", action="store_true", help="leave the product listed")
    add_connection_arguments(parser, ["institution", "portal"])
    args = parser.parse_args()

    with contextlib.ExitStack() as stack:
        bank = stack.enter_context(client_for(args, "institution"))
        heading("Preview a draft product's reach (nothing is saved)")
        strict = example_product(min_invention_patents=3)
        show_reach(bank.products.preview(strict), "draft with 3 invention patents")

        heading("List the product, and read its reach")
        product = bank.products.create(example_product())
        if not args.keep_product:
            stack.callback(archive, bank, product.id)
        say("bank", f"listed product {product.id} {product.name} (version {product.version})")
        show_reach(bank.products.reach(product.id), f"product {product.id}")

        receiver = stack.enter_context(WebhookReceiver())
        heading("Register a webhook receiver for application.submitted")
        endpoint_id = stack.enter_context(
            registered(bank, receiver, [EventType.APPLICATION_SUBMITTED], "examples/bank.py")
        )
        say("bank", f"endpoint {endpoint_id} -> {receiver.url} (its secret went to the receiver)")

        if args.wait_for_portal:
            heading(
                f"Waiting up to {args.timeout:.0f} s for an application to product {product.id}"
            )
            say("bank", "in another terminal, run:")
            say(
                "bank", f"  {python()} examples/portal.py --product-id {product.id} --wait-for-bank"
            )
        else:
            portal = stack.enter_context(client_for(args, "portal"))
            play_the_portal(portal, product)

        lead = receiver.wait_for(
            EventType.APPLICATION_SUBMITTED,
            where=lambda event: event.data["product_id"] == product.id,
            timeout=args.timeout,
        )
        application_id = show_lead(lead)
        decide(bank, lead, application_id, product)
        import_history(bank, product, args.history)
    return 0


def python() -> str:
    """How this script was started (``.venv/bin/python`` after ``make run``), for the command
    to copy into another terminal."""
    with contextlib.suppress(ValueError):
        return str(Path(sys.executable).relative_to(Path.cwd()))
    return "python"


def show_reach(reach: ProductReach, what: str) -> None:
    share = "-" if reach.expected_approval_share is None else f"{reach.expected_approval_share:.0%}"
    eligible = "fewer than 3" if reach.eligible is None else f"{reach.eligible:,}"
    say(
        "bank",
        f"{what}: {eligible} of {reach.firms_considered:,} firms with a need qualify; "
        f"expected approval share {share}",
    )
    for criterion in reach.criteria:
        more = "a few" if criterion.additional_firms is None else f"{criterion.additional_firms:,}"
        relaxed = "dropped" if criterion.relaxed_to is None else f"at {shown(criterion.relaxed_to)}"
        binding = " (binding)" if criterion.binding else ""
        say(
            "bank",
            f"  {criterion.label_en} {shown(criterion.setting)}{binding}: {relaxed}, "
            f"{more} more firms",
        )


def shown(setting: object) -> str:
    """A rule's setting as a person reads it: 10,000,000 rather than 10000000."""
    if isinstance(setting, bool):
        return "required" if setting else "not required"
    if isinstance(setting, int):
        return f"{setting:,}"
    if isinstance(setting, list):
        return ", ".join(map(str, setting)) or "any"
    return str(setting)


def play_the_portal(portal: FinmatchClient, product: ProductPublic) -> None:
    heading("A portal's firm applies (played by this script with the portal key)")
    firm = portal.firms.create(EXAMPLE_FIRM)
    assert firm.need_amount_yuan is not None
    assert firm.need_term_months is not None
    application = portal.applications.create(
        ApplicationCreate(
            firm_id=firm.id,
            product_id=product.id,
            requested_amount_yuan=firm.need_amount_yuan,
            requested_term_months=firm.need_term_months,
            consent_share_profile=True,
        )
    )
    say(PLAYED_PORTAL, f"firm {firm.id} applied: application {application.id}, with consent")


def show_lead(lead: WebhookEvent) -> int:
    heading("A lead arrives as a verified webhook")
    application = lead.data["application"]
    eligibility = application["eligibility"]
    say(
        "bank",
        f"{lead.type} {lead.id}: application {application['id']} for "
        f"{yuan(application['requested_amount_yuan'])} over "
        f"{application['requested_term_months']} months, eligibility {eligibility['status']}",
    )
    application_id: int = application["id"]
    return application_id


def decide(
    bank: FinmatchClient, lead: WebhookEvent, application_id: int, product: ProductPublic
) -> None:
    heading("Read the consenting firm, and record the decision")
    firm_id = lead.data["application"]["firm_id"]
    # The event carried the profile; the firm itself is readable while its consent stands.
    firm = bank.firms.get(firm_id)
    say(
        "bank",
        f"firm {firm.id} {firm.name} ({firm.credit_code}): {firm.size_class}, "
        f"revenue {yuan(firm.annual_revenue_yuan)}, {firm.invention_patents} invention patents",
    )
    requested = lead.data["application"]["requested_amount_yuan"]
    decision = bank.applications.decide(
        application_id,
        DecisionCreate(
            outcome=DecisionOutcome.APPROVED,
            approved_amount_yuan=requested,
            rate_bp=product.rate_min_bp + 35,
            term_months=lead.data["application"]["requested_term_months"],
            note="examples/bank.py",
        ),
    )
    say(
        "bank",
        f"decision {decision.id}: {decision.outcome} {yuan(decision.approved_amount_yuan)} at "
        f"{percent(decision.rate_bp)} for {decision.term_months} months "
        "(the portal hears of it as application.decided)",
    )


def import_history(bank: FinmatchClient, product: ProductPublic, count: int) -> None:
    heading(f"Import {count} past decisions (NDJSON) for training")
    lines = past_decisions(product, count)
    # The import id makes the import resumable: the same lines sent again with it skip the
    # batches already written (under a new id, each line answers duplicate: held already).
    import_id = f"examples-bank-{product.id}-{secrets.token_hex(3)}"
    result = bank.decisions.import_history(lines, import_id=import_id)
    say("bank", f"import {import_id}: {result.summary} in batches {result.batches}")
    again = bank.decisions.import_history(lines, import_id=import_id)
    statuses = sorted({line.status for line in again.lines})
    say("bank", f"sent again with the same import id: every line {', '.join(statuses)}")
    say("bank", "they feed training only (no lead, no statistic); an admin trains on them")


def archive(bank: FinmatchClient, product_id: int) -> None:
    """Withdraw the example product again (archived, since an application and imported
    decisions refer to it), so that runs do not pile products up in the demo catalogue."""
    with contextlib.suppress(Exception):
        bank.products.delete(product_id)
        say("bank", f"archived product {product_id} (--keep-product keeps it listed)")


if __name__ == "__main__":
    run(main)
