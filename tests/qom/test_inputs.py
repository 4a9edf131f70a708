"""qom.inputs: the three visitors and their exact QEMU 7.2 messages."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qom import (
    BOOL,
    INT32,
    JSON,
    KEYVAL,
    OPTS,
    SIZE,
    STR,
    UINT16,
    UINT32,
    UINT64,
    EnumKind,
    ListKind,
    ParameterError,
)
from qom.numbers import U64_MAX

POLICY = EnumKind("HostMemPolicy", ("default", "preferred", "bind", "interleave"))
HOST_NODES = ListKind(UINT16)


def message(kind, source, name, raw) -> str:
    with pytest.raises(ParameterError) as info:
        kind.read(source, name, raw)
    return str(info.value)


# -- JSON (QMP object-add, qom-set) --------------------------------------------

@pytest.mark.parametrize(("kind", "name", "raw", "expected"), [
    (SIZE, "size", "1G", "Parameter 'size' expects uint64"),
    (SIZE, "size", 1.5, "Parameter 'size' expects uint64"),
    (SIZE, "size", 1 << 64, "Parameter 'size' expects uint64"),
    (SIZE, "size", True, "Parameter 'size' expects uint64"),
    (BOOL, "dump", "yes", "Invalid parameter type for 'dump', expected: boolean"),
    (BOOL, "dump", 1, "Invalid parameter type for 'dump', expected: boolean"),
    (BOOL, "merge", "off", "Invalid parameter type for 'merge', expected: boolean"),
    (UINT32, "prealloc-threads", -1, "Parameter 'prealloc-threads' expects uint32_t"),
    (UINT32, "prealloc-threads", "2", "Parameter 'prealloc-threads' expects uint64"),
    (POLICY, "policy", "nosuch", "Parameter 'policy' does not accept value 'nosuch'"),
    (POLICY, "policy", 1, "Invalid parameter type for 'policy', expected: string"),
    (HOST_NODES, "host-nodes", 0, "Invalid parameter type for 'host-nodes', expected: array"),
    (HOST_NODES, "host-nodes", ["a"], "Parameter 'host-nodes[0]' expects uint64"),
    (HOST_NODES, "host-nodes", [0, "a"], "Parameter 'host-nodes[1]' expects uint64"),
    # the range check of a list element has no name in QEMU (sic)
    (HOST_NODES, "host-nodes", [-1], "Parameter 'null' expects uint16_t"),
    (HOST_NODES, "host-nodes", [65536], "Parameter 'null' expects uint16_t"),
    (STR, "mem-path", 5, "Invalid parameter type for 'mem-path', expected: string"),
    (STR, "id", 5, "Invalid parameter type for 'id', expected: string"),
    (INT32, "slot", "1", "Invalid parameter type for 'slot', expected: integer"),
    (INT32, "slot", [1], "Invalid parameter type for 'slot', expected: integer"),
    (INT32, "slot", 1 << 40, "Parameter 'slot' expects int32_t"),
])
def test_json_messages(kind, name, raw, expected) -> None:
    assert message(kind, JSON, name, raw) == expected


def test_json_accepts() -> None:
    assert SIZE.read(JSON, "size", 1048576) == 1048576
    assert SIZE.read(JSON, "size", 4097) == 4097
    assert BOOL.read(JSON, "dump", False) is False
    assert HOST_NODES.read(JSON, "host-nodes", [0, 1]) == [0, 1]
    assert POLICY.read(JSON, "policy", "bind") == "bind"
    assert INT32.read(JSON, "slot", -1) == -1


@given(st.integers(-(1 << 63), -1))
def test_json_uint64_wraps_negatives(number: int) -> None:
    # "Need to accept negative values for backward compatibility"
    assert UINT64.read(JSON, "addr", number) == number + (1 << 64)
    assert SIZE.read(JSON, "size", number) == number + (1 << 64)


@given(st.integers(-(1 << 63), U64_MAX))
def test_json_uint32_range(number: int) -> None:
    wrapped = number % (1 << 64)
    if wrapped <= 0xFFFFFFFF:
        assert UINT32.read(JSON, "node", number) == wrapped
    else:
        assert message(UINT32, JSON, "node", number) == "Parameter 'node' expects uint32_t"


# -- KEYVAL (HMP object_add, device_add through QemuOpts) -----------------------

@pytest.mark.parametrize(("kind", "name", "raw", "expected"), [
    (SIZE, "size", "1Q", "Parameter 'size' expects size"),
    (SIZE, "size", "-1", "Parameter 'size' expects size"),
    (BOOL, "dump", "maybe", "Parameter 'dump' expects 'on' or 'off'"),
    (BOOL, "merge", "1", "Parameter 'merge' expects 'on' or 'off'"),
    (UINT32, "prealloc-threads", "x", "Parameter 'prealloc-threads' expects integer"),
    (UINT32, "prealloc-threads", "-1", "Parameter 'prealloc-threads' expects uint32_t"),
    (UINT32, "node", "-1", "Parameter 'node' expects uint32_t"),
    (INT32, "slot", "abc", "Parameter 'slot' expects integer"),
    (INT32, "slot", "1.5", "Parameter 'slot' expects integer"),
    (UINT64, "addr", "5G", "Parameter 'addr' expects integer"),
    (POLICY, "policy", "nosuch", "Parameter 'policy' does not accept value 'nosuch'"),
    (HOST_NODES, "host-nodes", "0", "Invalid parameter type for 'host-nodes', expected: array"),
    (HOST_NODES, "host-nodes", ["a"], "Parameter 'host-nodes[0]' expects integer"),
    (HOST_NODES, "host-nodes", ["-1"], "Parameter 'null' expects uint16_t"),
])
def test_keyval_messages(kind, name, raw, expected) -> None:
    assert message(kind, KEYVAL, name, raw) == expected


@pytest.mark.parametrize(("kind", "raw", "value"), [
    (SIZE, "1.5M", 1572864), (SIZE, "0x100000", 1048576), (SIZE, "1k", 1024),
    (BOOL, "on", True), (BOOL, "yes", True), (BOOL, "y", True), (BOOL, "true", True),
    (BOOL, "off", False), (BOOL, "no", False), (BOOL, "n", False), (BOOL, "false", False),
    (UINT64, "010000000000", 0x40000000), (UINT64, "0x100", 256), (UINT64, "-1", U64_MAX),
    (INT32, "-1", -1), (HOST_NODES, ["0", "1"], [0, 1]),
])
def test_keyval_accepts(kind, raw, value) -> None:
    assert kind.read(KEYVAL, "x", raw) == value


@pytest.mark.parametrize("word", ["ON", "On", "TRUE", "1", "0", "", "yes "])
def test_bool_words_are_exact(word: str) -> None:
    assert message(BOOL, KEYVAL, "share", word) == "Parameter 'share' expects 'on' or 'off'"


# -- OPTS (the command line's -object) -----------------------------------------

@pytest.mark.parametrize(("kind", "name", "raw", "expected"), [
    (SIZE, "size", "1Q", "Parameter 'size' expects a size value"),
    (UINT32, "prealloc-threads", "x", "Parameter 'prealloc-threads' expects a uint64 value"),
    (UINT32, "prealloc-threads", "-1",
     "Parameter 'prealloc-threads' expects a uint64 value"),
    (BOOL, "dump", "maybe", "Parameter 'dump' expects 'on' or 'off'"),
    (POLICY, "policy", "nosuch", "Parameter 'policy' does not accept value 'nosuch'"),
])
def test_opts_messages(kind, name, raw, expected) -> None:
    assert message(kind, OPTS, name, raw) == expected


def test_opts_lists_are_plain_values_and_ranges() -> None:
    assert HOST_NODES.read(OPTS, "host-nodes", "0") == [0]
    assert HOST_NODES.read(OPTS, "host-nodes", ["0", "2-4"]) == [0, 2, 3, 4]
    assert SIZE.read(OPTS, "size", "1.5M") == 1572864


def test_unexpected_and_missing_wording() -> None:
    assert str(JSON.unexpected("foo")) == "Parameter 'foo' is unexpected"
    assert str(KEYVAL.unexpected("foo")) == "Parameter 'foo' is unexpected"
    assert str(OPTS.unexpected("foo")) == "Invalid parameter 'foo'"
    for source in (JSON, KEYVAL, OPTS):
        assert str(source.missing("size")) == "Parameter 'size' is missing"


@given(st.text(), st.sampled_from([SIZE, UINT16, UINT32, UINT64, INT32, BOOL, POLICY]),
       st.sampled_from([KEYVAL, OPTS]))
def test_string_inputs_only_raise_parameter_error(text, kind, source) -> None:
    try:
        kind.read(source, "p", text)
    except ParameterError as err:
        assert str(err).startswith(("Parameter 'p' ", "Invalid parameter"))
