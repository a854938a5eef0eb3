"""SME size class (大/中/小/微) by 工信部联企业〔2011〕300号, kept as a versioned rule table."""

# Sources (see /work/shared/reference/domain_facts.md §2 and the end of §3.1):
# - 中小企业划型标准规定 (工信部联企业〔2011〕300号), items 一–十五 as reproduced in full in a
#   public front-end modal, item 十六 from a public test file; both checked against the table
#   here number by number. The standard is still cited for 小微企业 in 银保监办发〔2020〕90号.
# - No revised standard (2024/25) or draft was found, so the rules are keyed by a version id:
#   a revision becomes a second entry in RULESETS, not a code change.
# - Article 三 of the standard lists 交通运输业 as "不含铁路运输业" (quoted in a public
#   procurement-review file). sme_sector still maps division 53 to transport, as specified
#   for this package; a caller that needs to be exact should treat 53 as out of scope.

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from shared.vocab.industries import validate_industry

YUAN_PER_WAN = 10_000


class SizeClass(StrEnum):
    """Enterprise size class; the last three together are 中小微 (SME)."""

    LARGE = "large"
    MEDIUM = "medium"
    SMALL = "small"
    MICRO = "micro"


class SmeSector(StrEnum):
    """The sixteen industry rows of the standard, in its order (一 to 十六)."""

    AGRICULTURE = "agriculture"
    INDUSTRY = "industry"
    CONSTRUCTION = "construction"
    WHOLESALE = "wholesale"
    RETAIL = "retail"
    TRANSPORT = "transport"
    WAREHOUSING = "warehousing"
    POSTAL = "postal"
    ACCOMMODATION = "accommodation"
    CATERING = "catering"
    INFORMATION_TRANSMISSION = "information_transmission"
    SOFTWARE_IT = "software_it"
    REAL_ESTATE_DEVELOPMENT = "real_estate_development"
    PROPERTY_MANAGEMENT = "property_management"
    LEASING_BUSINESS_SERVICES = "leasing_business_services"
    OTHER = "other"


class Measure(StrEnum):
    """A quantity the standard measures a firm by."""

    EMPLOYEES = "employees"  # 从业人员, persons
    REVENUE = "revenue"  # 营业收入, thresholds in 万元
    TOTAL_ASSETS = "total_assets"  # 资产总额, thresholds in 万元


@dataclass(frozen=True, slots=True)
class SizeRule:
    """One row of a size standard: thresholds per measure, money in 万元 as the standard writes it.

    ``ceiling[i]``, ``medium[i]`` and ``small[i]`` are the bounds for ``measures[i]``. A firm at or
    above the ceiling on every measure is large (the standard: SME when below *either*); medium
    and small need every listed measure at or above their bound; anything else is micro.
    """

    measures: tuple[Measure, ...]
    ceiling: tuple[int, ...]
    medium: tuple[int, ...]
    small: tuple[int, ...]

    def __post_init__(self) -> None:
        # A typo in a threshold would silently misclassify firms, so reject impossible rows.
        if not self.measures or len(set(self.measures)) != len(self.measures):
            raise ValueError(f"a size rule needs distinct measures, got {self.measures}")
        for bounds in (self.ceiling, self.medium, self.small):
            if len(bounds) != len(self.measures):
                raise ValueError(f"{bounds} does not match measures {self.measures}")
        for small, medium, ceiling in zip(self.small, self.medium, self.ceiling, strict=True):
            if not 0 < small <= medium <= ceiling:
                raise ValueError(f"thresholds must rise small ≤ medium ≤ ceiling: {self}")

    def classify(self, *, employees: int, revenue_yuan: int, total_assets_yuan: int) -> SizeClass:
        """Size class of a firm under this row; money in integer yuan."""
        amounts = {
            Measure.EMPLOYEES: employees,
            Measure.REVENUE: revenue_yuan,
            Measure.TOTAL_ASSETS: total_assets_yuan,
        }

        def meets(bounds: tuple[int, ...]) -> bool:
            # Compare in integer yuan so a boundary like 2000万 is exact (no float rounding).
            return all(
                amounts[measure] >= _in_input_units(measure, bound)
                for measure, bound in zip(self.measures, bounds, strict=True)
            )

        if meets(self.ceiling):
            return SizeClass.LARGE
        if meets(self.medium):
            return SizeClass.MEDIUM
        if meets(self.small):
            return SizeClass.SMALL
        return SizeClass.MICRO


def _in_input_units(measure: Measure, bound: int) -> int:
    return bound if measure is Measure.EMPLOYEES else bound * YUAN_PER_WAN


_E, _R, _A = Measure.EMPLOYEES, Measure.REVENUE, Measure.TOTAL_ASSETS
_S = SmeSector

# Columns: measures, SME ceiling, medium, small (see SizeRule). Numbers as in the standard.
_MIIT_2011_300: Mapping[SmeSector, SizeRule] = MappingProxyType(
    {
        _S.AGRICULTURE: SizeRule((_R,), (20000,), (500,), (50,)),
        _S.INDUSTRY: SizeRule((_E, _R), (1000, 40000), (300, 2000), (20, 300)),
        _S.CONSTRUCTION: SizeRule((_R, _A), (80000, 80000), (6000, 5000), (300, 300)),
        _S.WHOLESALE: SizeRule((_E, _R), (200, 40000), (20, 5000), (5, 1000)),
        _S.RETAIL: SizeRule((_E, _R), (300, 20000), (50, 500), (10, 100)),
        _S.TRANSPORT: SizeRule((_E, _R), (1000, 30000), (300, 3000), (20, 200)),
        _S.WAREHOUSING: SizeRule((_E, _R), (200, 30000), (100, 1000), (20, 100)),
        _S.POSTAL: SizeRule((_E, _R), (1000, 30000), (300, 2000), (20, 100)),
        _S.ACCOMMODATION: SizeRule((_E, _R), (300, 10000), (100, 2000), (10, 100)),
        _S.CATERING: SizeRule((_E, _R), (300, 10000), (100, 2000), (10, 100)),
        _S.INFORMATION_TRANSMISSION: SizeRule((_E, _R), (2000, 100000), (100, 1000), (10, 100)),
        _S.SOFTWARE_IT: SizeRule((_E, _R), (300, 10000), (100, 1000), (10, 50)),
        _S.REAL_ESTATE_DEVELOPMENT: SizeRule((_R, _A), (200000, 10000), (1000, 5000), (100, 2000)),
        _S.PROPERTY_MANAGEMENT: SizeRule((_E, _R), (1000, 5000), (300, 1000), (100, 500)),
        _S.LEASING_BUSINESS_SERVICES: SizeRule((_E, _A), (300, 120000), (100, 8000), (10, 100)),
        _S.OTHER: SizeRule((_E,), (300,), (100,), (10,)),
    }
)

CURRENT_RULESET = "MIIT-2011-300"

RULESETS: Mapping[str, Mapping[SmeSector, SizeRule]] = MappingProxyType(
    {"MIIT-2011-300": _MIIT_2011_300}
)


def sme_sector(
    section: str, division: int | None, *, property_management: bool = False
) -> SmeSector:
    """Map a GB/T 4754-2017 section and optional division to the standard's industry row.

    Where the division is missing and the section spans several rows, we pick a default (our
    convention, not the standard's; pass the division when it is known): F → wholesale
    (批发业, the section's first division); G → transport (what is left of G once 59 and 60 are
    taken out); H → catering, which changes nothing as 住宿 and 餐饮 share thresholds; I →
    software and IT services (65).

    物业管理 is a group (702) inside division 70, which a two-digit division cannot express, so K
    means 房地产开发经营 unless the caller passes ``property_management=True``. Likewise all of 59
    (装卸搬运和仓储业) counts as warehousing, although 装卸搬运 sat with 运输代理 in division 58
    of the 2011 classification the standard was written against. Sections the standard has no
    row for (J finance, M–T) fall to 其他未列明行业.
    """
    letter, division = validate_industry(section, division)
    if property_management and letter != "K":
        raise ValueError(f"property_management applies to section K only, not {letter}")
    if letter == "A":
        return SmeSector.AGRICULTURE
    if letter in ("B", "C", "D"):
        return SmeSector.INDUSTRY
    if letter == "E":
        return SmeSector.CONSTRUCTION
    if letter == "F":
        return SmeSector.RETAIL if division == 52 else SmeSector.WHOLESALE
    if letter == "G":
        if division == 59:
            return SmeSector.WAREHOUSING
        if division == 60:
            return SmeSector.POSTAL
        return SmeSector.TRANSPORT
    if letter == "H":
        return SmeSector.ACCOMMODATION if division == 61 else SmeSector.CATERING
    if letter == "I":
        if division in (63, 64):
            return SmeSector.INFORMATION_TRANSMISSION
        return SmeSector.SOFTWARE_IT
    if letter == "K":
        if property_management:
            return SmeSector.PROPERTY_MANAGEMENT
        return SmeSector.REAL_ESTATE_DEVELOPMENT
    if letter == "L":
        return SmeSector.LEASING_BUSINESS_SERVICES
    return SmeSector.OTHER


def classify_size(
    section: str,
    division: int | None,
    *,
    employees: int,
    revenue_yuan: int,
    total_assets_yuan: int,
    property_management: bool = False,
    ruleset: str = CURRENT_RULESET,
) -> SizeClass:
    """Size class of a firm from its industry, headcount, revenue and total assets (integer yuan).

    Measures a row does not use are ignored but must still be non-negative. Raises ValueError
    for negative inputs, an inconsistent industry or an unknown ruleset.
    """
    for name, value in (
        ("employees", employees),
        ("revenue_yuan", revenue_yuan),
        ("total_assets_yuan", total_assets_yuan),
    ):
        if value < 0:
            raise ValueError(f"{name} must not be negative, got {value}")
    rules = RULESETS.get(ruleset)
    if rules is None:
        raise ValueError(f"unknown size ruleset {ruleset!r}; known: {', '.join(RULESETS)}")
    sector = sme_sector(section, division, property_management=property_management)
    return rules[sector].classify(
        employees=employees, revenue_yuan=revenue_yuan, total_assets_yuan=total_assets_yuan
    )
