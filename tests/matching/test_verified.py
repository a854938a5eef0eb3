"""Official registers in matching: the firm columns read each gating attribute from its
register by date (expiry with no write), and a product's verified_only criteria accept only a
register's value, in ranking, eligibility and over the columns alike, with a near miss that
says it must be verified and names the register."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np
import pytest

from services.matching.eligibility import CRITERION_INDEX, evaluate_pairs
from services.matching.firm_columns import FirmColumns, RegisterEntries
from services.matching.model import PriorModel
from services.matching.policy import Population, reach
from services.matching.ranking import rank_answer
from services.matching.tables import FirmTable, ProductTable
from shared.schemas.firm import FirmFeatures
from shared.schemas.internal import FIRM_FEED_COLUMNS
from shared.schemas.matching import EligibilityRequest, RankOptions
from shared.schemas.product import ProductCreate
from tests.matching import helpers

DAY = date(2026, 3, 1)


def kept(firms: dict[int, FirmFeatures]) -> FirmColumns:
    ids = sorted(firms)
    rows = [{"id": i, "consent_matching": True} | firms[i].model_dump(mode="json") for i in ids]
    columns = FirmColumns.from_feed({name: [r[name] for r in rows] for name in FIRM_FEED_COLUMNS})
    columns.date_to(DAY)
    columns.verify_on(DAY)
    return columns


def entries(*rows: tuple[int, str, str, str | None, int | None]) -> RegisterEntries:
    names = ("firm_id", "kind", "starts_on", "ends_on", "amount_yuan")
    return RegisterEntries.from_feed({n: [r[k] for r in rows] for k, n in enumerate(names)})


def publish(
    columns: FirmColumns, registers: dict[str, int], new: RegisterEntries, *replaced: str
) -> None:
    columns.apply_registers(
        registers,
        new,
        written=np.array([], dtype=np.int64),
        replaced=list(replaced),
        after_id=0,
        up_to_id=None,
    )


def test_a_gating_attribute_reads_as_its_register_on_the_day_and_expires_without_a_write() -> None:
    columns = kept(
        {
            1: helpers.firm(is_high_tech=True),  # claims it; not listed
            2: helpers.firm(),  # listed; did not say so
            3: helpers.firm(gov_procurement_contracts_yuan=5_000),
        }
    )
    assert columns.field("is_high_tech").tolist() == [True, False, False]  # no register yet
    generation = columns.generation
    publish(
        columns,
        {"high_tech": 1, "gov_procurement_awards": 1},
        entries(
            (2, "high_tech", "2024-12-01", "2026-03-01", None),
            (3, "gov_procurement_awards", "2025-01-01", "2026-03-01", 700_000),
            (3, "gov_procurement_awards", "2025-06-01", None, 300_000),
            (1, "gov_procurement_awards", "2026-03-02", None, 100),  # not begun yet
        ),
        "high_tech",
        "gov_procurement_awards",
    )
    assert columns.generation > generation
    assert columns.field("is_high_tech").tolist() == [False, True, False]
    assert columns.field("gov_procurement_contracts_yuan").tolist() == [0, 0, 1_000_000]
    assert columns.data["is_high_tech"].tolist() == [True, False, False]  # as declared
    # The last valid day counts; the next day it does not, and nothing was written.
    columns.verify_on(DAY + timedelta(days=1))
    assert columns.field("is_high_tech").tolist() == [False, False, False]
    assert columns.field("gov_procurement_contracts_yuan").tolist() == [100, 0, 300_000]
    # Not a published register: its attribute stays as declared.
    assert columns.field("is_green_listed").tolist() == [False, False, False]


def test_a_republished_register_replaces_its_entries_and_erasure_drops_them() -> None:
    columns = kept({1: helpers.firm(), 2: helpers.firm(), 3: helpers.firm()})
    publish(
        columns,
        {"green_list": 1},
        entries(
            (1, "green_list", "2024-01-01", None, None), (2, "green_list", "2024-01-01", None, None)
        ),
        "green_list",
    )
    assert columns.field("is_green_listed").tolist() == [True, True, False]
    publish(
        columns,
        {"green_list": 2},
        entries((3, "green_list", "2025-01-01", None, None)),
        "green_list",
    )
    assert columns.field("is_green_listed").tolist() == [False, False, True]
    columns.apply(kept({}), erased=[3])
    assert columns.field("is_green_listed").tolist() == [False, False]
    assert len(columns.entries) == 0


def _product(**overrides: Any) -> Any:
    return helpers.product(
        requires_high_tech=True, verified_only=["requires_high_tech"], **overrides
    )


@pytest.mark.parametrize("published", [False, True])
def test_verified_only_takes_a_registers_value_only(published: bool) -> None:
    declared = helpers.firm(is_high_tech=True)
    plain = helpers.product(id=2, requires_high_tech=True)
    products = ProductTable.from_products([_product(), plain])
    verified = [["is_high_tech"]] if published else [[]]
    firms = FirmTable.from_firms([declared, declared], DAY, [verified[0], verified[0]])
    elig = evaluate_pairs(firms, np.array([0, 1]), products, np.array([0, 1]))
    assert elig.eligible.tolist() == [published, True]
    # Over the columns: the same verdict, the register published or not.
    columns = kept({1: declared})
    if published:
        publish(
            columns,
            {"high_tech": 1},
            entries((1, "high_tech", "2025-01-01", None, None)),
            "high_tech",
        )
    everyone = Population(columns)
    assert everyone.eligible(products, 0).tolist() == [published]
    assert everyone.eligible(products, 1).tolist() == [True]


def test_the_near_miss_says_it_must_be_verified_and_names_the_register() -> None:
    table = ProductTable.from_products([_product()])
    firm = helpers.firm(is_high_tech=True)
    for lang, words in (
        ("zh", ("需经认定", "高新技术企业认定名单")),
        ("en", ("Must be verified", "high-tech enterprise register")),
    ):
        options = RankOptions(lang=lang)  # type: ignore[arg-type]
        answer = rank_answer(firm, table, PriorModel(), options, as_of=DAY)
        assert answer["ranked"] == []
        [miss] = answer["near_misses"]
        [unmet] = miss["unmet"]
        assert unmet["code"] == "requires_high_tech"
        assert all(w in unmet["message"] for w in words), unmet["message"]
    verified = rank_answer(
        firm, table, PriorModel(), RankOptions(), as_of=DAY, verified=["is_high_tech"]
    )
    assert [r["product_id"] for r in verified["ranked"]] == [1]


def test_reach_of_a_verified_only_product_before_its_register_is_nobody() -> None:
    columns = kept({i: helpers.firm(is_high_tech=True) for i in range(1, 6)})
    result = reach(Population(columns), _product(), PriorModel())
    assert result.eligible == 0
    publish(
        columns,
        {"high_tech": 1},
        entries(*((i, "high_tech", "2025-01-01", None, None) for i in range(1, 5))),
        "high_tech",
    )
    assert reach(Population(columns), _product(), PriorModel()).eligible == 4


@pytest.mark.parametrize(
    ("verified_only", "message"),
    [
        (["requires_first_loan"], "no official register"),
        (["min_employees"], "no official register"),
        (["nonsense"], "unknown criterion"),
        (["requires_green"], "does not require"),
    ],
)
def test_marking_a_criterion_without_a_register_is_refused_naming_the_field(
    verified_only: list[str], message: str
) -> None:
    body = helpers.product(requires_first_loan=True).model_dump(
        exclude={"id", "institution_id"}
    ) | {"verified_only": verified_only}
    with pytest.raises(ValueError, match=message) as caught:
        ProductCreate.model_validate(body)
    assert "verified_only" in str(caught.value)


def test_verified_fields_are_only_attributes_a_register_verifies() -> None:
    firm = helpers.firm().model_dump(mode="json")
    product = _product().model_dump(mode="json")
    with pytest.raises(ValueError, match="verified"):
        EligibilityRequest.model_validate(
            {"firm": firm, "product": product, "verified": ["has_borrowed_before"]}
        )
    ok = EligibilityRequest.model_validate(
        {"firm": firm, "product": product, "verified": ["is_high_tech"]}
    )
    assert ok.verified == ["is_high_tech"]
    assert CRITERION_INDEX["requires_high_tech"] >= 0
