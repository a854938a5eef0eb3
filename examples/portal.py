"""A partner portal: it submits a firm, reads the firm's matches and near misses, applies to a
product with the firm's consent, and receives the bank's decision as a signed webhook
(``application.decided``) on a local receiver, verified before it is believed.

    python examples/portal.py                    # one terminal: this script plays the bank too
    python examples/portal.py --product-id 49 --wait-for-bank
                                                 # the bank is examples/bank.py --wait-for-portal

Alone, the script also plays the bank's part with the demo institution key (lines marked
``[bank, played]``): it lists the example product and decides the application. With
``--wait-for-bank`` it only applies to ``--product-id`` and waits for whoever holds that
product's institution key to decide.
"""

from __future__ import annotations

import argparse
import contextlib

from connection import add_connection_arguments, client_for, heading, percent, run, say, yuan
from receiver import WebhookReceiver, registered
from samples import EXAMPLE_FIRM, example_product

from finmatch_client import FinmatchClient
from finmatch_client.models import (
    ApplicationCreate,
    DecisionCreate,
    DecisionOutcome,
    EventType,
    FirmPublic,
    MatchesResponse,
    WebhookEvent,
)

PLAYED_BANK = "bank, played"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--product-id", type=int, help="apply to this product")
    parser.add_argument(
        "--wait-for-bank",
        action="store_true",
        help="do not play the bank: wait for the product's institution to decide",
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for the decision"
    )
    add_connection_arguments(parser, ["portal", "institution"])
    args = parser.parse_args()
    if args.wait_for_bank and args.product_id is None:
        parser.error("--wait-for-bank needs --product-id (examples/bank.py prints it)")

    with contextlib.ExitStack() as stack:
        portal = stack.enter_context(client_for(args, "portal"))
        bank = None if args.wait_for_bank else stack.enter_context(client_for(args, "institution"))
        product_id = args.product_id
        if product_id is None:
            assert bank is not None
            heading("The bank lists a product (played by this script with the institution key)")
            product = bank.products.create(example_product())
            stack.callback(archive, bank, product.id)
            say(PLAYED_BANK, f"listed product {product.id} {product.name}")
            product_id = product.id

        firm = submit_firm(portal)
        matches = show_matches(portal, firm, product_id)
        receiver = stack.enter_context(WebhookReceiver())
        heading("Register a webhook receiver for application.decided")
        endpoint_id = stack.enter_context(
            registered(portal, receiver, [EventType.APPLICATION_DECIDED], "examples/portal.py")
        )
        say("portal", f"endpoint {endpoint_id} -> {receiver.url} (its secret went to the receiver)")

        application_id = apply(portal, firm, product_id, matches)
        if bank is not None:
            heading("The bank decides (played by this script with the institution key)")
            decision = bank.applications.decide(
                application_id,
                DecisionCreate(
                    outcome=DecisionOutcome.APPROVED,
                    approved_amount_yuan=EXAMPLE_FIRM.need_amount_yuan,
                    rate_bp=395,
                    term_months=EXAMPLE_FIRM.need_term_months,
                    note="examples/portal.py",
                ),
            )
            say(PLAYED_BANK, f"approved application {application_id} (decision {decision.id})")
        else:
            heading(f"Waiting up to {args.timeout:.0f} s for the bank to decide")
            say("portal", f"application {application_id}: the institution decides it")

        event = receiver.wait_for(
            EventType.APPLICATION_DECIDED,
            where=lambda event: event.data["application"]["id"] == application_id,
            timeout=args.timeout,
        )
        show_decision(event)
    return 0


def submit_firm(portal: FinmatchClient) -> FirmPublic:
    heading("Submit the firm (create or update by its credit code)")
    firm = portal.firms.create(EXAMPLE_FIRM)
    say(
        "portal",
        f"firm {firm.id} {firm.name}: {firm.size_class} firm of town {firm.town_code}, "
        f"needs {yuan(firm.need_amount_yuan)} for {firm.need_term_months} months "
        f"(version {firm.version})",
    )
    for warning in firm.warnings:
        say("portal", f"warning {warning.code} on {warning.field}: {warning.message}")
    return firm


def show_matches(portal: FinmatchClient, firm: FirmPublic, product_id: int) -> MatchesResponse:
    heading("Its matches: ranked products, then near misses")
    matches = portal.firms.matches(firm.id, lang="en", limit=20, near_miss_limit=3)
    model = "the rule-and-cost prior" if matches.is_prior else f"model {matches.model_version}"
    say(
        "portal",
        f"{matches.eligible} of {matches.evaluated} products fit the firm; ranked by {model}",
    )
    shown = [m for m in matches.ranked if m.rank <= 5 or m.product_id == product_id]
    for match in shown:
        chance = "-" if match.approval_probability is None else f"{match.approval_probability:.0%}"
        mark = "  <- the one to apply to" if match.product_id == product_id else ""
        say(
            "portal",
            f"#{match.rank} {match.product.name} [{match.product.category}]: approval {chance}, "
            f"effective rate {percent(match.cost.effective_rate_bp)}{mark}",
        )
        for reason in match.reasons[:2]:
            say("portal", f"     because {reason.message}")
    for miss in matches.near_misses:
        lacking = "; ".join(unmet.message for unmet in miss.unmet)
        say("portal", f"near miss {miss.product.name}: {lacking}")
    return matches


def apply(
    portal: FinmatchClient, firm: FirmPublic, product_id: int, matches: MatchesResponse
) -> int:
    heading(f"Apply to product {product_id}, consenting to share the profile with its bank")
    if all(match.product_id != product_id for match in matches.ranked):
        say("portal", f"product {product_id} is not among the firm's matches; applying anyway")
    assert firm.need_amount_yuan is not None
    assert firm.need_term_months is not None
    application = portal.applications.create(
        ApplicationCreate(
            firm_id=firm.id,
            product_id=product_id,
            requested_amount_yuan=firm.need_amount_yuan,
            requested_term_months=firm.need_term_months,
            consent_share_profile=True,
        ),
        lang="en",
    )
    eligibility = application.eligibility
    unmet = "; ".join(u.message for u in eligibility.unmet)
    say(
        "portal",
        f"application {application.id}: {application.status}, eligibility "
        f"{eligibility.status}{': ' + unmet if unmet else ''}",
    )
    for consent in portal.consents.list(firm.id):
        if application.id in consent.application_ids:
            say("portal", f"consent {consent.id}: {consent.institution_name} holds the profile")
    return application.id


def show_decision(event: WebhookEvent) -> None:
    heading("The decision arrives as a verified webhook")
    decision = event.data["decision"]
    terms = (
        f"{yuan(decision['approved_amount_yuan'])} at {percent(decision['rate_bp'])} for "
        f"{decision['term_months']} months"
        if decision["outcome"] == DecisionOutcome.APPROVED
        else f"reason {decision['rejection_reason']}"
    )
    say(
        "portal",
        f"{event.type} {event.id}: application {event.data['application']['id']} "
        f"{decision['outcome']}, {terms}",
    )


def archive(bank: FinmatchClient, product_id: int) -> None:
    """The played bank withdraws its example product again (archived: an application refers
    to it), so runs do not pile products up in the demo catalogue."""
    with contextlib.suppress(Exception):
        bank.products.delete(product_id)
        say(
            PLAYED_BANK,
            f"archived product {product_id}: the example leaves the catalogue as it was",
        )


if __name__ == "__main__":
    run(main)
