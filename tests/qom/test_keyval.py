"""qom.keyval: keyval (HMP object_add) and QemuOpts (-object, -device) strings."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from qom import ParameterError, QemuOpt, QomError, parse_keyval, parse_qemu_opts

KEYS = st.from_regex(r"[a-z][a-z0-9_-]{0,10}", fullmatch=True)
VALUES = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)


def escape(value: str) -> str:
    return value.replace(",", ",,")


# -- keyval -------------------------------------------------------------------

def test_keyval_implied_key_and_props() -> None:
    assert parse_keyval("memory-backend-ram,id=x,size=1M", "qom-type") == {
        "qom-type": "memory-backend-ram", "id": "x", "size": "1M"}


def test_keyval_qom_type_as_key() -> None:
    assert parse_keyval("qom-type=memory-backend-ram,id=x", "qom-type") == {
        "qom-type": "memory-backend-ram", "id": "x"}


def test_keyval_dotted_keys_make_lists_and_dicts() -> None:
    assert parse_keyval("host-nodes.0=0,host-nodes.1=1") == {"host-nodes": ["0", "1"]}
    assert parse_keyval("a.b=1,a.c=2") == {"a": {"b": "1", "c": "2"}}
    assert parse_keyval("a.1=x,a.0=y") == {"a": ["y", "x"]}


def test_keyval_last_repeated_key_wins() -> None:
    # HMP "dump=on,dump=off" gives dump false
    assert parse_keyval("dump=on,dump=off") == {"dump": "off"}


def test_keyval_comma_escape_and_trailing_comma() -> None:
    assert parse_keyval("mem-path=/tmp/a,,b,share=on,") == {
        "mem-path": "/tmp/a,b", "share": "on"}
    assert parse_keyval("") == {}


def test_keyval_empty_value() -> None:
    assert parse_keyval("id=") == {"id": ""}


@pytest.mark.parametrize(("text", "message"), [
    ("a=1,=2", "Invalid parameter ''"),
    ("_=1", "Invalid parameter '_'"),
    ("0=1", "Invalid parameter '0'"),
    ("1a=1", "Invalid parameter '1a'"),
    ("key.1a.b=1", "Invalid parameter 'key.1a.b'"),
    ("key..b=1", "Invalid parameter 'key..b'"),
    ("a b=1", "Invalid parameter 'a b'"),
    ("a=1,share", "Expected '=' after parameter 'share'"),
    ("a.0=1,a.2=2", "Parameter 'a.1' missing"),
    ("a=1,a.b=2", "Parameter 'a' used inconsistently"),
])
def test_keyval_errors(text: str, message: str) -> None:
    with pytest.raises(QomError) as info:
        parse_keyval(text)
    assert str(info.value) == message


@given(st.dictionaries(KEYS, VALUES, min_size=1, max_size=6))
def test_keyval_round_trip(options: dict[str, str]) -> None:
    text = ",".join(f"{key}={escape(value)}" for key, value in options.items())
    assert parse_keyval(text) == options


@given(VALUES, st.dictionaries(KEYS, VALUES, max_size=4))
@example("a,,b", {})
@example(",", {"x": ","})
def test_keyval_implied_value_round_trip(first: str, rest: dict[str, str]) -> None:
    # An implied first value may hold '=' only if escaping keeps it a value;
    # skip those (QEMU would read "a=b" as a key).
    if "=" in first or not first:
        return
    text = ",".join([escape(first)] + [f"{k}={escape(v)}" for k, v in rest.items()])
    parsed = parse_keyval(text, "qom-type")
    assert parsed.get("qom-type") == rest.get("qom-type", first)


@given(st.text(max_size=40))
@example("a.0=1,a.x=2")
@example("a.b=1,a=2")
@example("=")
def test_keyval_only_raises_qom_errors(text: str) -> None:
    try:
        parse_keyval(text, "qom-type")
    except QomError:
        pass


# -- QemuOpts ----------------------------------------------------------------------

def test_qemu_opts_keep_order_and_repeats() -> None:
    assert parse_qemu_opts("memory-backend-ram,id=m1,share=on,share=off", "qom-type") == [
        QemuOpt("qom-type", "memory-backend-ram"), QemuOpt("id", "m1"),
        QemuOpt("share", "on"), QemuOpt("share", "off")]


def test_qemu_opts_implied_value_may_escape_commas() -> None:
    assert parse_qemu_opts("a,,b,x=1", "path") == [QemuOpt("path", "a,b"), QemuOpt("x", "1")]


def test_qemu_opts_short_form_booleans_warn() -> None:
    warnings: list[str] = []
    opts = parse_qemu_opts("pc-dimm,share,noreserve", "driver", warn=warnings.append)
    assert opts == [QemuOpt("driver", "pc-dimm"), QemuOpt("share", "on"),
                    QemuOpt("reserve", "off")]
    assert warnings == [
        "short-form boolean option 'share' deprecated\nPlease use share=on instead",
        "short-form boolean option 'noreserve' deprecated\nPlease use reserve=off instead",
    ]


def test_qemu_opts_help_does_not_warn() -> None:
    warnings: list[str] = []
    assert parse_qemu_opts("x=1,help", warn=warnings.append) == [
        QemuOpt("x", "1"), QemuOpt("help", "on")]
    assert warnings == []


@given(st.lists(st.tuples(KEYS, VALUES), min_size=1, max_size=6))
def test_qemu_opts_round_trip(pairs: list[tuple[str, str]]) -> None:
    text = ",".join(f"{key}={escape(value)}" for key, value in pairs)
    assert parse_qemu_opts(text) == [QemuOpt(k, v) for k, v in pairs]


@given(st.text(max_size=40))
def test_qemu_opts_never_raise(text: str) -> None:
    try:
        opts = parse_qemu_opts(text, "driver")
    except ParameterError:
        return
    assert all(isinstance(opt, QemuOpt) for opt in opts)
