"""The wording of every reason and near miss, Chinese and English side by side.

Kept in one table so the two languages stay in step; explain.py fills in the numbers.
"""

from __future__ import annotations

TEXT: dict[str, tuple[str, str]] = {
    # A criterion the firm fails: {a} the firm's value, {r} the requirement, {g} the gap.
    "min_years_established": (
        "成立 {a} 年，要求满 {r} 年（还差 {g} 年）",
        "Established {a} ago; the product requires {r} ({g} short)",
    ),
    "min_revenue_yuan": (
        "营业收入 {a}，距要求 {r} 差 {g}",
        "Annual revenue {a}; the product requires {r} ({g} short)",
    ),
    "max_revenue_yuan": (
        "营业收入 {a} 超过该产品上限 {r}（超出 {g}）",
        "Annual revenue {a} exceeds the product's ceiling of {r} (by {g})",
    ),
    "min_employees": (
        "从业人员 {a} 人，距要求 {r} 人 差 {g} 人",
        "{a} employees; the product requires {r} ({g} short)",
    ),
    "min_export_usd": (
        "年出口额 {a}，距要求 {r} 差 {g}",
        "Annual exports {a}; the product requires {r} ({g} short)",
    ),
    "min_patents": (
        "发明及实用新型专利 {a} 件，距要求 {r} 件 差 {g} 件",
        "{a} invention and utility patents; the product requires {r} ({g} short)",
    ),
    "min_credit_rating": (
        "信用评级 {a}，要求 {r} 及以上（差 {g} 级）",
        "Credit rating {a}; the product requires {r} or better ({g} short)",
    ),
    "min_credit_rating:unrated": (
        "无信用评级，要求 {r} 及以上",
        "No credit rating; the product requires {r} or better",
    ),
    "requires_high_tech": ("需为国家高新技术企业", "Requires national high-tech enterprise status"),
    "requires_specialized_sme": ("需为专精特新企业", "Requires 专精特新 (specialised SME) status"),
    "requires_gov_procurement": (
        "需持有政府采购合同",
        "Requires a government procurement contract",
    ),
    "requires_receivables": (
        "需持有核心企业应收账款",
        "Requires receivables from a core enterprise",
    ),
    "requires_green": ("需列入绿色企业名录", "Requires a listing as a green enterprise"),
    "requires_first_loan": (
        "仅限首次贷款的企业（首贷户），本企业已有贷款记录",
        "Only for first-time borrowers; this firm has borrowed before",
    ),
    "elig_town_codes": (
        "仅限 {names} 的企业（本企业在 {own}）",
        "Only for firms in {names} (this firm is in {own})",
    ),
    "elig_industry_sections": (
        "仅限 {names} 企业（本企业属于 {own}）",
        "Only for firms in {names} (this firm: {own})",
    ),
    "elig_size_classes": (
        "仅面向 {names} 企业（本企业为 {own}）",
        "Only for {names} firms (this firm is {own})",
    ),
    # A restrictive rule the firm meets.
    "met:min_export_usd": (
        "出口额 {a} ≥ {category}门槛 {r}",
        "Exports {a} ≥ the {category} threshold of {r}",
    ),
    "met:min_patents": (
        "拥有发明及实用新型专利 {a} 件 ≥ 要求 {r} 件 → 符合{category}条件",
        "Holds {a} invention and utility patents ≥ {r} required → meets the {category} conditions",
    ),
    "met:min_revenue_yuan": ("营业收入 {a} ≥ 要求 {r}", "Annual revenue {a} ≥ {r} required"),
    "met:max_revenue_yuan": (
        "营业收入 {a} 未超过上限 {r}",
        "Annual revenue {a} within the ceiling of {r}",
    ),
    "met:min_employees": ("从业人员 {a} 人 ≥ 要求 {r} 人", "{a} employees ≥ {r} required"),
    "met:min_years_established": (
        "成立 {a} 年 ≥ 要求 {r} 年",
        "Established {a} ago ≥ {r} required",
    ),
    "met:min_credit_rating": (
        "信用评级 {a}，满足 {r} 及以上要求",
        "Credit rating {a} meets the {r}-or-better requirement",
    ),
    "met:requires_high_tech": ("国家高新技术企业", "National high-tech enterprise"),
    "met:requires_specialized_sme": ("专精特新企业", "专精特新 (specialised SME)"),
    "met:requires_gov_procurement": (
        "持有政府采购合同 {v}",
        "Holds government procurement contracts of {v}",
    ),
    "met:requires_receivables": (
        "持有核心企业应收账款 {v}",
        "Holds receivables of {v} from core enterprises",
    ),
    "met:requires_green": ("已列入绿色企业名录", "Listed as a green enterprise"),
    "met:requires_first_loan": (
        "首次贷款（首贷户），符合{category}产品条件",
        "First-time borrower → meets the {category} conditions",
    ),
    "met:elig_size_classes": (
        "企业规模为 {own}，属于产品面向的企业",
        "A {own} firm, as the product requires",
    ),
    "met:elig_industry_sections": (
        "所属行业 {own} 在产品支持范围内",
        "Sector {own} is among those the product serves",
    ),
    "met:elig_town_codes": (
        "企业位于 {own}，在产品服务区域内",
        "Located in {own}, within the product's area",
    ),
    # Cost.
    "cost": ("年化成本约 {eff}（{parts}）", "Annual cost about {eff} ({parts})"),
    "cost:subsidised": (
        "贴息后年化成本约 {eff}（{parts}）",
        "Annual cost after subsidy about {eff} ({parts})",
    ),
    "cost:rate": ("利率 {v}", "rate {v}"),
    "cost:subsidy": ("贴息 {v}", "{v} interest subsidy"),
    "cost:subsidy_cap": ("贴息 {v}，上限 {cap}/年", "{v} interest subsidy capped at {cap}/yr"),
    "cost:fee": ("担保费 {v}", "guarantee fee {v}"),
    "cost:partial": (
        "；可贷 {v}，为申请金额的 {share}",
        "; lends {v}, {share} of the amount requested",
    ),
    "cost:none": (
        "按本企业条件可贷金额低于该产品起贷金额 {v}，无法放款",
        "What this product could lend this firm is below its minimum of {v}",
    ),
    # Model feature groups: the fact only; whether it helps is appended.
    "revenue_to_amount": (
        "营业收入 {v}，为申请金额的 {x} 倍",
        "Revenue {v} is {x}× the amount requested",
    ),
    "leverage": (
        "申请金额 {v} 占资产总额 {assets} 的 {share}",
        "The {v} requested is {share} of total assets of {assets}",
    ),
    "leverage:none": ("申请金额 {v}，企业资产总额为 0", "Requesting {v} with no reported assets"),
    "collateral_coverage": (
        "{kind} {v}，为申请金额的 {x} 倍",
        "{kind} {v}, {x}× the amount requested",
    ),
    "collateral_coverage:none": ("无{kind}", "No {kind}"),
    "collateral_coverage:patents": (
        "可质押发明及实用新型专利 {a} 件",
        "{a} invention and utility patents to pledge",
    ),
    "collateral_coverage:unsecured": ("该产品无需抵押物", "The product takes no collateral"),
    "years": ("成立 {a} 年", "Established {a} ago"),
    "rating": ("信用评级 {a}", "Credit rating {a}"),
    "rating:none": ("无信用评级", "No credit rating"),
    "size": ("企业规模为 {a}", "Size class: {a}"),
    "exports": ("年出口额 {a}", "Annual exports {a}"),
    "exports:none": ("无出口收入", "No export revenue"),
    "innovation:patents": ("发明及实用新型专利 {a} 件", "{a} invention and utility patents"),
    "innovation:none": (
        "暂无专利、高新技术企业或专精特新资质",
        "No patents, high-tech or 专精特新 status",
    ),
    "first_loan": ("从未贷款（首贷户）", "Never borrowed before (first-time borrower)"),
    "first_loan:none": ("已有贷款记录", "Has borrowed before"),
    "term": (
        "申请期限 {t} 个月，在产品期限 {span} 个月之内",
        "Requested term {t} months, within the product's {span} months",
    ),
    "term:over": (
        "申请期限 {t} 个月，长于产品最长期限 {span} 个月",
        "Requested term {t} months, over the product's maximum of {span} months",
    ),
    "term:under": (
        "申请期限 {t} 个月，短于产品最短期限 {span} 个月",
        "Requested term {t} months, under the product's minimum of {span} months",
    ),
    "term:none": (
        "未填写申请期限（产品期限 {span} 个月）",
        "No term requested (the product runs {span} months)",
    ),
    "amount_cap": (
        "申请金额 {v} 在该产品可贷额度 {cap} 之内",
        "The {v} requested is within this product's limit of {cap} for the firm",
    ),
    "amount_cap:over": (
        "申请金额 {v} 超过该产品可贷额度 {cap}",
        "The {v} requested exceeds this product's limit of {cap} for the firm",
    ),
    "helps": ("（有利）", " (helps)"),
    "hurts": ("（不利）", " (hurts)"),
}
