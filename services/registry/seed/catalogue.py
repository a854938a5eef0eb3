"""Synthetic demo catalogue: Dongguan financial institutions and the products they offer.

SYNTHETIC DEMO DATA. The institutions carry the names of real Dongguan banks, insurers and
guarantors (the two lessors and their names are invented, marked "（演示）") so the demo reads
like Dongguan, but every product below is invented: names, amounts, rates and rules are ours, set
to plausible values, and none describes an offer of the named institution.

Parameters follow /work/shared/reference/domain_facts.md §5 where a source gives a number:
政采贷 lends up to the contract value without collateral (§5.1); the city subsidises 70% of
IP-pledge interest up to 100万 a year (§5.2); 莞贸通 serves medium and large exporters above
US$10M a year (action plan item 72, §5.3) while 信保+担保 serves small and micro exporters
(item 75); export-credit-insurance financing lends up to 80% of the invoice (§5.4); government
guarantee fees are at most 1% (§5.4); leasing subsidy and caps (§5.7); 投贷担 2:1:1 (§5.9).
Where sources are silent (rates, 莞贸通 subsidy share, receivable advance ratios) the numbers
are assumptions. Money is integer yuan, rates and fees basis points.
"""

from __future__ import annotations

import copy
from typing import Any

from shared.enums import AmountCapBasis, CollateralKind, CreditRating
from shared.vocab.categories import InstitutionKind, ProductCategory
from shared.vocab.size_class import SizeClass

WAN = 10_000  # 1万元; amounts below are written in 万 to read like the sources

SONGSHANHU = "441900401"
# 松山湖高新区(生态园) and the nine towns of the 2019 functional-zone pilot (§1.3).
SONGSHANHU_ZONE = (
    SONGSHANHU,
    "441900403",
    "441900102",
    "441900103",
    "441900104",
    "441900105",
    "441900106",
    "441900109",
    "441900111",
    "441900113",
    "441900118",
)
# 水乡功能区: 中堂、望牛墩、麻涌、洪梅、道滘 (§1.3).
WATER_TOWNS = ("441900124", "441900125", "441900126", "441900127", "441900128")
# 滨海湾新区 and the port-side towns it was carved from, plus 东莞港 and 沙田.
BINHAIWAN_AREA = ("441900404", "441900402", "441900119", "441900121", "441900123")

_B, _I, _G, _L, _O = (
    InstitutionKind.BANK,
    InstitutionKind.INSURER,
    InstitutionKind.GUARANTOR,
    InstitutionKind.LESSOR,
    InstitutionKind.OTHER,
)

# Indices into this tuple are what products() refers to; append only, never reorder.
_INSTITUTIONS: tuple[tuple[str, InstitutionKind], ...] = (
    ("东莞银行", _B),  # 0
    ("东莞农村商业银行", _B),  # 1
    ("中国工商银行东莞分行", _B),  # 2
    ("中国银行东莞分行", _B),  # 3
    ("中国建设银行东莞分行", _B),  # 4
    ("中国农业银行东莞分行", _B),  # 5
    ("招商银行东莞分行", _B),  # 6
    ("广发银行东莞分行", _B),  # 7
    ("中国邮政储蓄银行东莞分行", _B),  # 8
    ("中信银行东莞分行", _B),  # 9
    ("中国出口信用保险公司东莞办事处", _I),  # 10
    ("东莞市科创融资担保有限公司", _G),  # 11
    ("广东粤财融资担保集团有限公司", _G),  # 12
    ("莞信融资租赁有限公司（演示）", _L),  # 13
    ("湾区智造融资租赁有限公司（演示）", _L),  # 14
    ("东莞市科创资本（投贷担合作方）", _O),  # 15
)

_C = ProductCategory
_MANUFACTURING = ["C"]
_SMALL_MICRO = [SizeClass.SMALL.value, SizeClass.MICRO.value]
_MEDIUM_LARGE = [SizeClass.MEDIUM.value, SizeClass.LARGE.value]


def _product(
    name: str,
    category: ProductCategory,
    description: str,
    *,
    amount_wan: tuple[float, float],
    term: tuple[int, int],
    rate_bp: tuple[int, int],
    collateral: CollateralKind = CollateralKind.NONE,
    cap: tuple[AmountCapBasis, int] = (AmountCapBasis.NONE, 100),
    **rules: Any,
) -> dict[str, Any]:
    """One product as plain data that ProductCreate accepts; ``rules`` are Eligibility fields."""
    basis, pct = cap
    return {
        "name": name,
        "category": category.value,
        "description": description,
        "amount_min_yuan": round(amount_wan[0] * WAN),
        "amount_max_yuan": round(amount_wan[1] * WAN),
        "term_min_months": term[0],
        "term_max_months": term[1],
        "rate_min_bp": rate_bp[0],
        "rate_max_bp": rate_bp[1],
        "collateral_kind": collateral.value,
        "amount_cap_basis": basis.value,
        "amount_cap_pct": pct,
        **rules,
    }


_GP, _RC, _EX = (
    AmountCapBasis.GOV_PROCUREMENT_CONTRACTS,
    AmountCapBasis.RECEIVABLES,
    AmountCapBasis.EXPORT_REVENUE,
)
_COLL, _REV = AmountCapBasis.COLLATERAL, AmountCapBasis.ANNUAL_REVENUE
_CK = CollateralKind

_PRODUCTS: tuple[tuple[int, dict[str, Any]], ...] = (
    # 政采贷 (§5.1, item 63): up to the contract value, no property collateral, fast.
    (0, _product("政采贷（线上）", _C.GOV_PROCUREMENT,
        "凭中标政府采购合同线上申请，无需抵押，财政直付回款。",
        amount_wan=(10, 1000), term=(3, 12), rate_bp=(330, 450),
        collateral=_CK.PROCUREMENT_CONTRACT, cap=(_GP, 100), requires_gov_procurement=True)),
    (2, _product("政采e贷", _C.GOV_PROCUREMENT, "政府采购中标供应商信用贷款，额度不超过合同金额。",
        amount_wan=(10, 500), term=(3, 12), rate_bp=(320, 430),
        collateral=_CK.PROCUREMENT_CONTRACT, cap=(_GP, 100), requires_gov_procurement=True)),
    (4, _product("政采快贷", _C.GOV_PROCUREMENT, "合同融资，审批5个工作日内完成。",
        amount_wan=(20, 800), term=(6, 12), rate_bp=(340, 460),
        collateral=_CK.PROCUREMENT_CONTRACT, cap=(_GP, 90), requires_gov_procurement=True)),
    (8, _product("政采通", _C.GOV_PROCUREMENT, "面向小微政府采购供应商的合同融资。",
        amount_wan=(5, 300), term=(3, 12), rate_bp=(350, 480),
        collateral=_CK.PROCUREMENT_CONTRACT, cap=(_GP, 100), requires_gov_procurement=True,
        elig_size_classes=_SMALL_MICRO)),
    # 知识产权质押 (§5.2, items 53/55/56): city subsidy 70% of interest, ≤100万 a year.
    (3, _product("知识产权质押贷", _C.IP_PLEDGE, "以发明或实用新型专利质押，可申请市知识产权贴息。",
        amount_wan=(50, 1000), term=(12, 36), rate_bp=(360, 550),
        collateral=_CK.INTELLECTUAL_PROPERTY, min_patents=1, min_years_established=1,
        interest_subsidy_pct=70, interest_subsidy_cap_yuan=100 * WAN)),
    (0, _product("莞知贷", _C.IP_PLEDGE, "专利权质押融资，配套专利质押融资保险。",
        amount_wan=(30, 500), term=(12, 36), rate_bp=(380, 560),
        collateral=_CK.INTELLECTUAL_PROPERTY, min_patents=2,
        interest_subsidy_pct=70, interest_subsidy_cap_yuan=100 * WAN)),
    (1, _product("知产融", _C.IP_PLEDGE, "专利及商标组合质押，适合制造业中小企业。",
        amount_wan=(50, 800), term=(12, 36), rate_bp=(370, 560),
        collateral=_CK.INTELLECTUAL_PROPERTY, min_patents=3, min_trademarks=1,
        elig_industry_sections=_MANUFACTURING,
        interest_subsidy_pct=70, interest_subsidy_cap_yuan=100 * WAN)),
    # Larger, longer IP loans lean on invention patents (20-year, examined); utility ones do
    # not count towards that part of the rule.
    (2, _product("松湖知识产权贷", _C.IP_PLEDGE,
        "松山湖园区企业专利质押中长期研发贷款，须含发明专利。",
        amount_wan=(100, 2000), term=(12, 60), rate_bp=(340, 500),
        collateral=_CK.INTELLECTUAL_PROPERTY, min_patents=3, min_invention_patents=1,
        elig_town_codes=[SONGSHANHU],
        interest_subsidy_pct=70, interest_subsidy_cap_yuan=100 * WAN)),
    # 莞贸通 (item 72): medium and large exporters above US$10M; subsidy share is our assumption.
    (3, _product("莞贸通·保单融资", _C.GUANMAOTONG,
        "出口信用保险保单融资，政府贴息并补偿本金损失。",
        amount_wan=(200, 5000), term=(3, 12), rate_bp=(300, 420),
        collateral=_CK.INSURANCE_POLICY, cap=(_EX, 80), elig_size_classes=_MEDIUM_LARGE,
        min_export_usd=10_000_000, interest_subsidy_pct=30, interest_subsidy_cap_yuan=200 * WAN)),
    (2, _product("莞贸通贸易融资", _C.GUANMAOTONG, "政府+银行+保险合作，大中型外贸企业出口融资。",
        amount_wan=(300, 8000), term=(3, 12), rate_bp=(290, 400),
        collateral=_CK.INSURANCE_POLICY, cap=(_EX, 80), elig_size_classes=_MEDIUM_LARGE,
        min_export_usd=10_000_000, interest_subsidy_pct=30, interest_subsidy_cap_yuan=200 * WAN)),
    (7, _product("莞贸通·信保押汇", _C.GUANMAOTONG, "短期出口信用险项下押汇，享莞贸通贴息。",
        amount_wan=(200, 3000), term=(1, 6), rate_bp=(310, 430),
        collateral=_CK.INSURANCE_POLICY, cap=(_EX, 80), elig_size_classes=_MEDIUM_LARGE,
        min_export_usd=10_000_000, interest_subsidy_pct=30, interest_subsidy_cap_yuan=200 * WAN)),
    # 信保+担保 (item 75, §5.4): small and micro exporters; up to 80% of the invoice.
    (10, _product("信保+担保·小微外贸贷", _C.CREDIT_INSURANCE_GUARANTEE,
        "信保保单加政府性担保增信，合作银行放款。",
        amount_wan=(10, 500), term=(3, 12), rate_bp=(340, 480), guarantee_fee_bp=80,
        collateral=_CK.INSURANCE_POLICY, cap=(_EX, 80), elig_size_classes=_SMALL_MICRO,
        min_export_usd=50_000)),
    (7, _product("出口信保融资", _C.CREDIT_INSURANCE_GUARANTEE,
        "赔款权益转让给银行，按商业发票金额最高80%融资。",
        amount_wan=(20, 1000), term=(1, 6), rate_bp=(330, 470),
        collateral=_CK.INSURANCE_POLICY, cap=(_EX, 80), min_export_usd=100_000)),
    (11, _product("信保担保通", _C.CREDIT_INSURANCE_GUARANTEE,
        "科创担保为小微出口企业信保融资提供担保。",
        amount_wan=(10, 300), term=(3, 12), rate_bp=(350, 500), guarantee_fee_bp=60,
        collateral=_CK.GUARANTEE, cap=(_EX, 70), elig_size_classes=_SMALL_MICRO,
        min_export_usd=30_000)),
    (0, _product("外贸信保贷", _C.CREDIT_INSURANCE_GUARANTEE,
        "小微外贸企业凭信保保单申请流动资金贷款。",
        amount_wan=(10, 300), term=(3, 12), rate_bp=(360, 500), guarantee_fee_bp=100,
        collateral=_CK.INSURANCE_POLICY, cap=(_EX, 60), elig_size_classes=_SMALL_MICRO,
        min_export_usd=50_000, elig_town_codes=list(BINHAIWAN_AREA))),
    # 应收账款融资 (item 63, 中征平台): advance ratios are assumptions.
    (2, _product("应收账款质押贷", _C.RECEIVABLES, "经中征应收账款融资服务平台确权的应收账款质押。",
        amount_wan=(20, 2000), term=(3, 12), rate_bp=(330, 480),
        collateral=_CK.RECEIVABLES, cap=(_RC, 80), requires_receivables=True)),
    (1, _product("莞e收", _C.RECEIVABLES, "核心企业确权后在线融资，随借随还。",
        amount_wan=(10, 800), term=(3, 12), rate_bp=(350, 500),
        collateral=_CK.RECEIVABLES, cap=(_RC, 70), requires_receivables=True)),
    (6, _product("应收保理贷", _C.RECEIVABLES, "有追索权保理，按应收账款最高90%融资。",
        amount_wan=(50, 3000), term=(3, 12), rate_bp=(320, 460),
        collateral=_CK.RECEIVABLES, cap=(_RC, 90), requires_receivables=True,
        min_credit_rating=CreditRating.BB.value)),
    (9, _product("中征应收通", _C.RECEIVABLES, "依托中征平台对接，面向制造业上游供应商。",
        amount_wan=(20, 1500), term=(3, 12), rate_bp=(340, 490),
        collateral=_CK.RECEIVABLES, cap=(_RC, 80), requires_receivables=True,
        elig_industry_sections=_MANUFACTURING)),
    # 供应链金融 (items 62/64): leans on the core enterprise's payment capacity.
    (4, _product("链上贷", _C.SUPPLY_CHAIN, "基于核心企业付款信用的上游供应商融资。",
        amount_wan=(10, 1000), term=(3, 12), rate_bp=(320, 460),
        collateral=_CK.RECEIVABLES, cap=(_RC, 90), requires_receivables=True)),
    (6, _product("供应链e融", _C.SUPPLY_CHAIN, "核心企业应付账款电子凭证拆分流转融资。",
        amount_wan=(5, 2000), term=(1, 12), rate_bp=(300, 450),
        collateral=_CK.RECEIVABLES, cap=(_RC, 100), requires_receivables=True)),
    (0, _product("产业链订单贷", _C.SUPPLY_CHAIN, "凭核心企业订单及应收账款融资，支持备货生产。",
        amount_wan=(10, 500), term=(3, 12), rate_bp=(350, 500),
        collateral=_CK.RECEIVABLES, cap=(_RC, 70), requires_receivables=True,
        elig_industry_sections=_MANUFACTURING)),
    (5, _product("链捷贷", _C.SUPPLY_CHAIN, "面向核心企业上下游小微企业的批量授信。",
        amount_wan=(10, 300), term=(3, 12), rate_bp=(340, 480),
        collateral=_CK.RECEIVABLES, cap=(_RC, 80), requires_receivables=True,
        elig_size_classes=_SMALL_MICRO)),
    # 融资租赁 (item 60, §5.7): sale-leaseback on equipment; subsidy ≤8%/yr, ≤120万/yr.
    (13, _product("设备售后回租", _C.LEASING,
        "企业将自有设备售予租赁公司后租回使用，可申请设备融资租赁补贴。",
        amount_wan=(50, 1500), term=(12, 36), rate_bp=(520, 850),
        collateral=_CK.EQUIPMENT, cap=(_COLL, 80), elig_industry_sections=_MANUFACTURING,
        min_years_established=2, min_total_assets_yuan=500 * WAN)),
    (13, _product("智能改造直租", _C.LEASING, "新购智能化设备直接租赁，以租代购、分期偿还。",
        amount_wan=(30, 1000), term=(12, 48), rate_bp=(500, 800),
        collateral=_CK.EQUIPMENT, cap=(_COLL, 90), elig_industry_sections=_MANUFACTURING)),
    (14, _product("机器换人租赁", _C.LEASING, "自动化产线售后回租，支持设备更新改造。",
        amount_wan=(100, 3000), term=(24, 60), rate_bp=(480, 780),
        collateral=_CK.EQUIPMENT, cap=(_COLL, 70), elig_industry_sections=_MANUFACTURING,
        min_years_established=3)),
    (14, _product("小微设备租", _C.LEASING, "小额设备售后回租，资料简化。",
        amount_wan=(10, 300), term=(12, 36), rate_bp=(580, 900),
        collateral=_CK.EQUIPMENT, cap=(_COLL, 70), elig_industry_sections=["C", "G", "E"],
        elig_size_classes=_SMALL_MICRO)),
    # 绿色信贷 (item 43, §5.8): 碳排放配额质押 and green fast-track loans.
    (2, _product("碳排放权质押贷", _C.GREEN, "以碳排放配额质押，动产融资统一登记并冻结配额。",
        amount_wan=(100, 3000), term=(12, 36), rate_bp=(300, 420),
        collateral=_CK.CARBON_QUOTA, requires_green=True, elig_industry_sections=["C", "D"])),
    (1, _product("绿色贷", _C.GREEN, "绿色名录企业节能改造、清洁生产项目贷款。",
        amount_wan=(20, 2000), term=(12, 60), rate_bp=(310, 450), requires_green=True)),
    (0, _product("莞绿融", _C.GREEN, "绿色信贷快速审批通道，利率优惠。",
        amount_wan=(10, 1000), term=(6, 36), rate_bp=(300, 440), requires_green=True)),
    (1, _product("水乡绿色发展贷", _C.GREEN, "水乡功能区绿色名录企业专项贷款。",
        amount_wan=(10, 800), term=(12, 48), rate_bp=(300, 430), requires_green=True,
        elig_town_codes=list(WATER_TOWNS))),
    # 首贷 (items 58/66): firms with no bank loan yet, small pure-credit amounts.
    (5, _product("首贷通", _C.FIRST_LOAN, "首次向银行申请贷款的小微企业纯信用贷款。",
        amount_wan=(5, 100), term=(6, 36), rate_bp=(360, 520),
        cap=(_REV, 30), requires_first_loan=True, min_years_established=1)),
    (8, _product("首贷易", _C.FIRST_LOAN, "结合粤信融平台数据授信，线上办理。",
        amount_wan=(3, 50), term=(6, 24), rate_bp=(380, 560),
        cap=(_REV, 25), requires_first_loan=True, elig_size_classes=_SMALL_MICRO)),
    (0, _product("随心贷·首贷版", _C.FIRST_LOAN, "纯信用经营贷，最高300万元。",
        amount_wan=(10, 300), term=(6, 36), rate_bp=(350, 520),
        cap=(_REV, 30), requires_first_loan=True, min_years_established=2)),
    (1, _product("水乡首贷", _C.FIRST_LOAN, "水乡功能区首贷户培育专项。",
        amount_wan=(5, 200), term=(6, 36), rate_bp=(360, 530),
        cap=(_REV, 30), requires_first_loan=True, elig_town_codes=list(WATER_TOWNS))),
    # 科技信贷 (items 53/54): high-tech and 专精特新 firms, 科技支行 credit.
    (9, _product("专精特新成长贷", _C.TECH_CREDIT, "专精特新中小企业信用贷款。",
        amount_wan=(100, 3000), term=(12, 36), rate_bp=(320, 480),
        cap=(_REV, 50), requires_specialized_sme=True)),
    (5, _product("小巨人科创贷", _C.TECH_CREDIT, "专精特新及高新技术企业中长期贷款，最高3000万元。",
        amount_wan=(200, 3000), term=(12, 60), rate_bp=(330, 490),
        cap=(_REV, 60), requires_high_tech=True, min_years_established=3)),
    (0, _product("松湖评级贷", _C.TECH_CREDIT, "依据园区科技企业评级结果授信，配套风险补偿。",
        amount_wan=(50, 1000), term=(12, 36), rate_bp=(340, 500),
        cap=(_REV, 50), requires_high_tech=True, elig_town_codes=list(SONGSHANHU_ZONE))),
    (6, _product("科创信用贷", _C.TECH_CREDIT, "高新技术企业纯信用贷款，看技术和团队。",
        amount_wan=(50, 2000), term=(12, 36), rate_bp=(330, 500),
        cap=(_REV, 40), requires_high_tech=True, min_credit_rating=CreditRating.BBB.value)),
    (3, _product("中试贷", _C.TECH_CREDIT, "支持科技企业中试熟化阶段的研发贷款。",
        amount_wan=(100, 2000), term=(24, 60), rate_bp=(340, 520),
        cap=(_REV, 60), requires_high_tech=True, min_patents=2)),
    # 政府性融资担保 (items 73/74): guarantee fee ≤1% (≤100bp), no collateral needed.
    (11, _product("科创担保·批量贷", _C.GUARANTEED, "与东莞银行批量担保合作，担保费率不高于1%。",
        amount_wan=(10, 1000), term=(6, 36), rate_bp=(360, 520), guarantee_fee_bp=80,
        collateral=_CK.GUARANTEE, cap=(_REV, 50), elig_size_classes=_SMALL_MICRO)),
    # 天使贷 is for start-ups: the five-year limit is our assumption.
    (12, _product("松湖政银担·天使贷", _C.GUARANTEED,
        "松山湖初创科技企业（成立5年以内）担保贷款，风险补偿最高100%。",
        amount_wan=(10, 500), term=(12, 36), rate_bp=(350, 500), guarantee_fee_bp=50,
        collateral=_CK.GUARANTEE, elig_town_codes=[SONGSHANHU], max_years_established=5)),
    (12, _product("园区保", _C.GUARANTEED, "松山湖园区企业担保增信贷款。",
        amount_wan=(50, 1000), term=(12, 36), rate_bp=(350, 510), guarantee_fee_bp=100,
        collateral=_CK.GUARANTEE, cap=(_REV, 50), elig_town_codes=list(SONGSHANHU_ZONE))),
    (1, _product("园区贷", _C.GUARANTEED, "3个工作日放款，300万元以内免担保费。",
        amount_wan=(10, 500), term=(6, 36), rate_bp=(370, 540), guarantee_fee_bp=0,
        collateral=_CK.GUARANTEE, cap=(_REV, 40))),
    (11, _product("政银担·助农贷", _C.GUARANTEED, "农业经营主体批量担保贷款，首笔免担保费。",
        amount_wan=(5, 500), term=(6, 36), rate_bp=(360, 520), guarantee_fee_bp=50,
        collateral=_CK.GUARANTEE, elig_industry_sections=["A"])),
    # 投贷担 (item 76, §5.9): equity : loan : guarantee = 2 : 1 : 1; the loan leg is priced here.
    (3, _product("投贷担联动贷", _C.INVEST_LOAN_GUARANTEE,
        "股权投资、信用贷款与批量担保按2:1:1配置。",
        amount_wan=(200, 2000), term=(12, 36), rate_bp=(330, 480), guarantee_fee_bp=80,
        collateral=_CK.GUARANTEE, requires_high_tech=True, min_patents=1)),
    (11, _product("投贷担·科创担保", _C.INVEST_LOAN_GUARANTEE, "获引导基金投资的科创企业贷款担保。",
        amount_wan=(100, 1000), term=(12, 36), rate_bp=(340, 500), guarantee_fee_bp=60,
        collateral=_CK.GUARANTEE, requires_high_tech=True)),
    (15, _product("投贷联动·松湖科创", _C.INVEST_LOAN_GUARANTEE, "引导基金跟投，合作银行配套贷款。",
        amount_wan=(300, 3000), term=(24, 60), rate_bp=(320, 470), guarantee_fee_bp=50,
        collateral=_CK.GUARANTEE, requires_specialized_sme=True,
        elig_town_codes=list(SONGSHANHU_ZONE))),
)  # fmt: skip


def institutions() -> list[dict[str, Any]]:
    """The institutions as dicts that InstitutionCreate accepts; list order is the index."""
    return [{"name": name, "kind": kind.value} for name, kind in _INSTITUTIONS]


def products() -> list[tuple[int, dict[str, Any]]]:
    """(institution index, product dict for ProductCreate) pairs; fresh copies on every call."""
    return [(index, copy.deepcopy(product)) for index, product in _PRODUCTS]
