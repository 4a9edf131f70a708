"""``-m [size=]megs[,slots=n,maxmem=size]``, as QEMU 7.2 parses and checks it.

Messages and values are QEMU 7.2's (the conformance suite checks the same
command lines against the real binary).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.memory_options import (
    DEFAULT_RAM_SIZE,
    MemoryConfig,
    MemoryOptions,
    fix_up_memory_options,
    machine_set_mem,
    memory_config,
    parse_memory_option,
)
from qom import QomError
from qom.errors import SIZE_SUFFIX_HINT

K, M, G = 1 << 10, 1 << 20, 1 << 30
HEX_WARNING = "Using a multiplier suffix on hex numbers is deprecated: "


def _config(*texts: str) -> MemoryConfig:
    raw: dict[str, str] = {}
    for text in texts:
        raw = parse_memory_option(text, raw)
    return machine_set_mem(fix_up_memory_options(raw))


# -- 1.1 parsing: QemuOpts ----------------------------------------------------


def test_implied_key_is_size_and_keys_are_raw_strings() -> None:
    assert parse_memory_option("1G,slots=3,maxmem=4G") == {
        "size": "1G", "slots": "3", "maxmem": "4G"}
    assert parse_memory_option("size=2G") == {"size": "2G"}


def test_repeated_options_merge_later_key_wins() -> None:
    config = _config("1G,slots=3,maxmem=4G", "2G")
    assert config == MemoryConfig(2 * G, 4 * G, 3)
    assert _config("1G,maxmem=2G,maxmem=3G").maxram_size == 3 * G
    assert _config("2G,size=1G,maxmem=4G").ram_size == G
    assert _config("1G,slots=2,slots=3,maxmem=4G").ram_slots == 3


def test_merge_does_not_change_the_earlier_mapping() -> None:
    first = parse_memory_option("1G,slots=3,maxmem=4G")
    parse_memory_option("2G", first)
    assert first["size"] == "1G"


@pytest.mark.parametrize(("text", "message"), [
    ("1G,foo=1", "Invalid parameter 'foo'"),                                   # row 13
    ("1G,slots=abc,maxmem=2G", "Parameter 'slots' expects a number"),          # row 11
    ("1G,slots=,maxmem=2G", "Parameter 'slots' expects a number"),
    ("1G,slots=99999999999999999999999,maxmem=2G",
     "Value '99999999999999999999999' is too large for parameter 'slots'"),
    ("16E", "Value '16E' is out of range for parameter 'size'"),
    ("1G,maxmem=16E", "Value '16E' is out of range for parameter 'maxmem'"),
])
def test_qemu_opts_errors(text: str, message: str) -> None:
    with pytest.raises(QomError) as info:
        parse_memory_option(text)
    assert str(info.value) == message
    assert info.value.hint is None


@pytest.mark.parametrize("text", ["1GB", "1.5", "size=", "1X", "1e3", "-1", "1Gb", "1G,maxmem=1Q"])
def test_bad_sizes_carry_the_suffix_hint(text: str) -> None:  # rows 12, 71
    with pytest.raises(QomError) as info:
        parse_memory_option(text)
    name = "maxmem" if "maxmem" in text else "size"
    assert str(info.value) == f"Parameter '{name}' expects a non-negative number below 2^64"
    assert info.value.hint == SIZE_SUFFIX_HINT


def test_an_error_in_a_later_option_keeps_nothing_of_it() -> None:
    raw = parse_memory_option("1G")
    with pytest.raises(QomError):
        parse_memory_option("2G,foo=1", raw)
    assert raw == {"size": "1G"}


# -- 1.1 step 3: the legacy MiB rule ------------------------------------------


@pytest.mark.parametrize(("text", "size"), [
    ("1024", G),                  # row 1
    ("0", None),                  # row 2: the default applies
    ("0M", None),
    ("100k", 100 * K),            # row 3 (rounded later)
    ("1.5G", 3 * G // 2),         # row 4
    ("1.5M", 3 * M // 2),
    ("1g", G),
    ("1024B", 1024),
    ("0x400", G),                 # 0x400M, with a warning
])
def test_fix_up(text: str, size: int | None) -> None:
    assert fix_up_memory_options(parse_memory_option(text)).size == size


def test_maxmem_and_slots_have_no_mib_default() -> None:
    options = fix_up_memory_options(parse_memory_option("1G,slots=0x10,maxmem=4096"))
    assert options == MemoryOptions(size=G, slots=16, maxmem=4096)


def test_hex_suffix_warnings_at_both_stages() -> None:
    opts_stage: list[str] = []
    keyval_stage: list[str] = []
    raw = parse_memory_option("0x400", warn=opts_stage.append)
    assert opts_stage == []        # no suffix yet
    fix_up_memory_options(raw, warn=keyval_stage.append)
    assert keyval_stage == [HEX_WARNING + "0x400M"]

    opts_stage.clear()
    keyval_stage.clear()
    raw = parse_memory_option("0x400M,slots=2,maxmem=0x2G", warn=opts_stage.append)
    assert opts_stage == [HEX_WARNING + "0x400M", HEX_WARNING + "0x2G"]
    fix_up_memory_options(raw, warn=keyval_stage.append)
    assert keyval_stage == [HEX_WARNING + "0x400M", HEX_WARNING + "0x2G"]


def test_size_overflowing_after_the_mib_fix_up() -> None:
    raw = parse_memory_option("17592186044416")    # fine as bytes, 2^64 as MiB
    with pytest.raises(QomError) as info:
        fix_up_memory_options(raw)
    assert str(info.value) == "Parameter 'memory.size' expects size"
    assert info.value.hint is None


# -- 1.3 machine_set_mem -----------------------------------------------------


@pytest.mark.parametrize(("texts", "expected"), [
    (("1024",), MemoryConfig(G, G, 0)),
    (("0",), MemoryConfig(DEFAULT_RAM_SIZE, DEFAULT_RAM_SIZE, 0)),
    (("slots=2,maxmem=2G",), MemoryConfig(DEFAULT_RAM_SIZE, 2 * G, 2)),
    (("100k",), MemoryConfig(106496, 106496, 0)),
    (("1k",), MemoryConfig(8192, 8192, 0)),
    (("1.5G",), MemoryConfig(1610612736, 1610612736, 0)),
    (("1G,maxmem=2G",), MemoryConfig(G, 2 * G, 0)),
    (("1G,slots=0,maxmem=1G",), MemoryConfig(G, G, 0)),
    (("1G,maxmem=1G",), MemoryConfig(G, G, 0)),
    (("1G,slots=-1,maxmem=2G",), MemoryConfig(G, 2 * G, (1 << 64) - 1)),
    (("1G,slots=3,maxmem=4294967297",), MemoryConfig(G, 4294967297, 3)),  # fails at board init
])
def test_machine_set_mem(texts: tuple[str, ...], expected: MemoryConfig) -> None:
    assert _config(*texts) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("1G,maxmem=512M", "invalid value of maxmem: maximum memory size (0x20000000) must be"
                       " at least the initial memory size (0x40000000)"),           # row 5
    ("1G,slots=2,maxmem=1G", "invalid value of maxmem: memory slots were specified but"
                             " maximum memory size (0x40000000) is equal to the initial"
                             " memory size (0x40000000)"),                          # row 6
    ("1G,slots=2", "slots specified but no max-size"),                              # row 7
    ("1G,slots=0", "slots specified but no max-size"),
    ("1G,slots=3,maxmem=4096", "invalid value of maxmem: maximum memory size (0x1000) must"
                               " be at least the initial memory size (0x40000000)"),  # row 10
    ("100k,maxmem=100k", "invalid value of maxmem: maximum memory size (0x19000) must be"
                         " at least the initial memory size (0x1a000)"),  # after rounding
])
def test_machine_set_mem_errors(text: str, message: str) -> None:
    with pytest.raises(QomError) as info:
        _config(text)
    assert str(info.value) == message


def test_maxmem_is_checked_before_slots() -> None:
    with pytest.raises(QomError, match="must be at least"):
        _config("1G,slots=2,maxmem=512M")


def test_qom_value_has_slots_and_max_size_only_with_slots() -> None:
    assert _config("1G,maxmem=2G").as_qom() == {"size": G}
    assert _config("1G,slots=3,maxmem=4G").as_qom() == {
        "size": G, "slots": 3, "max-size": 4 * G}


def test_memory_config_keywords() -> None:
    assert memory_config("1G,slots=3,maxmem=4G") == memory_config("1G", slots=3, maxmem="4G")
    assert memory_config("1G", slots=3, maxmem=4 * G) == MemoryConfig(G, 4 * G, 3)
    assert memory_config() == MemoryConfig(DEFAULT_RAM_SIZE, DEFAULT_RAM_SIZE, 0)


def test_an_int_memory_is_bytes_and_text_is_mib() -> None:
    assert memory_config(G, slots=2, maxmem=4 * G) == MemoryConfig(G, 4 * G, 2)
    assert memory_config(512 * M).ram_size == 512 * M
    assert memory_config("1024").ram_size == G


@pytest.mark.parametrize(("text", "keywords"), [
    ("1G,slots=2,maxmem=4G", {"slots": 3}),
    ("1G,slots=2,maxmem=4G", {"slots": 2}),
    ("1G,slots=2,maxmem=4G", {"maxmem": "8G"}),
])
def test_an_option_given_twice_is_an_error(text: str, keywords: dict[str, object]) -> None:
    name = next(iter(keywords))
    with pytest.raises(ValueError, match=f"^{name} is given twice: "):
        memory_config(text, **keywords)  # type: ignore[arg-type]


# -- properties -----------------------------------------------------------------


@given(st.integers(min_value=1, max_value=(1 << 44) - 1))
def test_a_plain_number_means_mib(megs: int) -> None:
    assert _config(str(megs)).ram_size == megs * M


@given(st.integers(min_value=1, max_value=(1 << 50)))
def test_ram_rounds_up_to_8k(size: int) -> None:
    config = machine_set_mem(MemoryOptions(size=size))
    assert config.ram_size % 8192 == 0
    assert 0 <= config.ram_size - size < 8192
    assert config.maxram_size == config.ram_size and config.ram_slots == 0


@given(st.integers(min_value=1, max_value=1 << 40), st.integers(min_value=0, max_value=1 << 41),
       st.integers(min_value=0, max_value=300))
def test_set_mem_accepts_exactly_the_consistent_triples(size: int, maxmem: int,
                                                        slots: int) -> None:
    rounded = -(-size // 8192) * 8192
    options = MemoryOptions(size=size, slots=slots, maxmem=maxmem)
    if maxmem < rounded or (slots and maxmem == rounded):
        with pytest.raises(QomError, match=r"^invalid value of maxmem"):
            machine_set_mem(options)
    else:
        assert machine_set_mem(options) == MemoryConfig(rounded, maxmem, slots)


@given(st.sampled_from("kKmMgGtT"), st.integers(min_value=1, max_value=1000))
def test_suffixes_are_binary_and_case_insensitive(suffix: str, count: int) -> None:
    shift = {"k": 10, "m": 20, "g": 30, "t": 40}[suffix.lower()]
    options = fix_up_memory_options(parse_memory_option(f"1G,maxmem={count}{suffix}"))
    assert options.maxmem == count << shift
