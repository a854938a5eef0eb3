"""The synthetic Dongguan world the matching benches share: firms, catalogue, history, a model.

Export rows are built as tests/matching/training_data.py builds them (the registry's training
export: decided applications with firm and product snapshots), so a bench trains on what the
service would. Bench code does not import tests, hence this module.
"""

from __future__ import annotations

import dataclasses
import os
import platform
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from importlib import metadata
from typing import Any

import numpy as np

from services.matching.model import LearnedModel
from services.matching.train import TrainResult, candidates, train, training_set
from services.registry.seed.catalogue import institutions, products
from services.registry.seed.history import generate_history
from services.registry.seed.population import generate_firms
from shared.schemas.firm import FirmAttributes, FirmFeatures
from shared.schemas.product import Eligibility, ProductFeatures, ProductTerms
from shared.vocab.size_class import classify_size
from shared.vocab.towns import TOWNS

END = datetime(2026, 11, 1, tzinfo=UTC)
AS_OF: date = END.date()
HISTORY_DAYS = 730
PRODUCT_KEYS = set(ProductTerms.model_fields) | set(Eligibility.model_fields) | {"category"}
INSTITUTION_NAMES: tuple[str, ...] = tuple(i["name"] for i in institutions())


def size_class(firm: Mapping[str, Any]) -> str:
    return classify_size(
        firm["industry_section"],
        firm["industry_division"],
        employees=firm["employees"],
        revenue_yuan=firm["annual_revenue_yuan"],
        total_assets_yuan=firm["total_assets_yuan"],
    ).value


def firm_features(firm: Mapping[str, Any]) -> FirmFeatures:
    """A generate_firms dict as the matching service receives it."""
    return FirmFeatures.model_validate({**firm, "size_class": size_class(firm)})


def firm_snapshot(firm: Mapping[str, Any], at: datetime) -> dict[str, Any]:
    """What the registry stores beside an application: attributes, size class, age, time."""
    snap = FirmAttributes.model_validate(firm).model_dump(mode="json")
    snap["size_class"] = size_class(firm)
    snap["years_established"] = round(
        (at.date() - date.fromisoformat(snap["established_on"])).days / 365.25, 2
    )
    snap["snapshot_at"] = at.isoformat()
    return snap


def catalogue_snapshots() -> list[dict[str, Any]]:
    """The seed catalogue as product snapshots; ids are list positions + 1."""
    out = []
    for position, (institution, spec) in enumerate(products()):
        full = ProductFeatures.model_validate(
            {**spec, "id": position + 1, "institution_id": institution + 1}
        )
        snap = full.model_dump(mode="json", include=PRODUCT_KEYS)
        out.append({**snap, "id": full.id, "institution_id": full.institution_id})
    return out


def catalogue_products() -> list[ProductFeatures]:
    return [ProductFeatures.model_validate(snap) for snap in catalogue_snapshots()]


def history(
    firms: Sequence[Mapping[str, Any]], n_applications: int, seed: int
) -> list[dict[str, Any]]:
    """Applications of ``firms`` over the two years before END, oldest first."""
    start = END - timedelta(days=HISTORY_DAYS)
    return list(generate_history(firms, products(), n_applications, seed, start, END))


def export_rows(
    firms: Sequence[Mapping[str, Any]], applications: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Decided applications as training-export rows, ordered by decided_at then id."""
    snapshots = catalogue_snapshots()
    rows = []
    for number, item in enumerate(applications, start=1):
        if item["outcome"] is None:
            continue  # pending: the export carries decided applications only
        product = snapshots[item["product_index"]]
        firm = firms[item["firm_index"]]
        rows.append(
            {
                "application_id": number,
                "firm_id": item["firm_index"] + 1,
                "product_id": product["id"],
                "institution_id": product["institution_id"],
                "submitted_at": item["submitted_at"],
                "decided_at": item["decided_at"],
                "requested_amount_yuan": item["requested_amount_yuan"],
                "requested_term_months": item["requested_term_months"],
                "firm": firm_snapshot(firm, item["submitted_at"]),
                "product": product,
                "approved": item["outcome"] == "approved",
            }
        )
    rows.sort(key=lambda r: (r["decided_at"], r["application_id"]))
    return rows


def learned_model(
    rows: Sequence[Mapping[str, Any]], seed: int = 0, candidate: str | None = None
) -> tuple[LearnedModel, TrainResult]:
    """services.matching.train.train on the rows, loaded as the service would serve it.

    ``candidate`` names a train.candidates() estimator to serve instead of the chosen one,
    fitted on the same training part (for comparing the two candidates' costs).
    """
    result = train(rows, seed=seed, version="bench")
    if candidate is None or candidate == result.chosen:
        return LearnedModel(result.estimator, result.meta), result
    data = training_set(rows)
    fit_part = data.take(~np.isin(data.application_id, result.holdout.application_id))
    estimator = candidates(seed)[candidate].fit(fit_part.X, fit_part.y)
    meta = dict(result.meta) | {"version": f"bench-{candidate}", "chosen": candidate}
    return LearnedModel(estimator, meta), result


def world_model(
    candidate: str | None = None,
    *,
    firms: int = 6_000,
    applications: int = 15_000,
    seed: int = 3,
) -> tuple[LearnedModel, TrainResult]:
    """A model trained on the standard synthetic world (``firms``, ``applications``, ``seed``):
    the served model and a TrainResult whose estimator, version and meta are that model's, so
    that ``artifact.dump`` signs exactly what is served (a bench can upload and promote it);
    its ``chosen`` stays train's pick."""
    world = list(generate_firms(firms, seed=seed))
    model, result = learned_model(
        export_rows(world, history(world, applications, seed)), candidate=candidate
    )
    if model.meta.get("version") != result.version:  # another candidate than train's choice
        result = dataclasses.replace(
            result,
            version=str(model.meta["version"]),
            estimator=model.estimator,
            meta=dict(model.meta),
        )
    return model, result


def wide_catalogue(n: int, seed: int = 1) -> list[ProductFeatures]:
    """``n`` products: the seed catalogue, then perturbed copies of it under new ids.

    Copies keep their category, collateral and cap basis, and draw new rates (±15%), amounts,
    fees, subsidies and thresholds; a fifth are limited to a few towns. Varied enough that
    eligibility and scores differ across copies, as on a real shelf.
    """
    rng = np.random.default_rng(seed)
    base = catalogue_snapshots()
    out = [ProductFeatures.model_validate(p) for p in base[:n]]
    towns = [t.code for t in TOWNS]
    while len(out) < n:
        spec = dict(base[int(rng.integers(len(base)))])
        rate_min = int(spec["rate_min_bp"] * rng.uniform(0.85, 1.15))
        spread = spec["rate_max_bp"] - spec["rate_min_bp"]
        amount_max = int(spec["amount_max_yuan"] * rng.lognormal(0.0, 0.4))
        amount_min = min(amount_max, int(spec["amount_min_yuan"] * rng.lognormal(0.0, 0.3)))
        spec |= {
            "id": len(out) + 1,
            "rate_min_bp": rate_min,
            "rate_max_bp": rate_min + int(spread * rng.uniform(0.7, 1.3)),
            "amount_min_yuan": max(10_000, amount_min),
            "amount_max_yuan": max(10_000, amount_max),
            "guarantee_fee_bp": int(spec["guarantee_fee_bp"] * rng.uniform(0.5, 1.5)),
            "interest_subsidy_pct": int(
                min(100, spec["interest_subsidy_pct"] * rng.uniform(0.5, 1.2))
            ),
        }
        # Small whole-number floors and limits (years, patents, trademarks) are redrawn.
        for rule in (
            "min_years_established",
            "max_years_established",
            "min_patents",
            "min_invention_patents",
            "min_trademarks",
        ):
            if spec[rule] is not None:
                spec[rule] = int(rng.integers(0, 2 * spec[rule] + 2))
        if spec["max_years_established"] is not None and spec["min_years_established"]:
            spec["max_years_established"] += spec["min_years_established"]
        if spec["min_total_assets_yuan"] is not None:
            spec["min_total_assets_yuan"] = int(
                spec["min_total_assets_yuan"] * rng.lognormal(0, 0.5)
            )
        if spec["min_export_usd"] is not None:
            spec["min_export_usd"] = int(spec["min_export_usd"] * rng.lognormal(0.0, 0.5))
        if rng.random() < 0.3:
            spec["min_revenue_yuan"] = int(rng.choice([1, 3, 5, 10, 20]) * 1_000_000)
        if not spec["elig_town_codes"] and rng.random() < 0.2:
            chosen = rng.choice(len(towns), size=int(rng.integers(3, 9)), replace=False)
            spec["elig_town_codes"] = [towns[i] for i in chosen]
        out.append(ProductFeatures.model_validate(spec))
    return out


def machine_info(libraries: Sequence[str] = ("numpy", "scikit-learn")) -> list[tuple[str, str]]:
    cpus = f"{os.cpu_count()} (usable: {len(os.sched_getaffinity(0))})"
    versions = ", ".join(f"{name} {metadata.version(name)}" for name in libraries)
    return [
        ("CPUs", cpus),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("platform", platform.platform()),
        ("libraries", versions),
        # Other work on the machine skews every number: show how busy it was.
        ("load avg", " / ".join(f"{load:.2f}" for load in os.getloadavg()) + " (1/5/15 min)"),
    ]


def print_machine(info: Sequence[tuple[str, str]], notes: Sequence[str] = ()) -> None:
    print("\nmachine")
    for label, value in info:
        print(f"  {label:<11} {value}")
    for note in notes:
        print(f"  {note}")


def print_targets(targets: Sequence[tuple[str, str, bool]]) -> None:
    print("\ntargets")
    for target, actual, met in targets:
        print(f"  {target:<52} {actual:>18}  {'met' if met else 'NOT met'}")
