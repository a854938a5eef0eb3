"""Tests for unified social credit code normalisation and synthetic Dongguan codes."""

import random

import pytest
from stdnum.cn import uscc
from stdnum.exceptions import ValidationError as StdnumError

from shared.vocab.credit_code import (
    CODE_CHARACTERS,
    InvalidCreditCode,
    make_credit_code,
    make_dongguan_credit_code,
    normalize_credit_code,
)

# The first is the python-stdnum docstring example; the second a public example code.
VALID = ["91110000600037341L", "91350100M000100Y43"]


@pytest.mark.parametrize("code", VALID)
def test_known_valid_codes(code: str) -> None:
    assert normalize_credit_code(code) == code


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("91110000600037341l", "91110000600037341L"),
        (" 9111 0000 6000 3734 1L ", "91110000600037341L"),
        ("911100-00600-037341L", "91110000600037341L"),
        ("91350100m000100y43", "91350100M000100Y43"),
        ("\t91350100M000100Y43\n", "91350100M000100Y43"),
        ("９１３５０１００Ｍ０００１００Ｙ４３", "91350100M000100Y43"),  # full-width input
        ("91350100M000100Y43\u3000", "91350100M000100Y43"),  # ideographic space
    ],
)
def test_normalisation(raw: str, expected: str) -> None:
    assert normalize_credit_code(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "must be 18 characters, got 0"),
        ("9111000060003734", "must be 18 characters, got 16"),
        ("91110000600037341L0", "must be 18 characters, got 19"),
        ("91110000600037341M", "check character is wrong: 'M', expected 'L'"),
        ("91350100M000100Y44", "check character is wrong"),
        ("A1110000600037341L", "characters 1-8 .* must be digits"),
        ("Y1110000600037341L", "characters 1-8 .* must be digits"),
        ("91110000600O37341L", "outside the GB 32100 set: 'O'"),
        ("91110000I00037341L", "outside the GB 32100 set: 'I'"),
        ("91110000S00V37341Z", "outside the GB 32100 set: 'SVZ'"),
        ("91110000600037341*", "outside the GB 32100 set"),
    ],
)
def test_invalid_codes_say_what_is_wrong(raw: str, message: str) -> None:
    with pytest.raises(InvalidCreditCode, match=message):
        normalize_credit_code(raw)


def test_invalid_credit_code_is_a_value_error() -> None:
    assert issubclass(InvalidCreditCode, ValueError)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("91110000600037341", "91110000600037341L"),
        ("91110000600037341X", "91110000600037341L"),
        ("91350100m000100y4", "91350100M000100Y43"),
    ],
)
def test_make_credit_code_appends_the_check_character(body: str, expected: str) -> None:
    assert make_credit_code(body) == expected


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("9111000060003734", "at least 17 characters, got 16"),
        ("91110000600O3734I", "outside the GB 32100 set: 'IO'"),
        ("Y1110000600037341", "must be digits"),
    ],
)
def test_make_credit_code_rejects_bad_bodies(body: str, message: str) -> None:
    with pytest.raises(InvalidCreditCode, match=message):
        make_credit_code(body)


def test_dongguan_codes_are_valid_unique_and_well_formed() -> None:
    codes = [make_dongguan_credit_code(seq) for seq in range(100_000)]
    assert len(set(codes)) == len(codes)
    for code in codes:
        assert uscc.is_valid(code)
        assert code.startswith("91441900")
        assert set(code) <= set(CODE_CHARACTERS)
    assert normalize_credit_code(codes[0]) == codes[0]


def test_dongguan_codes_are_deterministic() -> None:
    assert make_dongguan_credit_code(42) == make_dongguan_credit_code(42)


@pytest.mark.parametrize("seq", [0, 1, 9_999_999, 31**9 - 1])
def test_dongguan_codes_at_range_edges(seq: int) -> None:
    assert uscc.is_valid(make_dongguan_credit_code(seq))


def test_dongguan_codes_differ_across_a_sample_of_the_first_ten_million() -> None:
    # The mapping is a bijection; a stride through range(10**7) checks no wrap-around collides.
    seqs = range(0, 10**7, 997)
    assert len({make_dongguan_credit_code(seq) for seq in seqs}) == len(seqs)


@pytest.mark.parametrize(
    ("kind", "prefix"), [("91", "91441900"), ("92", "92441900"), ("93", "93441900")]
)
def test_dongguan_code_kinds(kind: str, prefix: str) -> None:
    code = make_dongguan_credit_code(7, kind)
    assert code.startswith(prefix)
    # Only the kind differs between entity types; the organisation code is the same.
    assert code[8:17] == make_dongguan_credit_code(7)[8:17]


@pytest.mark.parametrize("kind", ["9", "911", "Y1", "9A", "", "９１"])
def test_dongguan_code_rejects_bad_kinds(kind: str) -> None:
    with pytest.raises(ValueError, match="kind must be two digits"):
        make_dongguan_credit_code(1, kind)


@pytest.mark.parametrize("seq", [-1, 31**9])
def test_dongguan_code_rejects_out_of_range_seq(seq: int) -> None:
    with pytest.raises(ValueError, match="seq must be in"):
        make_dongguan_credit_code(seq)


def test_the_canonical_fast_path_agrees_with_stdnum() -> None:
    """Canonical codes skip the clean-up passes: the verdict must stay stdnum's, for valid
    codes and for each one-character change of them (check character, letters I/O/S/V/Z,
    lower case, a letter among the first eight)."""
    rng = random.Random(16)
    probes = []
    for seq in range(300):
        code = make_dongguan_credit_code(seq, rng.choice(["91", "92", "93"]))
        position = rng.randrange(18)
        replacement = rng.choice("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZa")
        probes += [code, code[:position] + replacement + code[position + 1 :]]
    for probe in probes:
        try:
            expected: str | None = str(uscc.validate(probe))
        except StdnumError:
            expected = None
        try:
            got: str | None = normalize_credit_code(probe)
        except InvalidCreditCode:
            got = None
        assert got == expected, probe
