"""Tests for the Dongguan town table and its census weights."""

from types import MappingProxyType

import pytest

from shared.vocab.towns import (
    TOWNS,
    TOWNS_BY_CODE,
    Town,
    TownKind,
    census_weights,
    get_town,
    is_town_code,
)


def test_table_has_4_subdistricts_28_towns_and_4_parks() -> None:
    kinds = [town.kind for town in TOWNS]
    assert len(TOWNS) == 36
    assert kinds.count(TownKind.SUBDISTRICT) == 4
    assert kinds.count(TownKind.TOWN) == 28
    assert kinds.count(TownKind.PARK) == 4


def test_codes_are_9_digit_dongguan_codes_in_table_order() -> None:
    codes = [town.code for town in TOWNS]
    assert all(len(code) == 9 and code.isdigit() and code.startswith("441900") for code in codes)
    # The source table lists the units by ascending code.
    assert codes == sorted(codes)
    assert len(set(codes)) == len(codes)
    assert codes[0] == "441900003"
    assert codes[-1] == "441900404"


@pytest.mark.parametrize("unused", ["441900001", "441900002", "441900120"])
def test_codes_unused_in_every_source_list_are_absent(unused: str) -> None:
    assert not is_town_code(unused)


def test_name_suffix_matches_kind() -> None:
    for town in TOWNS:
        if town.kind is TownKind.SUBDISTRICT:
            assert town.name_zh.endswith("街道")
        elif town.kind is TownKind.TOWN:
            assert town.name_zh.endswith("镇")


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("441900003", Town("441900003", "东城街道", "Dongcheng", TownKind.SUBDISTRICT, 3.84)),
        ("441900101", Town("441900101", "石碣镇", "Shijie", TownKind.TOWN, 0.91)),
        ("441900112", Town("441900112", "樟木头镇", "Zhangmutou", TownKind.TOWN, 1.13)),
        ("441900119", Town("441900119", "长安镇", "Chang'an", TownKind.TOWN, 5.00)),
        ("441900121", Town("441900121", "虎门镇", "Humen", TownKind.TOWN, 4.37)),
        ("441900126", Town("441900126", "麻涌镇", "Machong", TownKind.TOWN, None)),
        ("441900401", Town("441900401", "松山湖", "Songshanhu", TownKind.PARK, None)),
        (
            "441900404",
            Town("441900404", "东莞滨海湾新区", "Binhaiwan New Area", TownKind.PARK, None),
        ),
    ],
)
def test_get_town_returns_the_table_row(code: str, expected: Town) -> None:
    assert get_town(code) == expected
    assert TOWNS_BY_CODE[code] is get_town(code)


@pytest.mark.parametrize("code", ["", "441900", "441900999", "441901003", " 441900003"])
def test_unknown_codes(code: str) -> None:
    assert not is_town_code(code)
    with pytest.raises(KeyError, match="unknown Dongguan town code"):
        get_town(code)


def test_lookup_table_is_read_only() -> None:
    assert isinstance(TOWNS_BY_CODE, MappingProxyType)
    with pytest.raises(TypeError):
        TOWNS_BY_CODE["441900999"] = TOWNS[0]  # type: ignore[index]


def test_census_values_match_the_bulletin_arithmetic() -> None:
    known = [town.legal_units_10k for town in TOWNS if town.legal_units_10k is not None]
    # The bulletin's stored copy lists 26 units summing to 49.88万 out of 53.28万.
    assert len(known) == 26
    assert sum(known) == pytest.approx(49.88)
    last_listed = TOWNS.index(get_town("441900123"))  # 沙田镇, where the copy is cut off
    assert all(town.legal_units_10k is not None for town in TOWNS[: last_listed + 1])
    assert all(town.legal_units_10k is None for town in TOWNS[last_listed + 1 :])


def test_census_weights_spread_the_remainder_evenly() -> None:
    weights = census_weights()
    assert list(weights) == [town.code for town in TOWNS]
    assert sum(weights.values()) == pytest.approx(53.28)
    for town in TOWNS:
        if town.legal_units_10k is None:
            assert weights[town.code] == pytest.approx(3.40 / 10)
        else:
            assert weights[town.code] == town.legal_units_10k
    assert all(weight > 0 for weight in weights.values())


def test_census_weights_returns_a_fresh_dict() -> None:
    first = census_weights()
    first["441900003"] = 0.0
    assert census_weights()["441900003"] == 3.84
