"""Thousands of malformed inputs: the parser and dispatcher answer each, never crash."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plugins.monitor import QmpSession, VmControl, qjson

# Strings QEMU can carry: no surrogates, no noncharacters (those print as U+FFFD).
_qemu_chars = st.characters(exclude_categories=("Cs",)).filter(
    lambda c: not (0xFDD0 <= ord(c) <= 0xFDEF or (ord(c) & 0xFFFE) == 0xFFFE))
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(_qemu_chars, max_size=8),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(_qemu_chars, max_size=6), inner, max_size=4),
    max_leaves=12)
_fragments = st.sampled_from([b"{", b"}", b"[", b"]", b",", b":", b'"', b"'", b"\\", b"\n",
                              b'"execute"', b'"qmp_capabilities"', b'"query-status"', b"1",
                              b"-", b".", b"e", b"null", b"\xff", b"\xc3", b"\x00", b" "])


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.binary(max_size=20) | _fragments, max_size=30))
def test_stream_never_crashes(chunks: list[bytes]) -> None:
    stream = qjson.JsonStream()
    for chunk in chunks:
        for parsed in stream.feed(chunk):
            assert (parsed.error is None) or parsed.error.startswith("JSON ")
            qjson.to_json({"error": parsed.error, "value": parsed.value})


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.fixed_dictionaries({}, optional={
    "execute": st.sampled_from(["query-status", "qom-get", "qom-set", "object-del",
                                "device_add", "object-add", "device_del", "qom-list",
                                "human-monitor-command", "nosuch"]) | _json_values,
    "arguments": _json_values, "id": _json_values, "extra": _json_values}) | _json_values,
    max_size=8))
def test_dispatcher_answers_every_request(control: VmControl, requests: list) -> None:
    out: list[bytes] = []
    session = QmpSession(control, out.append)
    session.feed(b'{"execute": "qmp_capabilities"}')
    for request in requests:
        out.clear()
        session.feed(json.dumps(request).encode() + b"\n")
        if control.quit_requested:
            break
        assert out, request
        reply = qjson.parse_one(out[-1])
        assert "return" in reply or reply["error"]["class"] in (
            "GenericError", "CommandNotFound", "DeviceNotFound")
    # The machine is still consistent and answering.
    assert QmpSession(control, out.append).handle({"execute": "query-memdev"})


def test_round_trip_of_writer_and_parser() -> None:
    @settings(max_examples=1000, deadline=None)
    @given(_json_values)
    def check(value: object) -> None:
        assert qjson.parse_one(qjson.to_json(value)) == value

    check()


def test_noncharacters_and_surrogates_are_written_as_replacement_characters() -> None:
    assert qjson.to_json("a\ufdd0b\uffff\udc80") == '"a\\uFFFDb\\uFFFD\\uFFFD"'
