"""Dongguan's subdistricts, towns and statistical parks, with census weights per unit."""

# Sources (see /work/shared/reference/domain_facts.md §1.1–1.2):
# - Codes: the 9-digit 统计用区划代码 township codes (prefix 441900), from a public JSON region
#   list and an iOS region list, cross-checked against each other. 441900001/002/120 are unused
#   in every list seen. One other list orders 441900112–117 differently; the majority order wins.
# - Romanisation: an EN_NAMES map in a public repository. 麻涌 is Machong, not "Mayong".
#   For the four parks the source gives an English name instead of pinyin; we keep it, and drop
#   the gloss from "Songshanhu (Songshan Lake)".
# - 法人单位 (second- and tertiary-industry legal-person units, 万个, end of 2023):
#   东莞市第五次全国经济普查公报(第七号), www.dg.gov.cn, 2025-06-04. The stored copy of the
#   bulletin stops after 沙田镇, so the later rows have no value (None). The bulletin prints
#   "长安镇53.54万人" where it means 5.00万个; we use 5.00.

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

DONGGUAN_REGION_CODE = "441900"

# Bulletin total for the whole city (万个). The 26 units with a value add up to 49.88万, which
# leaves 3.40万 for the units the stored copy cuts off.
CENSUS_TOTAL_LEGAL_UNITS_10K = 53.28
CENSUS_UNLISTED_REMAINDER_10K = 3.40


class TownKind(StrEnum):
    """The administrative (or statistical) kind of a township-level unit."""

    SUBDISTRICT = "subdistrict"  # 街道
    TOWN = "town"  # 镇
    PARK = "park"  # 园区 listed beside the towns in the statistics, not a township


@dataclass(frozen=True, slots=True)
class Town:
    """One township-level unit of Dongguan."""

    code: str
    name_zh: str
    pinyin: str
    kind: TownKind
    legal_units_10k: float | None


_S, _T, _P = TownKind.SUBDISTRICT, TownKind.TOWN, TownKind.PARK

TOWNS: tuple[Town, ...] = (
    Town("441900003", "东城街道", "Dongcheng", _S, 3.84),
    Town("441900004", "南城街道", "Nancheng", _S, 4.76),
    Town("441900005", "万江街道", "Wanjiang", _S, 1.64),
    Town("441900006", "莞城街道", "Guancheng", _S, 1.38),
    Town("441900101", "石碣镇", "Shijie", _T, 0.91),
    Town("441900102", "石龙镇", "Shilong", _T, 0.38),
    Town("441900103", "茶山镇", "Chashan", _T, 1.14),
    Town("441900104", "石排镇", "Shipai", _T, 1.04),
    Town("441900105", "企石镇", "Qishi", _T, 0.57),
    Town("441900106", "横沥镇", "Hengli", _T, 1.00),
    Town("441900107", "桥头镇", "Qiaotou", _T, 0.88),
    Town("441900108", "谢岗镇", "Xiegang", _T, 0.41),
    Town("441900109", "东坑镇", "Dongkeng", _T, 0.73),
    Town("441900110", "常平镇", "Changping", _T, 2.30),
    Town("441900111", "寮步镇", "Liaobu", _T, 2.70),
    Town("441900112", "樟木头镇", "Zhangmutou", _T, 1.13),
    Town("441900113", "大朗镇", "Dalang", _T, 2.31),
    Town("441900114", "黄江镇", "Huangjiang", _T, 1.39),
    Town("441900115", "清溪镇", "Qingxi", _T, 1.76),
    Town("441900116", "塘厦镇", "Tangxia", _T, 3.11),
    Town("441900117", "凤岗镇", "Fenggang", _T, 1.50),
    Town("441900118", "大岭山镇", "Dalingshan", _T, 2.37),
    Town("441900119", "长安镇", "Chang'an", _T, 5.00),
    Town("441900121", "虎门镇", "Humen", _T, 4.37),
    Town("441900122", "厚街镇", "Houjie", _T, 2.56),
    Town("441900123", "沙田镇", "Shatian", _T, 0.70),
    Town("441900124", "道滘镇", "Daojiao", _T, None),
    Town("441900125", "洪梅镇", "Hongmei", _T, None),
    Town("441900126", "麻涌镇", "Machong", _T, None),
    Town("441900127", "望牛墩镇", "Wangniudun", _T, None),
    Town("441900128", "中堂镇", "Zhongtang", _T, None),
    Town("441900129", "高埗镇", "Gaobu", _T, None),
    Town("441900401", "松山湖", "Songshanhu", _P, None),
    Town("441900402", "东莞港", "Dongguan Port", _P, None),
    Town("441900403", "东莞生态园", "Dongguan Ecological Park", _P, None),
    Town("441900404", "东莞滨海湾新区", "Binhaiwan New Area", _P, None),
)

TOWNS_BY_CODE: Mapping[str, Town] = MappingProxyType({town.code: town for town in TOWNS})


def get_town(code: str) -> Town:
    """Return the unit with this 9-digit code; raise KeyError if there is none."""
    try:
        return TOWNS_BY_CODE[code]
    except KeyError:
        raise KeyError(f"unknown Dongguan town code {code!r}") from None


def is_town_code(code: str) -> bool:
    """Tell whether ``code`` is the 9-digit code of one of the 36 units."""
    return code in TOWNS_BY_CODE


def census_weights() -> dict[str, float]:
    """Weight per town code (万个 legal units) for drawing a synthetic firm population.

    Units with a census value get it; the 3.40万 the bulletin leaves unattributed is shared
    equally among the units without one. That equal split is our assumption: how the remainder
    divides among 道滘, 洪梅, 麻涌, 望牛墩, 中堂, 高埗 and the parks is UNCONFIRMED in the sources.
    """
    unknown = [town.code for town in TOWNS if town.legal_units_10k is None]
    share = CENSUS_UNLISTED_REMAINDER_10K / len(unknown)
    return {
        town.code: share if town.legal_units_10k is None else town.legal_units_10k for town in TOWNS
    }
