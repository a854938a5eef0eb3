"""Tests for SME size classification under 工信部联企业〔2011〕300号, boundary by boundary."""

from dataclasses import dataclass
from typing import TypedDict

import pytest

from shared.vocab.size_class import (
    CURRENT_RULESET,
    RULESETS,
    Measure,
    SizeClass,
    SizeRule,
    SmeSector,
    classify_size,
    sme_sector,
)

E, R, A = Measure.EMPLOYEES, Measure.REVENUE, Measure.TOTAL_ASSETS
WAN = 10_000


class Inputs(TypedDict):
    employees: int
    revenue_yuan: int
    total_assets_yuan: int


@dataclass(frozen=True)
class Row:
    """One row of domain_facts.md §2.1, copied independently of the module under test."""

    sector: SmeSector
    industry: tuple[str, int | None, bool]  # section, division, property_management
    measures: tuple[Measure, ...]
    ceiling: tuple[int, ...]
    medium: tuple[int, ...]
    small: tuple[int, ...]


ROWS = [
    Row(SmeSector.AGRICULTURE, ("A", 1, False), (R,), (20000,), (500,), (50,)),
    Row(SmeSector.INDUSTRY, ("C", 39, False), (E, R), (1000, 40000), (300, 2000), (20, 300)),
    Row(SmeSector.CONSTRUCTION, ("E", 47, False), (R, A), (80000, 80000), (6000, 5000), (300, 300)),
    Row(SmeSector.WHOLESALE, ("F", 51, False), (E, R), (200, 40000), (20, 5000), (5, 1000)),
    Row(SmeSector.RETAIL, ("F", 52, False), (E, R), (300, 20000), (50, 500), (10, 100)),
    Row(SmeSector.TRANSPORT, ("G", 54, False), (E, R), (1000, 30000), (300, 3000), (20, 200)),
    Row(SmeSector.WAREHOUSING, ("G", 59, False), (E, R), (200, 30000), (100, 1000), (20, 100)),
    Row(SmeSector.POSTAL, ("G", 60, False), (E, R), (1000, 30000), (300, 2000), (20, 100)),
    Row(SmeSector.ACCOMMODATION, ("H", 61, False), (E, R), (300, 10000), (100, 2000), (10, 100)),
    Row(SmeSector.CATERING, ("H", 62, False), (E, R), (300, 10000), (100, 2000), (10, 100)),
    Row(
        SmeSector.INFORMATION_TRANSMISSION,
        ("I", 63, False),
        (E, R),
        (2000, 100000),
        (100, 1000),
        (10, 100),
    ),
    Row(SmeSector.SOFTWARE_IT, ("I", 65, False), (E, R), (300, 10000), (100, 1000), (10, 50)),
    Row(
        SmeSector.REAL_ESTATE_DEVELOPMENT,
        ("K", 70, False),
        (R, A),
        (200000, 10000),
        (1000, 5000),
        (100, 2000),
    ),
    Row(
        SmeSector.PROPERTY_MANAGEMENT,
        ("K", 70, True),
        (E, R),
        (1000, 5000),
        (300, 1000),
        (100, 500),
    ),
    Row(
        SmeSector.LEASING_BUSINESS_SERVICES,
        ("L", 72, False),
        (E, A),
        (300, 120000),
        (100, 8000),
        (10, 100),
    ),
    Row(SmeSector.OTHER, ("M", 73, False), (E,), (300,), (100,), (10,)),
]

# Classes in order; each boundary separates a class from the one above it.
LEVELS = [
    ("small", SizeClass.SMALL, SizeClass.MICRO),
    ("medium", SizeClass.MEDIUM, SizeClass.SMALL),
    ("ceiling", SizeClass.LARGE, SizeClass.MEDIUM),
]


def _unit(measure: Measure) -> int:
    return 1 if measure is E else WAN


def _inputs(row: Row, bounds: tuple[int, ...], below: Measure | None = None) -> Inputs:
    """Inputs exactly at ``bounds``, with ``below`` one unit (person or yuan) short."""
    amounts = {E: 0, R: 0, A: 0}
    for measure, bound in zip(row.measures, bounds, strict=True):
        amounts[measure] = bound * _unit(measure) - (1 if measure is below else 0)
    return {"employees": amounts[E], "revenue_yuan": amounts[R], "total_assets_yuan": amounts[A]}


def _boundary_cases() -> list[object]:
    cases: list[object] = []
    for row in ROWS:
        for level, at_class, below_class in LEVELS:
            bounds = getattr(row, level)
            cases.append(
                pytest.param(row, _inputs(row, bounds), at_class, id=f"{row.sector}-at-{level}")
            )
            for measure in row.measures:
                cases.append(
                    pytest.param(
                        row,
                        _inputs(row, bounds, below=measure),
                        below_class,
                        id=f"{row.sector}-{measure}-just-below-{level}",
                    )
                )
        cases.append(
            pytest.param(
                row,
                _inputs(row, (0,) * len(row.measures)),
                SizeClass.MICRO,
                id=f"{row.sector}-zero",
            )
        )
    return cases


def _one_condition_cases() -> list[object]:
    """A firm meeting only one of two conditions of a class falls to the class below."""
    cases: list[object] = []
    for row in ROWS:
        if len(row.measures) != 2:
            continue
        for strong in (0, 1):
            for level, _at_class, below_class in LEVELS:
                # The strong measure is far above every threshold; the other sits at the level
                # below, so the firm meets exactly one condition of ``level``.
                lower = {"small": None, "medium": row.small, "ceiling": row.medium}[level]
                bounds = list(lower) if lower else [0, 0]
                bounds[strong] = row.ceiling[strong] * 10
                cases.append(
                    pytest.param(
                        row,
                        _inputs(row, tuple(bounds)),
                        below_class,
                        id=f"{row.sector}-only-{row.measures[strong]}-meets-{level}",
                    )
                )
    return cases


def _classify(row: Row, inputs: Inputs) -> SizeClass:
    section, division, property_management = row.industry
    return classify_size(section, division, property_management=property_management, **inputs)


@pytest.mark.parametrize(("row", "inputs", "expected"), _boundary_cases())
def test_boundaries(row: Row, inputs: Inputs, expected: SizeClass) -> None:
    assert _classify(row, inputs) is expected


@pytest.mark.parametrize(("row", "inputs", "expected"), _one_condition_cases())
def test_meeting_one_condition_falls_a_class(row: Row, inputs: Inputs, expected: SizeClass) -> None:
    assert _classify(row, inputs) is expected


@pytest.mark.parametrize("row", ROWS, ids=[row.sector.value for row in ROWS])
def test_rule_table_matches_the_standard(row: Row) -> None:
    rule = RULESETS[CURRENT_RULESET][row.sector]
    assert rule == SizeRule(row.measures, row.ceiling, row.medium, row.small)
    assert sme_sector(row.industry[0], row.industry[1], property_management=row.industry[2]) is (
        row.sector
    )


def test_ruleset_covers_all_sixteen_rows() -> None:
    assert CURRENT_RULESET == "MIIT-2011-300"
    assert set(RULESETS[CURRENT_RULESET]) == set(SmeSector)
    assert len(SmeSector) == 16


@pytest.mark.parametrize(
    ("section", "division", "expected"),
    [
        ("A", None, SmeSector.AGRICULTURE),
        ("A", 5, SmeSector.AGRICULTURE),
        ("B", 6, SmeSector.INDUSTRY),
        ("C", None, SmeSector.INDUSTRY),
        ("D", 46, SmeSector.INDUSTRY),
        ("E", 50, SmeSector.CONSTRUCTION),
        ("F", None, SmeSector.WHOLESALE),
        ("G", 53, SmeSector.TRANSPORT),
        ("G", 58, SmeSector.TRANSPORT),
        ("G", None, SmeSector.TRANSPORT),
        ("H", None, SmeSector.CATERING),
        ("I", 64, SmeSector.INFORMATION_TRANSMISSION),
        ("I", None, SmeSector.SOFTWARE_IT),
        ("K", None, SmeSector.REAL_ESTATE_DEVELOPMENT),
        ("L", 71, SmeSector.LEASING_BUSINESS_SERVICES),
        ("L", None, SmeSector.LEASING_BUSINESS_SERVICES),
        ("J", 66, SmeSector.OTHER),
        ("P", 83, SmeSector.OTHER),
        ("T", None, SmeSector.OTHER),
        (" c ", 39, SmeSector.INDUSTRY),
    ],
)
def test_sme_sector_mapping(section: str, division: int | None, expected: SmeSector) -> None:
    assert sme_sector(section, division) is expected


def test_property_management_outside_k_is_rejected() -> None:
    with pytest.raises(ValueError, match="section K only"):
        sme_sector("C", 39, property_management=True)


def test_sme_sector_validates_the_industry() -> None:
    with pytest.raises(ValueError, match="division 39 belongs to section C, not F"):
        sme_sector("F", 39)


@pytest.mark.parametrize(
    ("section", "division", "employees", "revenue_wan", "assets_wan", "expected"),
    [
        # A Dongguan electronics maker: 300 staff and 2000万 revenue is exactly medium.
        ("C", 39, 300, 2000, 0, SizeClass.MEDIUM),
        # 5000 staff but revenue below 4亿: the standard still counts it as an SME.
        ("C", 39, 5000, 39999, 0, SizeClass.MEDIUM),
        ("C", 39, 1000, 40000, 0, SizeClass.LARGE),
        # Construction ignores headcount entirely.
        ("E", 48, 10**6, 299, 10**6, SizeClass.MICRO),
        # Leasing and business services are measured by assets, not revenue.
        ("L", 72, 150, 10**6, 8000, SizeClass.MEDIUM),
        ("L", 72, 150, 10**6, 7999, SizeClass.SMALL),
        # 其他未列明行业 ignores money.
        ("M", 74, 9, 10**6, 10**6, SizeClass.MICRO),
        ("M", 74, 300, 0, 0, SizeClass.LARGE),
    ],
)
def test_worked_examples(
    section: str,
    division: int,
    employees: int,
    revenue_wan: int,
    assets_wan: int,
    expected: SizeClass,
) -> None:
    result = classify_size(
        section,
        division,
        employees=employees,
        revenue_yuan=revenue_wan * WAN,
        total_assets_yuan=assets_wan * WAN,
    )
    assert result is expected


def test_one_yuan_below_a_money_threshold_counts() -> None:
    def size(revenue_yuan: int) -> SizeClass:
        return classify_size("C", 39, employees=300, revenue_yuan=revenue_yuan, total_assets_yuan=0)

    assert size(20_000_000) is SizeClass.MEDIUM
    assert size(19_999_999) is SizeClass.SMALL


@pytest.mark.parametrize("field", ["employees", "revenue_yuan", "total_assets_yuan"])
def test_negative_inputs_are_rejected(field: str) -> None:
    values = {"employees": 10, "revenue_yuan": 10, "total_assets_yuan": 10, field: -1}
    with pytest.raises(ValueError, match=f"{field} must not be negative"):
        classify_size(
            "C",
            39,
            employees=values["employees"],
            revenue_yuan=values["revenue_yuan"],
            total_assets_yuan=values["total_assets_yuan"],
        )


def test_unknown_ruleset_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown size ruleset 'MIIT-2025'"):
        classify_size(
            "C", 39, employees=1, revenue_yuan=1, total_assets_yuan=1, ruleset="MIIT-2025"
        )


@pytest.mark.parametrize(
    ("measures", "ceiling", "medium", "small", "problem"),
    [
        ((), (), (), (), "distinct measures"),
        ((E, E), (10, 10), (5, 5), (1, 1), "distinct measures"),
        ((E, R), (10,), (5, 5), (1, 1), "does not match measures"),
        ((E,), (10,), (20,), (1,), "must rise"),
        ((E,), (10,), (5,), (0,), "must rise"),
    ],
)
def test_size_rule_rejects_impossible_rows(
    measures: tuple[Measure, ...],
    ceiling: tuple[int, ...],
    medium: tuple[int, ...],
    small: tuple[int, ...],
    problem: str,
) -> None:
    with pytest.raises(ValueError, match=problem):
        SizeRule(measures, ceiling, medium, small)
