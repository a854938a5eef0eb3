"""The finmatch domain vocabulary: towns, industries, size classes, credit codes, categories."""

from shared.vocab.categories import (
    CATEGORIES,
    CategoryInfo,
    InstitutionKind,
    ProductCategory,
)
from shared.vocab.credit_code import (
    InvalidCreditCode,
    make_credit_code,
    make_dongguan_credit_code,
    normalize_credit_code,
)
from shared.vocab.industries import (
    DIVISION_NAMES_ZH,
    SECTIONS,
    SECTIONS_BY_LETTER,
    Section,
    section_for_division,
    validate_industry,
)
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
from shared.vocab.towns import (
    TOWNS,
    TOWNS_BY_CODE,
    Town,
    TownKind,
    census_weights,
    get_town,
    is_town_code,
)

__all__ = [
    "CATEGORIES",
    "CURRENT_RULESET",
    "DIVISION_NAMES_ZH",
    "RULESETS",
    "SECTIONS",
    "SECTIONS_BY_LETTER",
    "TOWNS",
    "TOWNS_BY_CODE",
    "CategoryInfo",
    "InstitutionKind",
    "InvalidCreditCode",
    "Measure",
    "ProductCategory",
    "Section",
    "SizeClass",
    "SizeRule",
    "SmeSector",
    "Town",
    "TownKind",
    "census_weights",
    "classify_size",
    "get_town",
    "is_town_code",
    "make_credit_code",
    "make_dongguan_credit_code",
    "normalize_credit_code",
    "section_for_division",
    "sme_sector",
    "validate_industry",
]
