"""The soak's traffic: which request comes next, and what each acknowledged write leaves behind.

The mix is matches, firm upserts (new firms and re-sent ones), applications, decisions and
officials' statistics. Every write carries its own Idempotency-Key, as a careful client's would.
A write answered 2xx is *acknowledged* and goes into the ledger that the count-back checks; a
write answered otherwise (or not at all) may or may not have landed and is only counted.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from bench.soak.world import OpenApplication, World
from shared.vocab.credit_code import make_dongguan_credit_code

# Shares of the requests. A decision needs an open application, so it stays below applications.
MIX = {"match": 0.45, "firm_upsert": 0.20, "application": 0.15, "decision": 0.10, "stats": 0.10}
NEW_FIRM_SHARE = 0.75  # of firm upserts; the others re-send a firm the soak created (200)
APPROVED_SHARE = 0.6
FIRST_NEW_FIRM = 50_000_000  # credit-code sequence of the soak's firms, far past the seed's
FIRM_SEED = 11  # population.generate_firms seed of the soak's new firms (the demo's is another)
STATS_PATHS = (
    "/v1/stats/overview",
    "/v1/stats/breakdown?by=town",
    "/v1/stats/breakdown?by=category",
    "/v1/stats/institutions",
    "/v1/stats/firms",
)
REJECTION_REASONS = ("insufficient_collateral", "risk_appetite", "insufficient_revenue")


@dataclass
class Call:
    """One request: its operation, the key it sends, and what its acknowledgement records."""

    op: str
    method: str
    path: str
    key: str
    body: dict[str, Any] | None = None
    context: dict[str, Any] = field(default_factory=dict)


@dataclass
class Ledger:
    """Acknowledged writes (the count-back's expectations) and unacknowledged ones by operation."""

    firms_created: dict[int, str] = field(default_factory=dict)  # id → credit code
    firm_updates: dict[int, int] = field(default_factory=dict)  # id → highest version answered
    applications: dict[int, tuple[int, int]] = field(default_factory=dict)  # id → firm, product
    decisions: dict[int, tuple[int, str]] = field(default_factory=dict)  # application → id, outcome
    unacknowledged: Counter[str] = field(default_factory=Counter)
    # A 2xx that does not say what the ledger expects (a create answered 200, say).
    surprises: list[str] = field(default_factory=list)


def new_firm_bodies(seed: int = FIRM_SEED) -> Iterator[dict[str, Any]]:
    """Synthetic firms (the seed's generator) with credit codes no seeded firm has."""
    from services.registry.seed.population import generate_firms

    for number, firm in enumerate(generate_firms(10**9, seed=seed)):
        body = {k: v.isoformat() if isinstance(v, date) else v for k, v in firm.items()}
        body["credit_code"] = make_dongguan_credit_code(FIRST_NEW_FIRM + number)
        yield body


class Traffic:
    """Draws the next call from the mix and settles its answer into the ledger."""

    def __init__(self, world: World, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.keys = world.keys
        self.ledger = Ledger()
        self.products = {p.id: p for p in world.products}
        self.product_ids = sorted(self.products)
        self.firms = sorted(world.firms)
        self.match_firms = [f for f in self.firms if world.firms[f]]
        self.created_ids: list[int] = []  # acknowledged new firms
        self.created_bodies: dict[int, dict[str, Any]] = {}  # their bodies, as last sent
        self.used_pairs = set(world.open_pairs)
        self.open_leads: deque[OpenApplication] = deque(world.open_leads)
        self.new_firms = new_firm_bodies()
        self.stats_paths = itertools.cycle(STATS_PATHS)
        self.ops = list(MIX)
        self.weights = list(MIX.values())
        self.substituted: Counter[str] = Counter()  # drawn operations sent as a match instead

    def next_call(self) -> Call:
        op = self.rng.choices(self.ops, self.weights)[0]
        call = getattr(self, f"_{op}")()
        assert isinstance(call, Call)
        return call

    # --- the operations ---------------------------------------------------------------

    def _match(self) -> Call:
        firm = self.rng.choice(self.match_firms)
        return Call("match", "GET", f"/v1/firms/{firm}/matches", self.keys["portal"])

    def _stats(self) -> Call:
        return Call("stats", "GET", next(self.stats_paths), self.keys["official_city"])

    def _firm_upsert(self) -> Call:
        if self.created_ids and self.rng.random() >= NEW_FIRM_SHARE:
            firm_id = self.rng.choice(self.created_ids)
            before = self.created_bodies[firm_id]
            body = self.created_bodies[firm_id] = before | {"employees": before["employees"] + 1}
            context = {"firm_id": firm_id}
        else:
            body, context = next(self.new_firms), {}
        return Call("firm_upsert", "POST", "/v1/firms", self.keys["portal"], body, context)

    def _application(self) -> Call:
        for _ in range(50):
            firm, product_id = self.rng.choice(self.firms), self.rng.choice(self.product_ids)
            if (firm, product_id) not in self.used_pairs:
                break
        else:
            self.substituted["application"] += 1
            return self._match()
        self.used_pairs.add((firm, product_id))
        product = self.products[product_id]
        body = {
            "firm_id": firm,
            "product_id": product_id,
            "requested_amount_yuan": self.rng.randint(product.amount_min, product.amount_max),
            "requested_term_months": self.rng.randint(product.term_min, product.term_max),
            "consent_share_profile": True,
        }
        return Call("application", "POST", "/v1/applications", self.keys["portal"], body)

    def _decision(self) -> Call:
        if not self.open_leads:
            self.substituted["decision"] += 1
            return self._match()
        lead = self.open_leads.popleft()
        product = self.products.get(lead.product_id)
        approve = (
            product is not None
            and lead.amount >= product.amount_min
            and self.rng.random() < APPROVED_SHARE
        )
        if approve:
            assert product is not None
            body: dict[str, Any] = {
                "outcome": "approved",
                "approved_amount_yuan": min(lead.amount, product.amount_max),
                "term_months": min(max(lead.term, product.term_min), product.term_max),
                "rate_bp": self.rng.randint(product.rate_min, product.rate_max),
            }
        else:
            body = {"outcome": "rejected", "rejection_reason": self.rng.choice(REJECTION_REASONS)}
        path = f"/v1/applications/{lead.id}/decision"
        return Call("decision", "POST", path, self.keys["institution"], body, {"lead": lead})

    # --- answers ----------------------------------------------------------------------

    def settle(self, call: Call, status: int, answer: Any) -> None:
        """Record what an answer acknowledged (``answer`` is its JSON body when 2xx)."""
        if call.method != "POST":
            return
        if not 200 <= status < 300 or not isinstance(answer, dict):
            self.ledger.unacknowledged[call.op] += 1
            return
        ledger = self.ledger
        if call.op == "firm_upsert":
            firm_id = int(answer["id"])
            expected = 200 if "firm_id" in call.context else 201
            if status != expected or call.context.get("firm_id", firm_id) != firm_id:
                ledger.surprises.append(f"firm upsert answered {status} with firm {firm_id}")
            if status == 201:
                ledger.firms_created[firm_id] = str(answer["credit_code"])
                assert call.body is not None
                self.created_ids.append(firm_id)
                self.created_bodies[firm_id] = call.body
                self.firms.append(firm_id)
                if answer.get("consent_matching"):
                    self.match_firms.append(firm_id)
            else:
                version = int(answer["version"])
                ledger.firm_updates[firm_id] = max(version, ledger.firm_updates.get(firm_id, 0))
        elif call.op == "application":
            assert call.body is not None
            application = int(answer["id"])
            ledger.applications[application] = (call.body["firm_id"], call.body["product_id"])
            self.open_leads.append(
                OpenApplication(
                    application,
                    call.body["requested_amount_yuan"],
                    call.body["requested_term_months"],
                    call.body["product_id"],
                )
            )
        elif call.op == "decision":
            lead: OpenApplication = call.context["lead"]
            ledger.decisions[lead.id] = (int(answer["id"]), str(answer["outcome"]))
