"""The examples' data: one firm a portal registers, one product a bank lists, and the bank's
past decisions to import. All synthetic, like the rest of the demo."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

from finmatch_client.models import (
    DecisionCreate,
    DecisionOutcome,
    FirmCreate,
    HistoryFirm,
    HistoryLine,
    ProductCategory,
    ProductCreate,
    ProductPublic,
    RejectionReason,
    SizeClass,
)

TANGXIA = "441900116"  # 塘厦镇

# The credit code is the firm's natural key: submitting it again updates the same firm, so the
# example can run any number of times. (A valid code in the demo's synthetic range.)
EXAMPLE_FIRM = FirmCreate(
    credit_code="91441900LUL54GBXAB",
    name="东莞市示例智能装备有限公司",
    town_code=TANGXIA,
    industry_section="C",
    industry_division=34,
    established_on=date(2016, 5, 1),
    employees=60,
    annual_revenue_yuan=25_000_000,
    total_assets_yuan=18_000_000,
    invention_patents=3,
    utility_patents=8,
    trademarks=2,
    is_high_tech=True,
    need_amount_yuan=2_000_000,
    need_term_months=12,
    need_purpose="采购生产设备",
)


def example_product(**rules: object) -> ProductCreate:
    """A tech-credit product for high-tech firms with an invention patent and ¥10M revenue;
    ``rules`` changes its rules (a draft to preview)."""
    product = ProductCreate(
        name="示例科技信用贷（examples/bank.py）",
        category=ProductCategory.TECH_CREDIT,
        description="示例：高新技术企业信用贷款，无需抵押",
        amount_min_yuan=500_000,
        amount_max_yuan=5_000_000,
        term_min_months=6,
        term_max_months=36,
        rate_min_bp=360,
        rate_max_bp=450,
        elig_size_classes=[SizeClass.MEDIUM, SizeClass.SMALL, SizeClass.MICRO],
        min_revenue_yuan=10_000_000,
        min_invention_patents=1,
        requires_high_tech=True,
    )
    return product.model_copy(update=rules)


def past_decisions(product: ProductPublic, count: int, *, seed: int = 2020) -> list[HistoryLine]:
    """``count`` past applications to ``product`` and their decisions over the last two years:
    larger firms with more patents approved more often, and some exceptions either way."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    lines = []
    for n in range(count):
        revenue = rng.choice([3, 6, 10, 15, 25, 40, 80]) * 1_000_000
        patents = rng.randint(0, 5)
        approved = (revenue >= 10_000_000 and patents >= 1) != (rng.random() < 0.15)
        amount = rng.choice([5, 10, 20, 30]) * 100_000
        submitted = now - timedelta(days=730 - 2 * n, hours=rng.randint(0, 8))
        decision = (
            DecisionCreate(
                outcome=DecisionOutcome.APPROVED,
                approved_amount_yuan=amount,
                rate_bp=rng.randint(product.rate_min_bp, product.rate_max_bp),
                term_months=12,
            )
            if approved
            else DecisionCreate(
                outcome=DecisionOutcome.REJECTED,
                rejection_reason=RejectionReason.INSUFFICIENT_REVENUE,
            )
        )
        lines.append(
            HistoryLine(
                product_id=product.id,
                firm=HistoryFirm(
                    town_code=TANGXIA,
                    industry_section="C",
                    established_on=date(2010 + n % 10, 1 + n % 12, 1),
                    employees=8 + revenue // 500_000,
                    annual_revenue_yuan=revenue,
                    total_assets_yuan=revenue * 2 // 3,
                    invention_patents=patents,
                    is_high_tech=patents >= 2,
                ),
                requested_amount_yuan=amount,
                requested_term_months=12,
                submitted_at=submitted,
                decided_at=submitted + timedelta(days=rng.randint(2, 15)),
                decision=decision,
            )
        )
    return lines
