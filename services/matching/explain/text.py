"""The wording of cost and model reasons, Chinese and English side by side.

Kept in one table so the two languages stay in step; the modules beside it fill in the
numbers. Eligibility criteria carry their own wording in the criterion registry
(shared/criteria/).
"""

from __future__ import annotations

TEXT: dict[str, tuple[str, str]] = {
    # A rule the product accepts only from an official register (verified_only).
    "unmet:verified_only": (
        "需经认定：{label}须列入{register}，仅申报不计",
        "Must be verified: {label} needs a listing in the {register}; a declaration alone "
        "does not count",
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
