"""Financing product categories of the Dongguan action plan, and kinds of financial institution."""

# Source: 东莞市金融支持粤港澳大湾区建设行动方案 (东金〔2020〕75号, issued 2020-12-18), items 43 and
# 53–76; text in /work/shared/reference/dongguan-action-plan-2020.txt. Each description_zh
# paraphrases the items listed in plan_items, nothing beyond them.

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType


class ProductCategory(StrEnum):
    """A kind of financing product the platform matches firms to."""

    IP_PLEDGE = "ip_pledge"
    GOV_PROCUREMENT = "gov_procurement"
    GUANMAOTONG = "guanmaotong"
    CREDIT_INSURANCE_GUARANTEE = "credit_insurance_guarantee"
    RECEIVABLES = "receivables"
    SUPPLY_CHAIN = "supply_chain"
    LEASING = "leasing"
    GREEN = "green"
    FIRST_LOAN = "first_loan"
    TECH_CREDIT = "tech_credit"
    GUARANTEED = "guaranteed"
    INVEST_LOAN_GUARANTEE = "invest_loan_guarantee"


class InstitutionKind(StrEnum):
    """The kind of institution that offers a product."""

    BANK = "bank"
    INSURER = "insurer"
    GUARANTOR = "guarantor"
    LESSOR = "lessor"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class CategoryInfo:
    """Names of a category and the action-plan items that define it."""

    category: ProductCategory
    name_zh: str
    name_en: str
    plan_items: tuple[int, ...]
    description_zh: str


_INFOS = (
    CategoryInfo(
        ProductCategory.IP_PLEDGE,
        "知识产权质押",
        "Intellectual-property pledge loan",
        (53, 55, 56),
        "以专利等知识产权为质押向科技企业发放中长期技术研发贷款，"
        "并以专利质押融资保险促进银保合作、扩大质押物范围。",
    ),
    CategoryInfo(
        ProductCategory.GOV_PROCUREMENT,
        "政采贷",
        "Government-procurement contract loan",
        (63,),
        "已中标（成交）的政府采购供应商凭政府采购合同在线办理的全流程线上融资。",
    ),
    CategoryInfo(
        ProductCategory.GUANMAOTONG,
        "莞贸通",
        "Guanmaotong export trade finance",
        (72,),
        "以“政府+银行+保险”模式，对出口额超过1000万美元的大中型外贸企业的出口信用保险保单融资"
        "给予贴息支持及本金损失补偿。",
    ),
    CategoryInfo(
        ProductCategory.CREDIT_INSURANCE_GUARANTEE,
        "信保+担保",
        "Export credit insurance plus guarantee",
        (75,),
        "以出口信用保险与融资担保相结合的方式为外贸企业增信，扩大对中小微外贸企业的出口信贷投放。",
    ),
    CategoryInfo(
        ProductCategory.RECEIVABLES,
        "应收账款融资",
        "Accounts-receivable financing",
        (63,),
        "依托中征应收账款融资服务平台对接应收账款债权人、债务人和资金提供方，"
        "提高制造业产业链融资效率。",
    ),
    CategoryInfo(
        ProductCategory.SUPPLY_CHAIN,
        "供应链金融",
        "Supply-chain finance",
        (62, 64),
        "依托供应链金融平台和产业链核心企业的付款能力与履约信用，"
        "为上下游中小微企业提供一揽子融资服务。",
    ),
    CategoryInfo(
        ProductCategory.LEASING,
        "融资租赁",
        "Finance leasing",
        (60,),
        "通过直接租赁、售后回租等业务，以“以租代购”、分期偿还的方式支持制造业企业设备更新改造和智能升级。",
    ),
    CategoryInfo(
        ProductCategory.GREEN,
        "绿色信贷",
        "Green credit",
        (43,),
        "经绿色信贷快速审批通道发放的贷款，包括以碳排放权、排污权、节能量为质押的融资。",
    ),
    CategoryInfo(
        ProductCategory.FIRST_LOAN,
        "首贷",
        "First bank loan",
        (58, 66),
        "面向首次从银行获得贷款的中小微企业（首贷户）的贷款，结合“粤信融”平台数据和技术、人才、"
        "市场前景等“软信息”授信。",
    ),
    CategoryInfo(
        ProductCategory.TECH_CREDIT,
        "科技信贷",
        "Technology credit",
        (53, 54),
        "科技支行或专营部门以专门的准入、审批和风控机制为科技企业提供的信贷，"
        "包括为入选国家人才计划的高端人才创新创业提供的中长期信用贷款。",
    ),
    CategoryInfo(
        ProductCategory.GUARANTEED,
        "政府性融资担保",
        "Government financing guarantee",
        (73, 74),
        "由融资担保机构（重点是政府性融资担保机构）担保增信的银行贷款，"
        "优先服务信用记录良好但有效抵质押品不足的小微企业。",
    ),
    CategoryInfo(
        ProductCategory.INVEST_LOAN_GUARANTEE,
        "投贷担",
        "Investment-loan-guarantee package",
        (76,),
        "市政府投资引导基金投股权、银行发放贷款、融资担保机构分担银行贷款风险的联动融资，"
        "服务科技型中小企业。",
    ),
)

CATEGORIES: Mapping[ProductCategory, CategoryInfo] = MappingProxyType(
    {info.category: info for info in _INFOS}
)
