"""A small world for the observability tests: a bank's products and one portal's firm."""

from __future__ import annotations

from tests.gateway.conftest import Api, Stack
from tests.registry import data


def seed(stack: Stack) -> tuple[Api, int]:
    """Three products, two of which the firm is eligible for; one firm of a new portal."""
    bank = stack.institution("观测银行")
    for body in (
        data.product(name="甲", rate_min_bp=450),
        data.product(name="乙", rate_min_bp=300, rate_max_bp=350),
        data.product(name="出口", min_export_usd=5_000_000),
    ):
        assert bank.post("/v1/products", json=body).status_code == 201
    portal = stack.principal("portal")
    firm = portal.post("/v1/firms", json=data.firm())
    assert firm.status_code == 201, firm.text
    return portal, int(firm.json()["id"])
