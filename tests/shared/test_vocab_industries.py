"""Tests for the GB/T 4754-2017 sections, divisions and industry validation."""

import string

import pytest

from shared.vocab.industries import (
    DIVISION_NAMES_ZH,
    SECTIONS,
    SECTIONS_BY_LETTER,
    section_for_division,
    validate_industry,
)

# Table §3.1 of domain_facts.md, written out again so a typo in the module is caught.
EXPECTED_RANGES = {
    "A": (1, 5),
    "B": (6, 12),
    "C": (13, 43),
    "D": (44, 46),
    "E": (47, 50),
    "F": (51, 52),
    "G": (53, 60),
    "H": (61, 62),
    "I": (63, 65),
    "J": (66, 69),
    "K": (70, 70),
    "L": (71, 72),
    "M": (73, 75),
    "N": (76, 79),
    "O": (80, 82),
    "P": (83, 83),
    "Q": (84, 85),
    "R": (86, 90),
    "S": (91, 96),
    "T": (97, 97),
}


def test_sections_are_a_to_t_with_the_standard_ranges() -> None:
    assert [s.letter for s in SECTIONS] == list(string.ascii_uppercase[:20])
    assert {s.letter: (s.first_division, s.last_division) for s in SECTIONS} == EXPECTED_RANGES
    assert SECTIONS_BY_LETTER["C"].name_zh == "制造业"
    assert SECTIONS_BY_LETTER["I"].name_zh == "信息传输、软件和信息技术服务业"
    assert all(s.name_zh and s.name_en for s in SECTIONS)


def test_ranges_tile_divisions_1_to_97_without_gaps() -> None:
    covered = [d for s in SECTIONS for d in range(s.first_division, s.last_division + 1)]
    assert covered == list(range(1, 98))


@pytest.mark.parametrize(("letter", "bounds"), EXPECTED_RANGES.items())
def test_section_for_division_at_range_edges(letter: str, bounds: tuple[int, int]) -> None:
    first, last = bounds
    assert section_for_division(first) == letter
    assert section_for_division(last) == letter


@pytest.mark.parametrize("division", [0, -1, 98, 100])
def test_section_for_division_rejects_non_divisions(division: int) -> None:
    with pytest.raises(KeyError):
        section_for_division(division)


@pytest.mark.parametrize(
    ("division", "name"),
    [
        (13, "农副食品加工业"),
        (14, "食品制造业"),
        (15, "酒、饮料和精制茶制造业"),
        (17, "纺织业"),
        (18, "纺织服装、服饰业"),
        (19, "皮革、毛皮、羽毛及其制品和制鞋业"),
        (21, "家具制造业"),
        (22, "造纸和纸制品业"),
        (24, "文教、工美、体育和娱乐用品制造业"),
        (29, "橡胶和塑料制品业"),
        (30, "非金属矿物制品业"),
        (33, "金属制品业"),
        (34, "通用设备制造业"),
        (35, "专用设备制造业"),
        (38, "电气机械和器材制造业"),
        (39, "计算机、通信和其他电子设备制造业"),
        (40, "仪器仪表制造业"),
        (59, "装卸搬运和仓储业"),
        (70, "房地产业"),
    ],
)
def test_division_names_follow_the_2017_edition(division: int, name: str) -> None:
    assert DIVISION_NAMES_ZH[division] == name


def test_every_division_has_a_name() -> None:
    assert sorted(DIVISION_NAMES_ZH) == list(range(1, 98))
    assert len(set(DIVISION_NAMES_ZH.values())) == 97


@pytest.mark.parametrize(
    ("section", "division", "expected"),
    [
        ("C", 39, ("C", 39)),
        (" c ", 39, ("C", 39)),
        ("f", None, ("F", None)),
        ("K", 70, ("K", 70)),
        ("T", 97, ("T", 97)),
        ("a", 1, ("A", 1)),
    ],
)
def test_validate_industry_normalises(
    section: str, division: int | None, expected: tuple[str, int | None]
) -> None:
    assert validate_industry(section, division) == expected


@pytest.mark.parametrize(
    ("section", "division", "message"),
    [
        ("F", 39, "division 39 belongs to section C, not F"),
        ("c", 51, "division 51 belongs to section F, not C"),
        ("Z", None, "unknown industry section 'Z'"),
        ("", None, "unknown industry section ''"),
        ("CC", 39, "unknown industry section 'CC'"),
        ("C39", None, "unknown industry section 'C39'"),
        ("C", 0, "industry division 0 is outside 1–97"),
        ("T", 98, "industry division 98 is outside 1–97"),
        ("A", -5, "industry division -5 is outside 1–97"),
        ("A", True, "industry division must be an integer"),
        ("C", "39", "industry division must be an integer"),
    ],
)
def test_validate_industry_rejects_with_a_clear_message(
    section: str, division: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        validate_industry(section, division)  # type: ignore[arg-type]
