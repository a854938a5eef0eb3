"""Synthetic Dongguan firm population, drawn with numpy in chunks so 500,000 firms take seconds.

Every firm is SYNTHETIC: names are assembled from small word lists, credit codes come from
make_dongguan_credit_code, and all figures are random draws. Any likeness to a real firm is
accidental. The shares aim at the Dongguan headline numbers of domain_facts.md §6.2:

- towns weighted by the 2023 census legal units per town (census_weights());
- a manufacturing-heavy industry mix (electronics, electrical, textiles/garments/shoes,
  furniture, toys, plastics, metal products, machinery) beside trade, logistics, catering,
  software, business services, construction and a little agriculture;
- size by log-normal employees, revenue per employee and assets per revenue per sector, tuned
  so that ≥95% of firms are small or micro under the 2011 MIIT standard;
- about 5% exporters (2.9万 of 53万 legal units; larger firms export more often, so the few
  above US$10M are mostly medium), about 2% high-tech (1万 of 53万), about 1% 专精特新;
- about 3% with procurement contracts, 8% with receivables from core enterprises, 3% green,
  35% that never borrowed, 40% with a credit rating, 60% with a financing need.

Firm i depends only on (seed, i // CHUNK), so generate_firms(n) is a prefix of
generate_firms(m) for n ≤ m, whatever the sizes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt

from shared.enums import CreditRating
from shared.types import YUAN_PER_USD
from shared.vocab.credit_code import make_dongguan_credit_code
from shared.vocab.towns import census_weights

DEFAULT_SEED = 20201218  # the day 东金〔2020〕75号 was issued
CHUNK = 10_000
REFERENCE_DATE = date(2025, 12, 31)  # firms are established no later than this
OLDEST_YEARS = 31.0  # back to 1995
USD_CNY = float(YUAN_PER_USD)  # one fixed rate for turning revenue into export dollars
WAN = 10_000

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Sector:
    """Draw parameters of one industry division; p_* are base probabilities of a trait."""

    section: str
    division: int
    weight: float
    words: tuple[str, ...]
    employees_median: float
    employees_sigma: float
    revenue_per_employee_wan: float
    assets_to_revenue: float
    p_export: float
    p_high_tech: float
    p_procurement: float
    p_receivables: float
    p_green: float
    p_equipment: float


# Medians are our assumptions, set so the size and trait shares above come out; weights follow
# the rough split of Dongguan's legal units (about 38% industrial, §6.2).
SECTORS: tuple[Sector, ...] = (
    # section, division, weight, name words,
    #   employees median/sigma, revenue per employee (万), assets/revenue,
    #   p_export, p_high_tech, p_procurement, p_receivables, p_green, p_equipment
    Sector("C", 39, 7.0, ("电子科技", "电子", "智能科技", "光电科技"),
           14, 1.35, 35, 0.8, 0.13, 0.080, 0.010, 0.18, 0.04, 0.7),
    Sector("C", 38, 4.0, ("电器", "电气", "电源科技", "照明科技"),
           14, 1.30, 35, 0.8, 0.12, 0.060, 0.020, 0.16, 0.05, 0.7),
    Sector("C", 17, 1.5, ("纺织", "织造", "纱线"),
           12, 1.20, 28, 0.9, 0.10, 0.005, 0.005, 0.12, 0.06, 0.75),
    Sector("C", 18, 3.0, ("服饰", "制衣", "时装"),
           12, 1.25, 20, 0.7, 0.12, 0.003, 0.010, 0.10, 0.03, 0.6),
    Sector("C", 19, 1.5, ("鞋业", "皮具", "箱包"),
           14, 1.30, 20, 0.7, 0.14, 0.003, 0.005, 0.10, 0.03, 0.6),
    Sector("C", 21, 2.5, ("家具", "家居用品", "木业"),
           12, 1.20, 25, 0.9, 0.12, 0.010, 0.020, 0.10, 0.04, 0.7),
    Sector("C", 24, 2.5, ("玩具", "文体用品", "工艺品"),
           12, 1.30, 22, 0.8, 0.16, 0.010, 0.005, 0.10, 0.02, 0.6),
    Sector("C", 29, 4.0, ("塑胶制品", "橡塑制品", "塑料制品"),
           10, 1.20, 30, 0.9, 0.08, 0.020, 0.010, 0.18, 0.05, 0.8),
    Sector("C", 33, 5.0, ("五金制品", "金属制品", "模具"),
           10, 1.20, 30, 0.9, 0.08, 0.020, 0.010, 0.18, 0.05, 0.8),
    Sector("C", 34, 3.0, ("机械设备", "机械", "自动化设备"),
           10, 1.20, 38, 1.0, 0.07, 0.050, 0.020, 0.16, 0.05, 0.8),
    Sector("C", 35, 2.5, ("精密机械", "智能装备", "专用设备"),
           10, 1.25, 40, 1.0, 0.07, 0.070, 0.020, 0.16, 0.05, 0.8),
    Sector("F", 51, 15.0, ("贸易", "商贸", "供应链管理", "实业"),
           4, 1.00, 120, 0.5, 0.035, 0.001, 0.040, 0.06, 0.005, 0.05),
    Sector("F", 52, 10.0, ("商行", "百货", "便利店", "超市"),
           4, 0.90, 40, 0.4, 0.003, 0.0, 0.010, 0.01, 0.005, 0.05),
    Sector("G", 54, 3.0, ("物流", "运输", "货运"),
           6, 1.10, 35, 1.2, 0.01, 0.0, 0.020, 0.08, 0.02, 0.5),
    Sector("G", 58, 2.0, ("国际货运代理", "供应链", "物流"),
           5, 1.00, 60, 0.5, 0.06, 0.0, 0.010, 0.06, 0.005, 0.1),
    Sector("G", 59, 1.5, ("仓储", "仓储服务"),
           6, 1.00, 30, 1.5, 0.01, 0.0, 0.010, 0.06, 0.01, 0.4),
    Sector("H", 62, 4.0, ("餐饮管理", "饮食", "食府"),
           8, 0.90, 12, 0.5, 0.0, 0.0, 0.010, 0.0, 0.005, 0.2),
    Sector("H", 61, 0.5, ("酒店管理", "酒店"),
           12, 1.00, 15, 2.0, 0.0, 0.0, 0.010, 0.0, 0.01, 0.2),
    Sector("I", 65, 4.0, ("信息技术", "软件科技", "网络科技", "数据科技"),
           8, 1.10, 30, 0.6, 0.01, 0.060, 0.080, 0.05, 0.005, 0.05),
    Sector("L", 72, 9.0, ("企业管理咨询", "商务服务", "人力资源", "广告"),
           5, 1.00, 25, 0.8, 0.003, 0.001, 0.040, 0.03, 0.003, 0.05),
    Sector("L", 71, 1.0, ("设备租赁", "租赁"),
           4, 1.00, 40, 2.0, 0.002, 0.0, 0.020, 0.05, 0.01, 0.6),
    Sector("M", 74, 3.0, ("检测技术", "工程技术", "设计"),
           6, 1.10, 25, 0.8, 0.005, 0.050, 0.060, 0.05, 0.02, 0.2),
    Sector("M", 75, 2.0, ("科技", "技术服务", "科技发展"),
           5, 1.00, 25, 0.8, 0.003, 0.060, 0.040, 0.03, 0.01, 0.1),
    Sector("E", 48, 1.5, ("建设工程", "市政工程"),
           10, 1.10, 40, 1.0, 0.0, 0.0, 0.100, 0.10, 0.03, 0.4),
    Sector("E", 50, 2.5, ("装饰工程", "建筑装饰"),
           8, 1.00, 30, 0.8, 0.0, 0.0, 0.060, 0.06, 0.02, 0.2),
    Sector("A", 1, 0.5, ("农业发展", "生态农业", "种植"),
           5, 1.00, 20, 1.5, 0.005, 0.002, 0.030, 0.03, 0.06, 0.4),
    Sector("A", 4, 0.5, ("水产养殖", "渔业"),
           4, 1.00, 25, 1.5, 0.01, 0.0, 0.010, 0.03, 0.04, 0.4),
)  # fmt: skip

# Two-character trade names come from two small lists; the pairs read like firm names without
# being any particular firm.
_NAME_FIRST = tuple("华宏鑫永锦恒盛泰德利信达佳源丰瑞嘉富兴晟骏昊翔卓灏铭和天诚润")
_NAME_SECOND = tuple("泽辉途凯晖睿邦耀祥展宸启策帆琦鸿越峰朗拓源茂尚轩晋瀚川")

_PURPOSES = (
    "采购原材料",
    "补充流动资金",
    "支付员工工资及社保",
    "购置生产设备",
    "扩大产能",
    "厂房装修改造",
    "订单备货生产",
    "偿还到期贷款（续贷）",
    "数字化和智能化改造",
)
_PURPOSE_EXPORT = "出口订单生产备货"
_PURPOSE_RESEARCH = "研发投入及中试"
_TERMS = np.array([6, 12, 12, 12, 18, 24, 24, 36, 36, 48, 60])

# Rating buckets, best first, with the share of rated firms each gets (our assumption).
_RATINGS = [r.value for r in CreditRating]
_RATING_SHARES = np.array([0.03, 0.09, 0.20, 0.30, 0.20, 0.11, 0.07])

_SECTOR_WEIGHTS = np.array([s.weight for s in SECTORS]) / sum(s.weight for s in SECTORS)


def _column(values: list[float]) -> Floats:
    return np.array(values, dtype=np.float64)


_SECTOR_PARAMS = {
    name: _column([float(getattr(s, name)) for s in SECTORS])
    for name in (
        "employees_median",
        "employees_sigma",
        "revenue_per_employee_wan",
        "assets_to_revenue",
        "p_export",
        "p_high_tech",
        "p_procurement",
        "p_receivables",
        "p_green",
        "p_equipment",
    )
}
_IS_MANUFACTURING = np.array([s.section == "C" for s in SECTORS])


def generate_firms(n: int, seed: int = DEFAULT_SEED) -> Iterator[dict[str, Any]]:
    """Yield ``n`` synthetic firms as dicts that FirmCreate.model_validate accepts."""
    if n < 0:
        raise ValueError(f"n must not be negative, got {n}")
    weights = census_weights()
    town_codes = list(weights)
    town_p = np.array([weights[c] for c in town_codes]) / sum(weights.values())
    for chunk_index, start in enumerate(range(0, n, CHUNK)):
        # One generator per chunk: firm i never depends on how many firms follow it.
        rng = np.random.default_rng([seed, chunk_index])
        yield from _chunk(rng, start, min(CHUNK, n - start), town_codes, town_p)


def _chunk(
    rng: np.random.Generator,
    start: int,
    count: int,
    town_codes: list[str],
    town_p: Floats,
) -> Iterator[dict[str, Any]]:
    m = CHUNK  # always draw a full chunk so the stream does not depend on count
    sector = rng.choice(len(SECTORS), size=m, p=_SECTOR_WEIGHTS)
    town = rng.choice(len(town_codes), size=m, p=town_p)
    par = {name: column[sector] for name, column in _SECTOR_PARAMS.items()}
    manufacturing = _IS_MANUFACTURING[sector]

    age = rng.exponential(7.0, size=m) % OLDEST_YEARS
    age_effect = np.log1p(age) - np.log(8.0)  # older firms are bigger and better known
    log_emp = (
        np.log(par["employees_median"])
        + par["employees_sigma"] * rng.standard_normal(m)
        + 0.3 * age_effect
    )
    employees = np.maximum(1, np.rint(np.exp(log_emp)))
    revenue = employees * par["revenue_per_employee_wan"] * WAN * rng.lognormal(0.0, 0.6, m)
    assets = revenue * par["assets_to_revenue"] * rng.lognormal(0.0, 0.5, m)
    size_z = (log_emp - np.log(par["employees_median"])) / par["employees_sigma"]

    # Constant boosts below (1.15, 1.2, 1.4) calibrate the sector tables to the target shares.
    def trait(p: Floats, boost: Floats | float = 1.0) -> Bools:
        return rng.random(m) < np.clip(p * boost, 0.0, 0.95)

    exporter = trait(par["p_export"], np.exp(0.5 * size_z))
    export_share = rng.beta(2.0, 2.0, m)
    export_usd = np.where(exporter, revenue * export_share / USD_CNY, 0.0)

    high_tech = trait(par["p_high_tech"], 1.15 * np.exp(0.3 * size_z)) & (age >= 1.0)
    specialized = (high_tech & (rng.random(m) < 0.4)) | (
        manufacturing & (employees >= 20) & (age >= 3.0) & (rng.random(m) < 0.02)
    )
    invention = np.where(
        high_tech,
        rng.negative_binomial(2, 0.3, m),
        np.where(rng.random(m) < 0.04, rng.geometric(0.4, m), 0),
    )
    utility = np.where(
        high_tech,
        rng.negative_binomial(2, 0.12, m),
        np.where(rng.random(m) < 0.15 * manufacturing + 0.03, rng.geometric(0.25, m), 0),
    )
    trademarks = np.where(rng.random(m) < 0.3, rng.geometric(0.45, m), 0)

    procurement = trait(par["p_procurement"], 1.2) * revenue * rng.uniform(0.05, 0.6, m)
    receivables = trait(par["p_receivables"]) * revenue * rng.uniform(0.05, 0.4, m)
    green = trait(par["p_green"], 1.4)
    # Young and small firms have more often never borrowed from a bank (首贷户 candidates).
    never_borrowed = rng.random(m) < np.clip(0.30 - 0.12 * age_effect - 0.06 * size_z, 0.05, 0.9)
    real_estate = trait(np.full(m, 0.2), np.exp(0.3 * age_effect + 0.2 * size_z))
    real_estate_value = real_estate * assets * rng.uniform(0.2, 0.7, m)
    equipment_value = trait(par["p_equipment"]) * assets * rng.uniform(0.1, 0.5, m)

    rated = trait(np.full(m, 0.42), np.exp(0.2 * age_effect - 0.4 * (never_borrowed - 0.35)))
    quality = 0.5 * size_z + 0.4 * age_effect + rng.standard_normal(m)
    quality_rank = np.argsort(np.argsort(-quality)) / m  # 0 = best firm of the chunk
    rating_index = np.minimum(
        np.searchsorted(np.cumsum(_RATING_SHARES), quality_rank, side="right"), len(_RATINGS) - 1
    )

    has_need = rng.random(m) < 0.6
    need = np.maximum(3 * WAN, np.rint(revenue * rng.lognormal(np.log(0.2), 0.7, m) / WAN) * WAN)
    need = np.minimum(need, 5_000 * WAN)
    term = rng.choice(_TERMS, size=m)
    purpose = rng.integers(0, len(_PURPOSES), m)
    purpose_roll = rng.random(m)
    established = REFERENCE_DATE.toordinal() - np.floor(age * 365.25).astype(np.int64)
    name_first = rng.integers(0, len(_NAME_FIRST), m)
    name_second = rng.integers(0, len(_NAME_SECOND), m)
    name_word = rng.integers(0, 4, m)
    consent = rng.random(m) < 0.97

    columns = {
        "sector": sector.tolist(),
        "town": town.tolist(),
        "employees": employees.astype(np.int64).tolist(),
        "revenue": np.rint(revenue).astype(np.int64).tolist(),
        "assets": np.rint(assets).astype(np.int64).tolist(),
        "export": np.rint(export_usd).astype(np.int64).tolist(),
        "invention": invention.astype(np.int64).tolist(),
        "utility": utility.astype(np.int64).tolist(),
        "trademarks": trademarks.astype(np.int64).tolist(),
        "high_tech": high_tech.tolist(),
        "specialized": specialized.tolist(),
        "procurement": np.rint(procurement).astype(np.int64).tolist(),
        "receivables": np.rint(receivables).astype(np.int64).tolist(),
        "green": green.tolist(),
        "never_borrowed": never_borrowed.tolist(),
        "real_estate": np.rint(real_estate_value).astype(np.int64).tolist(),
        "equipment": np.rint(equipment_value).astype(np.int64).tolist(),
        "rating": np.where(rated, rating_index, -1).tolist(),
        "need": np.where(has_need, need, 0).astype(np.int64).tolist(),
        "term": term.tolist(),
        "purpose": purpose.tolist(),
        "purpose_roll": purpose_roll.tolist(),
        "established": established.tolist(),
        "first": name_first.tolist(),
        "second": name_second.tolist(),
        "word": name_word.tolist(),
        "consent": consent.tolist(),
    }
    rows = zip(*columns.values(), strict=True)
    for offset, row in zip(range(count), rows, strict=False):
        yield _firm(start + offset, town_codes, dict(zip(columns, row, strict=True)))


def _firm(index: int, town_codes: list[str], v: dict[str, Any]) -> dict[str, Any]:
    sector = SECTORS[v["sector"]]
    word = sector.words[v["word"] % len(sector.words)]
    need = v["need"]
    return {
        "credit_code": make_dongguan_credit_code(index),
        "name": f"东莞市{_NAME_FIRST[v['first']]}{_NAME_SECOND[v['second']]}{word}有限公司",
        "town_code": town_codes[v["town"]],
        "industry_section": sector.section,
        "industry_division": sector.division,
        "established_on": date.fromordinal(v["established"]),
        "employees": v["employees"],
        "annual_revenue_yuan": v["revenue"],
        "total_assets_yuan": v["assets"],
        "export_revenue_usd": v["export"],
        "invention_patents": v["invention"],
        "utility_patents": v["utility"],
        "trademarks": v["trademarks"],
        "is_high_tech": v["high_tech"],
        "is_specialized_sme": v["specialized"],
        "gov_procurement_contracts_yuan": v["procurement"],
        "core_enterprise_receivables_yuan": v["receivables"],
        "is_green_listed": v["green"],
        "has_borrowed_before": not v["never_borrowed"],
        "collateral_real_estate_yuan": v["real_estate"],
        "collateral_equipment_yuan": v["equipment"],
        "credit_rating": _RATINGS[v["rating"]] if v["rating"] >= 0 else None,
        "need_amount_yuan": need or None,
        "need_term_months": v["term"] if need else None,
        "need_purpose": _purpose(v, sector) if need else None,
        "consent_matching": v["consent"],
    }


def _purpose(v: dict[str, Any], sector: Sector) -> str:
    # Exporters and high-tech firms mostly borrow for what makes them so.
    if v["export"] > 0 and v["purpose_roll"] < 0.5:
        return _PURPOSE_EXPORT
    if v["high_tech"] and v["purpose_roll"] < 0.4:
        return _PURPOSE_RESEARCH
    if sector.section != "C" and v["purpose"] in (3, 4, 8):
        return _PURPOSES[v["purpose"] % 3]  # services rarely buy production lines
    return _PURPOSES[v["purpose"]]
