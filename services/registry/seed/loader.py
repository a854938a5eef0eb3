"""Write the synthetic Dongguan world into a registry database (idempotent: seeds once)."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from tqdm import tqdm

from services.registry import consents
from services.registry.api.access import issue_key
from services.registry.bulk import import_batch
from services.registry.firms import snapshot_of
from services.registry.models import (
    Application,
    Decision,
    Firm,
    Institution,
    MatchEvent,
    Principal,
    Product,
)
from services.registry.models.columns import table_of
from services.registry.models.product import product_snapshot
from services.registry.seed.catalogue import institutions, products
from services.registry.seed.history import generate_history
from services.registry.seed.population import generate_firms
from shared.enums import ApplicationStatus, PrincipalRole
from shared.schemas.product import ProductCreate

DEMO_PORTAL = "演示门户 demo portal (synthetic data)"
DEMO_SEED = 20201218
BATCH = 5_000
T = TypeVar("T")


@dataclass
class SeedResult:
    seeded: bool
    firms: int = 0
    products: int = 0
    applications: int = 0
    keys: dict[str, str] = field(default_factory=dict)


def already_seeded(engine: Engine) -> bool:
    with Session(engine) as session:
        return (
            session.exec(select(Principal).where(Principal.name == DEMO_PORTAL)).first() is not None
        )


def seed_demo(
    engine: Engine,
    *,
    n_firms: int = 5_000,
    n_applications: int = 6_000,
    seed: int = DEMO_SEED,
    now: datetime | None = None,
    progress: bool = True,
    keys_file: Path | None = None,
) -> SeedResult:
    """Institutions, products, firms and a decided history; demo keys for every role."""
    if already_seeded(engine):
        return SeedResult(seeded=False)
    now = now or datetime.now(UTC)
    result = SeedResult(seeded=True)
    with Session(engine, expire_on_commit=False) as session:
        portal = Principal(role=PrincipalRole.PORTAL.value, name=DEMO_PORTAL)
        admin = Principal(role=PrincipalRole.ADMIN.value, name="演示管理员 demo admin")
        city = Principal(role=PrincipalRole.OFFICIAL.value, name="市金融工作局 demo city official")
        town = Principal(
            role=PrincipalRole.OFFICIAL.value,
            name="塘厦镇 demo town official",
            town_code="441900116",
        )
        session.add_all([portal, admin, city, town])
        inst_rows = [Institution(**spec) for spec in institutions()]
        session.add_all(inst_rows)
        session.flush()
        inst_principals = [
            Principal(
                role=PrincipalRole.INSTITUTION.value,
                name=f"{inst.name} demo key holder",
                institution_id=inst.id,
            )
            for inst in inst_rows
        ]
        session.add_all(inst_principals)
        product_rows: list[Product] = []
        product_specs = products()
        for inst_index, spec in product_specs:
            create = ProductCreate.model_validate(spec)
            values = create.model_dump(mode="json")
            institution_id = inst_rows[inst_index].id
            assert institution_id is not None
            product_rows.append(Product(**values, institution_id=institution_id))
        session.add_all(product_rows)
        session.flush()
        for label, who in [
            ("portal", portal),
            ("admin", admin),
            ("official_city", city),
            ("official_town", town),
            ("institution", inst_principals[0]),
        ]:
            result.keys[label], _ = issue_key(session, who, label="demo")
        session.commit()
        result.products = len(product_rows)

    assert portal.id is not None
    firm_dicts = list(generate_firms(n_firms, seed=seed))
    lines = ((i + 1, orjson.dumps(f, default=str)) for i, f in enumerate(firm_dicts))
    bar = tqdm(total=n_firms, desc="firms", unit="firm", disable=not progress)
    for batch_no, chunk in enumerate(_chunks(lines, BATCH)):
        outcome = import_batch(
            engine,
            principal_id=portal.id,
            import_id="demo-seed",
            batch_no=batch_no,
            lines=chunk,
            request_id=None,
        )
        if outcome.status != "committed":
            bad = next(r for r in outcome.results if r["status"] == "invalid")
            raise RuntimeError(f"demo firm rejected: {bad}")
        bar.update(len(chunk))
    bar.close()
    result.firms = n_firms

    result.applications = _seed_history(
        engine,
        firm_dicts,
        product_specs,
        product_rows,
        portal.id,
        n_applications,
        seed,
        now,
        progress,
    )
    _seed_match_events(engine, product_rows, seed, now)
    if keys_file is not None:
        keys_file.parent.mkdir(parents=True, exist_ok=True)
        keys_file.write_text(json.dumps(result.keys, indent=2, ensure_ascii=False))
        keys_file.chmod(0o600)
    return result


def _chunks(items: Iterable[T], size: int) -> Iterable[list[T]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _seed_history(
    engine: Engine,
    firm_dicts: list[dict[str, Any]],
    product_specs: list[tuple[int, dict[str, Any]]],
    product_rows: list[Product],
    portal_id: int,
    n_applications: int,
    seed: int,
    now: datetime,
    progress: bool,
) -> int:
    with Session(engine) as session:
        owned = session.exec(select(Firm).where(Firm.owner_principal_id == portal_id))
        firms_by_code = {firm.credit_code: firm for firm in owned}
    history = generate_history(
        firm_dicts, product_specs, n_applications, seed, now - timedelta(days=730), now
    )
    decider = _institution_principals(engine)
    app_table, dec_table = table_of(Application), table_of(Decision)
    written = 0
    bar = tqdm(total=n_applications, desc="applications", unit="app", disable=not progress)
    for chunk in _chunks(history, 2_000):
        with Session(engine) as session:
            for item in chunk:
                firm = firms_by_code[firm_dicts[item["firm_index"]]["credit_code"]]
                product = product_rows[item["product_index"]]
                submitted = item["submitted_at"]
                outcome = item["outcome"]
                status = ApplicationStatus.SUBMITTED.value if outcome is None else outcome
                app_id = session.execute(
                    app_table.insert().returning(app_table.c.id),
                    {
                        "firm_id": firm.id,
                        "product_id": product.id,
                        "institution_id": product.institution_id,
                        "owner_principal_id": portal_id,
                        "requested_amount_yuan": item["requested_amount_yuan"],
                        "requested_term_months": item["requested_term_months"],
                        "status": status,
                        "consent_share_profile": True,
                        "consent_text_version": "2026-11-v1",
                        "consent_at": submitted,
                        "firm_snapshot": snapshot_of(firm, submitted),
                        "product_snapshot": product_snapshot(product),
                        "town_code": firm.town_code,
                        "industry_section": firm.industry_section,
                        "size_class": firm.size_class,
                        "is_first_loan": not firm.has_borrowed_before,
                        "submitted_at": submitted,
                        "decided_at": item["decided_at"] if outcome else None,
                        "approved_amount_yuan": item.get("approved_amount_yuan"),
                        "approved_rate_bp": item.get("rate_bp"),
                        "version": 1 if outcome is None else 2,
                    },
                ).scalar_one()
                if outcome is not None:
                    session.execute(
                        dec_table.insert(),
                        {
                            "application_id": app_id,
                            "outcome": outcome,
                            "approved_amount_yuan": item.get("approved_amount_yuan"),
                            "rate_bp": item.get("rate_bp"),
                            "term_months": item.get("term_months"),
                            "rejection_reason": _str_or_none(item.get("rejection_reason")),
                            "decided_by_principal_id": decider[product.institution_id],
                            "decided_at": item["decided_at"],
                        },
                    )
                written += 1
            session.commit()
        bar.update(len(chunk))
    bar.close()
    with Session(engine) as session:  # each firm consented to the institutions it applied to
        consents.grant_for_unlinked(session)
        session.commit()
    return written


def _seed_match_events(
    engine: Engine, product_rows: list[Product], seed: int, now: datetime
) -> None:
    """What the portal showed firms: every applicant saw its product the day before it
    applied, and about a third of the other firms with a need browsed matches and stopped
    there (the officials' "matched but never applied")."""
    rng = random.Random(seed)
    event = table_of(MatchEvent)
    with Session(engine) as session:
        applied = session.execute(
            select(Application.firm_id, Application.product_id, Application.submitted_at)
        ).all()
        firms = session.execute(select(Firm.id, Firm.town_code, Firm.need_amount_yuan)).all()
        towns = {f.id: f.town_code for f in firms}
        rows = [
            _event(firm_id, product_id, towns[firm_id], at - timedelta(days=1))
            for firm_id, product_id, at in applied
            if firm_id in towns
        ]
        seen = {firm_id for firm_id, _, _ in applied}
        for firm in firms:
            if firm.id not in seen and firm.need_amount_yuan is not None and rng.random() < 0.33:
                product = rng.choice(product_rows)
                at = now - timedelta(days=rng.uniform(0, 365))
                rows.append(_event(firm.id, product.id or 0, firm.town_code, at))
        for chunk in _chunks(rows, 5_000):
            session.execute(event.insert(), chunk)
        session.commit()


def _event(firm_id: int, product_id: int, town_code: str, at: datetime) -> dict[str, Any]:
    return {
        "firm_id": firm_id,
        "product_id": product_id,
        "rank": 1,
        "score": 0.5,
        "approval_probability": None,
        "eligible": True,
        "model_version": "demo-seed",
        "degraded": False,
        "town_code": town_code,
        "created_at": at,
    }


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def _institution_principals(engine: Engine) -> dict[int, int]:
    with Session(engine) as session:
        rows = session.exec(
            select(Principal).where(Principal.role == PrincipalRole.INSTITUTION.value)
        )
        return {p.institution_id: p.id for p in rows if p.institution_id and p.id}
