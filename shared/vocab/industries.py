"""GB/T 4754-2017 industry sections (门类) and divisions (大类), and their validation."""

# Sources (see /work/shared/reference/domain_facts.md §3):
# - Section letters, names and division ranges: a 2017-edition list of the 97 divisions in a
#   public Python file; the section names match lianjintai/openapi-doc dict_mtIndTypCd.md.
# - Division names: the same 2017 list, cross-checked against a second public 2017 list (an
#   SQL dump of the 4-level tree). The 2017 edition renumbered some divisions against 2011
#   (e.g. 59 is 装卸搬运和仓储业, 11 is 开采专业及辅助性活动), so 2011 names must not be mixed in.
# - The English section names are our own descriptive translations, not an official text.

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

FIRST_DIVISION = 1
LAST_DIVISION = 97


@dataclass(frozen=True, slots=True)
class Section:
    """One GB/T 4754-2017 section and the inclusive range of its two-digit divisions."""

    letter: str
    name_zh: str
    name_en: str
    first_division: int
    last_division: int


SECTIONS: tuple[Section, ...] = (
    Section("A", "农、林、牧、渔业", "Agriculture, forestry, animal husbandry and fishery", 1, 5),
    Section("B", "采矿业", "Mining", 6, 12),
    Section("C", "制造业", "Manufacturing", 13, 43),
    Section(
        "D",
        "电力、热力、燃气及水生产和供应业",
        "Production and supply of electricity, heat, gas and water",
        44,
        46,
    ),
    Section("E", "建筑业", "Construction", 47, 50),
    Section("F", "批发和零售业", "Wholesale and retail trade", 51, 52),
    Section("G", "交通运输、仓储和邮政业", "Transport, storage and postal services", 53, 60),
    Section("H", "住宿和餐饮业", "Accommodation and catering", 61, 62),
    Section(
        "I",
        "信息传输、软件和信息技术服务业",
        "Information transmission, software and information technology services",
        63,
        65,
    ),
    Section("J", "金融业", "Finance", 66, 69),
    Section("K", "房地产业", "Real estate", 70, 70),
    Section("L", "租赁和商务服务业", "Leasing and business services", 71, 72),
    Section("M", "科学研究和技术服务业", "Scientific research and technical services", 73, 75),
    Section(
        "N",
        "水利、环境和公共设施管理业",
        "Water conservancy, environment and public facilities management",
        76,
        79,
    ),
    Section(
        "O",
        "居民服务、修理和其他服务业",
        "Household services, repair and other services",
        80,
        82,
    ),
    Section("P", "教育", "Education", 83, 83),
    Section("Q", "卫生和社会工作", "Health and social work", 84, 85),
    Section("R", "文化、体育和娱乐业", "Culture, sports and entertainment", 86, 90),
    Section(
        "S",
        "公共管理、社会保障和社会组织",
        "Public administration, social security and social organisations",
        91,
        96,
    ),
    Section("T", "国际组织", "International organisations", 97, 97),
)

SECTIONS_BY_LETTER: Mapping[str, Section] = MappingProxyType({s.letter: s for s in SECTIONS})

DIVISION_NAMES_ZH: Mapping[int, str] = MappingProxyType(
    {
        1: "农业",
        2: "林业",
        3: "畜牧业",
        4: "渔业",
        5: "农、林、牧、渔专业及辅助性活动",
        6: "煤炭开采和洗选业",
        7: "石油和天然气开采业",
        8: "黑色金属矿采选业",
        9: "有色金属矿采选业",
        10: "非金属矿采选业",
        11: "开采专业及辅助性活动",
        12: "其他采矿业",
        13: "农副食品加工业",
        14: "食品制造业",
        15: "酒、饮料和精制茶制造业",
        16: "烟草制品业",
        17: "纺织业",
        18: "纺织服装、服饰业",
        19: "皮革、毛皮、羽毛及其制品和制鞋业",
        20: "木材加工和木、竹、藤、棕、草制品业",
        21: "家具制造业",
        22: "造纸和纸制品业",
        23: "印刷和记录媒介复制业",
        24: "文教、工美、体育和娱乐用品制造业",
        25: "石油、煤炭及其他燃料加工业",
        26: "化学原料和化学制品制造业",
        27: "医药制造业",
        28: "化学纤维制造业",
        29: "橡胶和塑料制品业",
        30: "非金属矿物制品业",
        31: "黑色金属冶炼和压延加工业",
        32: "有色金属冶炼和压延加工业",
        33: "金属制品业",
        34: "通用设备制造业",
        35: "专用设备制造业",
        36: "汽车制造业",
        37: "铁路、船舶、航空航天和其他运输设备制造业",
        38: "电气机械和器材制造业",
        39: "计算机、通信和其他电子设备制造业",
        40: "仪器仪表制造业",
        41: "其他制造业",
        42: "废弃资源综合利用业",
        43: "金属制品、机械和设备修理业",
        44: "电力、热力生产和供应业",
        45: "燃气生产和供应业",
        46: "水的生产和供应业",
        47: "房屋建筑业",
        48: "土木工程建筑业",
        49: "建筑安装业",
        50: "建筑装饰、装修和其他建筑业",
        51: "批发业",
        52: "零售业",
        53: "铁路运输业",
        54: "道路运输业",
        55: "水上运输业",
        56: "航空运输业",
        57: "管道运输业",
        58: "多式联运和运输代理业",
        59: "装卸搬运和仓储业",
        60: "邮政业",
        61: "住宿业",
        62: "餐饮业",
        63: "电信、广播电视和卫星传输服务",
        64: "互联网和相关服务",
        65: "软件和信息技术服务业",
        66: "货币金融服务",
        67: "资本市场服务",
        68: "保险业",
        69: "其他金融业",
        70: "房地产业",
        71: "租赁业",
        72: "商务服务业",
        73: "研究和试验发展",
        74: "专业技术服务业",
        75: "科技推广和应用服务业",
        76: "水利管理业",
        77: "生态保护和环境治理业",
        78: "公共设施管理业",
        79: "土地管理业",
        80: "居民服务业",
        81: "机动车、电子产品和日用产品修理业",
        82: "其他服务业",
        83: "教育",
        84: "卫生",
        85: "社会工作",
        86: "新闻和出版业",
        87: "广播、电视、电影和录音制作业",
        88: "文化艺术业",
        89: "体育",
        90: "娱乐业",
        91: "中国共产党机关",
        92: "国家机构",
        93: "人民政协、民主党派",
        94: "社会保障",
        95: "群众团体、社会团体和其他成员组织",
        96: "基层群众自治组织及其他组织",
        97: "国际组织",
    }
)

_SECTION_BY_DIVISION: Mapping[int, str] = MappingProxyType(
    {
        division: section.letter
        for section in SECTIONS
        for division in range(section.first_division, section.last_division + 1)
    }
)


def section_for_division(division: int) -> str:
    """Return the section letter of a two-digit division; raise KeyError if there is none."""
    try:
        return _SECTION_BY_DIVISION[division]
    except KeyError:
        raise KeyError(
            f"{division!r} is not a GB/T 4754-2017 division ({FIRST_DIVISION}–{LAST_DIVISION})"
        ) from None


def validate_industry(section: str, division: int | None) -> tuple[str, int | None]:
    """Normalise a (section, division) pair and check that it is consistent.

    The section is stripped and upper-cased; the division may be None when only the section is
    known. Raises ValueError naming the problem.
    """
    letter = section.strip().upper()
    if letter not in SECTIONS_BY_LETTER:
        raise ValueError(f"unknown industry section {section!r}: expected one letter A–T")
    if division is None:
        return letter, None
    # bool is an int subclass; True would otherwise pass as division 1.
    if isinstance(division, bool) or not isinstance(division, int):
        raise ValueError(f"industry division must be an integer, got {division!r}")
    if not FIRST_DIVISION <= division <= LAST_DIVISION:
        raise ValueError(
            f"industry division {division} is outside {FIRST_DIVISION}–{LAST_DIVISION}"
        )
    owner = _SECTION_BY_DIVISION[division]
    if owner != letter:
        raise ValueError(f"division {division} belongs to section {owner}, not {letter}")
    return letter, division
