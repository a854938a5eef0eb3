"""Tests for the financing product categories and institution kinds."""

import pytest

from shared.vocab.categories import CATEGORIES, InstitutionKind, ProductCategory

EXPECTED = {
    ProductCategory.IP_PLEDGE: ("知识产权质押", (53, 55, 56)),
    ProductCategory.GOV_PROCUREMENT: ("政采贷", (63,)),
    ProductCategory.GUANMAOTONG: ("莞贸通", (72,)),
    ProductCategory.CREDIT_INSURANCE_GUARANTEE: ("信保+担保", (75,)),
    ProductCategory.RECEIVABLES: ("应收账款融资", (63,)),
    ProductCategory.SUPPLY_CHAIN: ("供应链金融", (62, 64)),
    ProductCategory.LEASING: ("融资租赁", (60,)),
    ProductCategory.GREEN: ("绿色信贷", (43,)),
    ProductCategory.FIRST_LOAN: ("首贷", (58, 66)),
    ProductCategory.TECH_CREDIT: ("科技信贷", (53, 54)),
    ProductCategory.GUARANTEED: ("政府性融资担保", (73, 74)),
    ProductCategory.INVEST_LOAN_GUARANTEE: ("投贷担", (76,)),
}


def test_enum_values() -> None:
    assert [c.value for c in ProductCategory] == [
        "ip_pledge",
        "gov_procurement",
        "guanmaotong",
        "credit_insurance_guarantee",
        "receivables",
        "supply_chain",
        "leasing",
        "green",
        "first_loan",
        "tech_credit",
        "guaranteed",
        "invest_loan_guarantee",
    ]
    assert [k.value for k in InstitutionKind] == ["bank", "insurer", "guarantor", "lessor", "other"]


def test_every_category_has_info_in_enum_order() -> None:
    assert list(CATEGORIES) == list(ProductCategory)


@pytest.mark.parametrize(("category", "expected"), EXPECTED.items())
def test_names_and_plan_items(
    category: ProductCategory, expected: tuple[str, tuple[int, ...]]
) -> None:
    info = CATEGORIES[category]
    assert info.category is category
    assert (info.name_zh, info.plan_items) == expected


@pytest.mark.parametrize("category", list(ProductCategory))
def test_descriptions_are_one_chinese_sentence(category: ProductCategory) -> None:
    info = CATEGORIES[category]
    assert info.name_en
    assert info.description_zh.endswith("。")
    assert info.description_zh.count("。") == 1


def test_categories_are_read_only() -> None:
    with pytest.raises(TypeError):
        CATEGORIES[ProductCategory.GREEN] = CATEGORIES[ProductCategory.LEASING]  # type: ignore[index]
