"""qom.numbers: qemu_strtosz / qemu_strtou64 / qemu_strtoi64 semantics."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from qom import NumberFormatError, parse_i64, parse_size, parse_u64
from qom.numbers import I64_MAX, I64_MIN, U64_MAX, size_has_suffix

SUFFIXES = {"": 0, "B": 0, "K": 1, "M": 2, "G": 3, "T": 4, "P": 5, "E": 6}


# -- parse_size: examples QEMU 7.2 was seen to accept or refuse ----------------

@pytest.mark.parametrize(("text", "value"), [
    ("1048576", 1048576),          # HMP size=1048576
    ("1k", 1024),                  # HMP size=1k
    ("1K", 1024),
    ("1.5M", 1572864),             # HMP / CLI size=1.5M
    ("0x100000", 1048576),         # HMP size=0x100000
    ("1.5G", 1610612736),          # -m 1.5G
    ("1G", 1 << 30),
    ("0", 0),
    ("1b", 1),
    ("16E", None),                 # 2**64: out of range
    ("15E", 15 << 60),
    ("1.k", 1024),                 # QEMU steps over a lone '.'
    ("+1k", 1024),                 # strtoull takes a '+' sign
    (" 1k", 1024),                 # ... and leading white space
    ("0.5", None),                 # a fraction needs a scaling suffix
    ("1.5e3", None),               # an exponent invalidates the whole size
    ("1.5e", 1.5 * (1 << 60)),     # ... but a bare 'e' is the exabyte suffix
    ("1Q", None),                  # size=1Q
    ("-1", None),                  # size=-1
    ("-0", None),
    ("1GB", None),                 # -m 1GB
    ("1.5", None),                 # -m 1.5
    ("", None),
    ("k", None),
    ("0x", None),
    ("0x1.8M", None),              # no fraction on hex
    ("18446744073709551615", U64_MAX),
    ("18446744073709551616", None),
])
def test_parse_size_examples(text: str, value: float | None) -> None:
    if value is None:
        with pytest.raises(NumberFormatError):
            parse_size(text)
    else:
        assert parse_size(text) == int(value)


def test_parse_size_out_of_range_is_flagged() -> None:
    with pytest.raises(NumberFormatError) as info:
        parse_size("16E")
    assert info.value.out_of_range
    with pytest.raises(NumberFormatError) as info:
        parse_size("1Q")
    assert not info.value.out_of_range


def test_parse_size_hex_suffix_warns_like_72() -> None:
    warnings: list[str] = []
    assert parse_size("0x400M", warn=warnings.append) == 0x400 << 20
    assert warnings == ["Using a multiplier suffix on hex numbers is deprecated: 0x400M"]


def test_parse_size_default_suffix_mib() -> None:
    assert parse_size("1024", default_suffix="M") == 1 << 30
    assert parse_size("1G", default_suffix="M") == 1 << 30
    assert parse_size("4096B", default_suffix="M") == 4096


def test_parse_size_fraction_is_a_c_double() -> None:
    # QEMU stores the fraction as (uint64_t)(strtod(...) * 2**64), so 0.1 is the
    # double nearest 0.1, not the real number: 0.1E rounds to ...704.
    assert parse_size("0.1E") == 115292150460684704
    assert parse_size("0.5K") == 512
    assert parse_size("0.0004882812K") == 0  # 0.49999.. bytes rounds down
    assert parse_size("0.00048828125K") == 1  # exactly .5 rounds up


def test_size_has_suffix() -> None:
    assert size_has_suffix("1G")
    assert not size_has_suffix("1024")


@given(st.integers(0, U64_MAX), st.sampled_from(sorted(SUFFIXES)), st.booleans())
@example(1, "E", False)
def test_parse_size_round_trip(number: int, suffix: str, lower: bool) -> None:
    text = f"{number}{suffix.lower() if lower else suffix}"
    value = number * 1024 ** SUFFIXES[suffix]
    if value > U64_MAX:
        with pytest.raises(NumberFormatError) as info:
            parse_size(text)
        assert info.value.out_of_range
    else:
        assert parse_size(text) == value


@given(st.integers(0, U64_MAX))
def test_parse_size_hex_round_trip(number: int) -> None:
    assert parse_size(hex(number)) == number
    assert parse_size(hex(number).upper().replace("0X", "0x")) == number


@given(st.integers(0, 1 << 20), st.integers(0, 999), st.sampled_from("KMGT"))
def test_parse_size_decimal_fraction(whole: int, thousandths: int, suffix: str) -> None:
    text = f"{whole}.{thousandths:03d}{suffix}"
    unit = 1024 ** SUFFIXES[suffix]
    exact = whole * unit + Fraction(thousandths * unit, 1000)
    # the fraction goes through a C double: at most one ulp of 2**-52 off
    assert abs(parse_size(text) - exact) <= 1 + Fraction(unit, 1 << 52)


@given(st.text())
@example("1.5e3K")
@example("0x-1")
@example("\u0661")
def test_parse_size_only_raises_number_format_error(text: str) -> None:
    try:
        value = parse_size(text)
    except NumberFormatError:
        return
    assert 0 <= value <= U64_MAX


# -- parse_u64 / parse_i64 ------------------------------------------------------

@pytest.mark.parametrize(("text", "value"), [
    ("0", 0),
    ("010000000000", 0x40000000),   # addr=010000000000 is octal
    ("0x100", 256),
    ("4429185024", 4429185024),
    ("-1", U64_MAX),                # strtoull wraps a negative
    (" 7", 7),
    ("+7", 7),
])
def test_parse_u64_examples(text: str, value: int) -> None:
    assert parse_u64(text) == value


@pytest.mark.parametrize("text", ["", "5G", "1.5", "abc", "08", "0x", "1 ", "- 1",
                                  "18446744073709551616", "-18446744073709551616"])
def test_parse_u64_rejects(text: str) -> None:
    with pytest.raises(NumberFormatError):
        parse_u64(text)


@pytest.mark.parametrize(("text", "value"), [
    ("-1", -1), ("-9223372036854775808", I64_MIN), ("0x7fffffffffffffff", I64_MAX),
    ("017", 15), ("-0x10", -16)])
def test_parse_i64_accepts(text: str, value: int) -> None:
    assert parse_i64(text) == value


@pytest.mark.parametrize("text", ["9223372036854775808", "-9223372036854775809"])
def test_parse_i64_out_of_range(text: str) -> None:
    with pytest.raises(NumberFormatError) as info:
        parse_i64(text)
    assert info.value.out_of_range


@given(st.integers(-U64_MAX, U64_MAX))
def test_parse_u64_round_trip_wraps_negatives(number: int) -> None:
    assert parse_u64(str(number)) == number % (1 << 64)
    if number >= 0:
        assert parse_u64(hex(number)) == number
        assert parse_u64("0" + oct(number)[2:]) == number


@given(st.integers(I64_MIN, I64_MAX))
def test_parse_i64_round_trip(number: int) -> None:
    assert parse_i64(str(number)) == number
    sign = "-" if number < 0 else ""
    assert parse_i64(f"{sign}{hex(abs(number))}") == number


@given(st.integers(I64_MAX + 1, 1 << 70))
def test_parse_i64_too_big(number: int) -> None:
    with pytest.raises(NumberFormatError):
        parse_i64(str(number))
    with pytest.raises(NumberFormatError):
        parse_i64(str(-number - 1))


@given(st.text(), st.sampled_from([0, 8, 10, 16]))
def test_parse_ints_only_raise_number_format_error(text: str, base: int) -> None:
    for parse, low, high in ((parse_u64, 0, U64_MAX), (parse_i64, I64_MIN, I64_MAX)):
        try:
            value = parse(text, base)
        except NumberFormatError:
            continue
        assert low <= value <= high
