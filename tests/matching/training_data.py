"""Training-export rows from the synthetic world, shaped like the registry's NDJSON export."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

import orjson

from services.registry.seed.catalogue import products
from services.registry.seed.history import generate_history
from services.registry.seed.population import generate_firms
from shared.criteria import years_between
from shared.schemas.firm import FirmAttributes, FirmFeatures
from shared.schemas.product import Eligibility, ProductFeatures, ProductTerms
from shared.vocab.size_class import classify_size

END = datetime(2026, 11, 1, tzinfo=UTC)
PRODUCT_KEYS = set(ProductTerms.model_fields) | set(Eligibility.model_fields) | {"category"}


def firm_snapshot(firm: dict[str, Any], at: datetime) -> dict[str, Any]:
    """What services/registry/firms.snapshot_of stores: attributes, size class, age, time."""
    attributes = FirmAttributes.model_validate(firm)
    snap = attributes.model_dump(mode="json")
    snap["size_class"] = classify_size(
        attributes.industry_section,
        attributes.industry_division,
        employees=attributes.employees,
        revenue_yuan=attributes.annual_revenue_yuan,
        total_assets_yuan=attributes.total_assets_yuan,
    ).value
    snap["years_established"] = round(years_between(attributes.established_on, at.date()), 2)
    snap["snapshot_at"] = at.isoformat()
    return snap


def product_snapshots() -> list[dict[str, Any]]:
    """The catalogue as models/product.product_snapshot stores it; ids are list positions + 1."""
    out = []
    for position, (institution, spec) in enumerate(products()):
        full = ProductFeatures.model_validate(
            {**spec, "id": position + 1, "institution_id": institution + 1}
        )
        snap = full.model_dump(mode="json", include=PRODUCT_KEYS)
        out.append(
            {**dict(sorted(snap.items())), "id": full.id, "institution_id": full.institution_id}
        )
    return out


@cache
def _export(n_firms: int, n_applications: int, seed: int) -> bytes:
    firms = list(generate_firms(n_firms, seed=seed))
    catalogue = products()
    snapshots = product_snapshots()
    history = generate_history(
        firms, catalogue, n_applications, seed, END - timedelta(days=730), END
    )
    lines = []
    for number, item in enumerate(history, start=1):
        if item["outcome"] is None:
            continue  # pending: the export only carries decided applications
        product = snapshots[item["product_index"]]
        row = {
            "application_id": number,
            "firm_id": item["firm_index"] + 1,
            "product_id": product["id"],
            "institution_id": product["institution_id"],
            "submitted_at": item["submitted_at"],
            "decided_at": item["decided_at"],
            "requested_amount_yuan": item["requested_amount_yuan"],
            "requested_term_months": item["requested_term_months"],
            "firm": firm_snapshot(firms[item["firm_index"]], item["submitted_at"]),
            "product": product,
            "outcome": item["outcome"],
            "approved": item["outcome"] == "approved",
            "approved_amount_yuan": item["approved_amount_yuan"],
            "rate_bp": item["rate_bp"],
            "rejection_reason": item["rejection_reason"],
        }
        lines.append(row)
    # The registry streams rows ordered by decided_at, then application id.
    lines.sort(key=lambda r: (r["decided_at"], r["application_id"]))
    return b"".join(orjson.dumps(r) + b"\n" for r in lines)


def export_lines(n_firms: int = 1_500, n_applications: int = 5_000, seed: int = 11) -> list[bytes]:
    """NDJSON lines (with their newline) of a decided synthetic history; cached per arguments."""
    return _export(n_firms, n_applications, seed).splitlines(keepends=True)


def export_rows(
    n_firms: int = 1_500, n_applications: int = 5_000, seed: int = 11
) -> list[dict[str, Any]]:
    """The same rows decoded, as a JSON client would see them (timestamps are strings)."""
    return [orjson.loads(line) for line in export_lines(n_firms, n_applications, seed)]


def make_firm(**overrides: Any) -> FirmFeatures:
    """A plain small manufacturer in 松山湖; override any FirmFeatures field."""
    values: dict[str, Any] = {
        "town_code": "441900401",
        "industry_section": "C",
        "industry_division": 39,
        "established_on": date(2015, 6, 1),
        "employees": 40,
        "annual_revenue_yuan": 20_000_000,
        "total_assets_yuan": 15_000_000,
        "size_class": "small",
        **overrides,
    }
    return FirmFeatures.model_validate(values)


def catalogue_products() -> list[ProductFeatures]:
    return [ProductFeatures.model_validate(snap) for snap in product_snapshots()]
