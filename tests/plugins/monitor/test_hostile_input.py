"""Hostile input, fuzzed: whatever arrives, the monitor lives, answers the next
command, keeps the machine as it was when it refused something, and stays within a
memory bound.  (The cases that once took a monitor down are regression tests
against real QEMU 7.2 in ``tests/conformance/test_processes.py``, ``HOSTILE``.)
"""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from monitor_wire import Wire

import qom
from plugins.monitor import HmpSession, VmControl, qjson
from plugins.monitor.readline import MAX_LINE, Readline
from pyqom.command_line import StartupError, parse_command_line
from pyqom.vm import VM

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
PROBE = b'{"execute":"query-status","id":"probe"}\n'
#: what ends any unfinished input: an impossible byte is a lexical error, which
#: resets QEMU's JSON stream, and the newline ends the lexer's recovery
RESYNC = b"\xff\n"


@pytest.fixture
def control() -> Iterator[VmControl]:
    vm = VM("1G", slots=2, maxmem="4G", autoload=False)
    control = VmControl(vm)
    yield control
    control.close()
    vm.close()


def _negotiated(control: VmControl) -> Wire:
    wire = Wire(control)
    wire.send(b'{"execute":"qmp_capabilities"}\n')
    return wire


def _state(control: VmControl) -> Any:
    return [control.execute(name, arguments) for name, arguments in (
        ("qom-list", {"path": "/objects"}), ("qom-list", {"path": "/machine/peripheral"}),
        ("query-memory-devices", {}), ("query-memdev", {}))]


BYTES = st.binary(max_size=2000) | st.lists(
    st.sampled_from([b"{", b"}", b"[", b"]", b",", b":", b'"', b"'", b"\\", b"1" * 30,
                     b"-", b"e", b".", b"\n", b"\x00", b"\xc3", b"\xff", b"true", b"nul",
                     b'"execute"', b'"query-status"', b"\\u12", b"\\ud800"]),
    max_size=300).map(b"".join)


@SETTINGS
@given(BYTES)
def test_any_bytes_then_the_next_command_is_answered(control: VmControl, data: bytes) -> None:
    wire = _negotiated(control)
    wire.send(data)
    replies = wire.send(RESYNC + PROBE)
    assert replies and replies[-1].endswith('"id": "probe"}\r\n'), replies
    assert all(reply.endswith("\r\n") for reply in replies)


COMMANDS = st.sampled_from(["object-add", "object-del", "device_add", "device_del",
                            "qom-set", "qom-get", "qom-list", "query-memdev", "nosuch"])
SCALARS = (st.none() | st.booleans() | st.integers(-(1 << 70), 1 << 70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12)
           | st.sampled_from(["memory-backend-ram", "pc-dimm", "m1", "d1", "/objects/m1",
                              "size", "1G", "0x100000000", "memdev"]))
ARGUMENTS = st.dictionaries(
    st.sampled_from(["qom-type", "id", "size", "driver", "memdev", "slot", "addr", "node",
                     "path", "property", "value", "share", "x"]),
    st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                 | st.dictionaries(st.text(max_size=3), inner, max_size=3), max_leaves=6),
    max_size=6)


@SETTINGS
@given(st.lists(st.tuples(COMMANDS, ARGUMENTS), min_size=1, max_size=6))
def test_a_refused_command_changes_nothing(control: VmControl,
                                           requests: list[tuple[str, dict[str, Any]]]) -> None:
    wire = _negotiated(control)
    for command, arguments in requests:
        before = _state(control)
        message = json.dumps({"execute": command, "arguments": arguments}).encode()
        (reply,) = wire.send(message + b"\n")
        if reply.startswith('{"error"'):
            assert _state(control) == before, (command, arguments, reply)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from([b'"', b"[", b"{", b"1", b"a"]), st.integers(1, 200_000))
def test_memory_stays_bounded(control: VmControl, opening: bytes, length: int) -> None:
    wire = _negotiated(control)
    body = opening + (b"a" if opening == b'"' else opening) * length
    tracemalloc.start()
    try:
        wire.send(body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * len(body) + (8 << 20)
    assert wire.send(RESYNC + PROBE)[-1].endswith('"id": "probe"}\r\n')


def test_a_growing_token_is_cut_at_the_size_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """QEMU's lexer hands a token over once it passes the limit, and the stream
    refuses it: memory stays bounded by the limit, not by the input."""
    monkeypatch.setattr(qjson, "MAX_TOKEN_SIZE", 1000)
    stream = qjson.JsonStream()
    parsed = stream.feed(b'"' + b"a" * 999)
    assert parsed == []
    parsed = stream.feed(b"a" * 5000)
    assert parsed[0].error == "JSON token size limit exceeded"
    assert stream.feed(b'\xff\n{"x": 1}') [-1].value == {"x": 1}


KEYS = st.lists(st.sampled_from([b"a", b" ", b"\x7f", b"\x08", b"\x01", b"\x05", b"\x04",
                                 b"\x17", b"\x0c", b"\t", b"\x1b", b"[", b"O", b"A", b"B",
                                 b"C", b"D", b"H", b"F", b"1", b"3", b"4", b"~", b"\x9b",
                                 b"\xc3", b"\xa9", b"\r", b"x" * 300]),
                max_size=200).map(b"".join)


@SETTINGS
@given(KEYS)
def test_readline_keeps_its_invariants(keys: bytes) -> None:
    out: list[bytes] = []
    entered: list[str] = []
    line = Readline(out.append, entered.append, lambda text: (["alpha", "alps"], 0))
    line.feed(keys)
    assert 0 <= line.cursor <= len(line.line) <= MAX_LINE
    assert len(line.history) <= 64
    assert sum(map(len, out)) <= len(keys) * (6 * MAX_LINE + 300) + 1


def test_a_long_line_echoes_boundedly_as_in_qemu() -> None:
    """20,000 typed bytes: the line stops at 4,095, so the echo stops growing (QEMU
    echoes about 33 MB for the same keys)."""
    out: list[bytes] = []
    line = Readline(out.append, lambda text: None)
    for _ in range(20_000):
        line.feed(b"a")
    assert len(line.line) == MAX_LINE
    assert sum(map(len, out)) < 40_000_000


@SETTINGS
@given(st.text(max_size=200))
def test_hmp_lines_never_escape_as_exceptions(control: VmControl, text: str) -> None:
    session = HmpSession(control, stderr=lambda message: None)
    session.run_line(text)
    session.take_output()
    assert control.execute("query-status", {})["status"] in ("prelaunch", "running", "paused")


@SETTINGS
@given(st.text(alphabet=st.sampled_from("abcd.=,_-01x9 "), max_size=120))
@example("a.00=")           # found by this test: index "00" is 0, as in keyval
@example("a.0=x,a.00=y")
def test_keyval_refuses_only_in_qemus_words(text: str) -> None:
    try:
        qom.parse_keyval(text, implied_key="qom-type")
    except qom.QomError:
        pass


@SETTINGS
@given(st.lists(st.sampled_from(["-m", "1G", "slots=2", "-object", "-device", "-qmp",
                                 "stdio", "unix:", "tcp:1:2", "-S", "help", "-machine",
                                 "pc,help", "-cpu", "-frobnicate", "memory-backend-ram",
                                 "pc-dimm,help", "id=x,size=1", "-monitor", "none", "-h",
                                 "-version", "?", ""]), max_size=8))
def test_command_lines_refuse_only_in_qemus_words(args: list[str]) -> None:
    vm = VM.empty(autoload=False)
    try:
        parse_command_line(args, lambda text: None, vm.tree.registry)
    except StartupError:
        pass
    finally:
        vm.close()
