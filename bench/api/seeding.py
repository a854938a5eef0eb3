"""The bench's world in PostgreSQL: the demo seed plus one institution with the catalogue."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from bench.api.common import INSTITUTION_NAME, BenchFailure


@dataclass
class World:
    db_url: str
    portal_id: int
    portal_key: str
    firm_ids: list[int]
    products: int
    decided: int


def build_world(db_url: str, n_firms: int, n_applications: int, n_products: int) -> World:
    """The demo world (portal, key, firms, history) plus one institution with the catalogue.

    The seed's 48 products are deactivated after the history is written, so the active
    catalogue is exactly the bench institution's ``n_products``: world.wide_catalogue(n), the
    48 seed products and perturbed copies, the catalogue bench/latency.py ranks in-process.
    """
    from sqlmodel import Session

    from bench.world import wide_catalogue
    from services.registry.db import make_engine
    from services.registry.migrate import upgrade
    from services.registry.models import Institution, Product
    from services.registry.seed.loader import DEMO_PORTAL, seed_demo
    from shared.schemas.product import ProductCreate
    from shared.vocab.categories import CATEGORIES, InstitutionKind

    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        seeded = seed_demo(engine, n_firms=n_firms, n_applications=n_applications, progress=False)
        with Session(engine) as session:
            institution = Institution(name=INSTITUTION_NAME, kind=InstitutionKind.BANK.value)
            session.add(institution)
            session.flush()
            assert institution.id is not None
            rows = []
            for number, features in enumerate(wide_catalogue(n_products), start=1):
                spec = features.model_dump(mode="json", exclude={"id", "institution_id", "name"})
                name = f"{CATEGORIES[features.category].name_zh}·基准{number:04d}"
                create = ProductCreate.model_validate(spec | {"name": name})
                rows.append(
                    Product(**create.model_dump(mode="json"), institution_id=institution.id)
                )
            session.add_all(rows)
            session.commit()
            bench_institution = institution.id
    finally:
        engine.dispose()

    with psycopg.connect(db_url) as conn:
        conn.execute(
            "UPDATE product SET active = false, version = version + 1, updated_at = now() "
            "WHERE institution_id <> %s",
            (bench_institution,),
        )
        portal = conn.execute("SELECT id FROM principal WHERE name = %s", (DEMO_PORTAL,)).fetchone()
        assert portal is not None
        # Only firms that consented to matching are ranked (the others answer 409).
        firm_ids = [
            int(r[0])
            for r in conn.execute(
                "SELECT id FROM firm WHERE owner_principal_id = %s AND consent_matching"
                " ORDER BY id",
                (portal[0],),
            )
        ]
        active = conn.execute("SELECT count(*) FROM product WHERE active").fetchone()
        decided = conn.execute("SELECT count(*) FROM decision").fetchone()
    assert active is not None
    assert decided is not None
    if int(active[0]) != n_products:
        raise BenchFailure(f"{active[0]} active products, expected {n_products}")
    return World(
        db_url, int(portal[0]), seeded.keys["portal"], firm_ids, int(active[0]), int(decided[0])
    )
