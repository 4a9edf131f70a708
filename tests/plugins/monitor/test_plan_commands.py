"""The plan commands on the monitors (pyqom additions): QMP ``x-plan-plug`` and
``x-query-memory-capacity``, HMP ``x_plan_plug`` and ``info x-memory-capacity``."""

from __future__ import annotations

from typing import Any

import pytest

import qom
from plugins.monitor import HmpSession, VmControl

M, G = 1 << 20, 1 << 30


def _hmp(control: VmControl, line: str) -> str:
    session = HmpSession(control, hosted=True)
    session.run_line(line)
    return session.take_output()


def _requests(*steps: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {"requests": [{"execute": command, "arguments": arguments}
                         for command, arguments in steps]}


BACKEND = ("object-add", {"qom-type": "memory-backend-ram", "id": "m1", "size": G})
DIMM = ("device_add", {"driver": "pc-dimm", "id": "d1", "memdev": "m1"})


def test_qmp_plan_then_the_plug(control: VmControl) -> None:
    plan = control.execute("x-plan-plug", _requests(BACKEND, DIMM))
    assert plan["fits"] is True
    assert plan["objects"] == [{"id": "m1", "qom-type": "memory-backend-ram", "size": G,
                                "align": 2 * M}]
    assert plan["devices"] == [{"id": "d1", "driver": "pc-dimm", "slot": 0, "addr": 4 * G,
                                "size": G, "align": 2 * M, "padding": 0}]
    assert control.execute("query-memory-devices") == []
    assert control.execute("query-memdev")[0]["id"] == "pc.ram"
    assert len(control.execute("query-memdev")) == 1
    control.execute("object-add", BACKEND[1])
    control.execute("device_add", DIMM[1])
    (info,) = control.execute("query-memory-devices")
    assert (info["data"]["slot"], info["data"]["addr"]) == (0, 4 * G)


def test_qmp_plan_of_a_refusal(control: VmControl) -> None:
    plan = control.execute("x-plan-plug", _requests(
        BACKEND, ("device_add", {"driver": "pc-dimm", "memdev": "m1", "slot": 7})))
    assert (plan["fits"], plan["failed"]) == (False, 1)
    assert plan["error"] == {"class": "GenericError",
                             "desc": "invalid slot number 7, valid range is [0-2]"}


@pytest.mark.parametrize(("arguments", "expected"), [
    ({}, "Parameter 'requests' is missing"),
    ({"requests": {}}, "Invalid parameter type for 'requests', expected: array"),
    ({"requests": [{"arguments": {}}]}, "Parameter 'requests[0].execute' is missing"),
    ({"requests": [{"execute": "quit"}]},
     "x-plan-plug: 'quit' cannot be planned, only object-add and device_add"),
])
def test_qmp_plan_argument_errors(control: VmControl, arguments: dict[str, Any],
                                  expected: str) -> None:
    with pytest.raises(qom.QomError) as err:
        control.execute("x-plan-plug", arguments)
    assert str(err.value) == expected


def test_qmp_capacity(control: VmControl) -> None:
    capacity = control.execute("x-query-memory-capacity", {"alignments": [G]})
    assert capacity == {
        "slots": 3, "free-slots": 3, "maxmem-free": 3 * G,
        "device-memory-base": 4 * G, "device-memory-size": 6 * G,
        "free-ranges": [{"addr": 4 * G, "size": 6 * G}], "fragmentation": 0,
        "largest-dimm": [{"align": G, "size": 3 * G}], "phys-bits-limit": (1 << 40) - 1}
    with pytest.raises(qom.QomError, match="alignment 3 is not a power of two"):
        control.execute("x-query-memory-capacity", {"alignments": [3]})
    with pytest.raises(qom.QomError, match=r"'alignments\[0\]', expected: integer"):
        control.execute("x-query-memory-capacity", {"alignments": ["1G"]})


def test_hmp_plan(control: VmControl) -> None:
    out = _hmp(control, "x_plan_plug object_add memory-backend-ram,id=m1,size=3G "
                        "device_add pc-dimm,id=d1,memdev=m1 "
                        "object_add memory-backend-ram,id=m2,size=1G "
                        "device_add pc-dimm,id=d2,memdev=m2")
    assert out == (
        "d1: slot 0, addr 0x100000000, size 0xc0000000, align 0x200000, padding 0x0\r\n"
        "request 4 would fail: not enough space, currently 0xc0000000 in use of total "
        "space for memory devices 0xc0000000\r\n"
        "slots left: 2, maxmem left: 0x0\r\n"
        "highest address: 0x1bfffffff, phys-bits limit: 0xffffffffff\r\n")
    assert _hmp(control, "info memory-devices") == ""
    assert _hmp(control, "x_plan_plug object_del m1") == (
        "Error: x_plan_plug: 'object_del' cannot be planned, only object_add and device_add\r\n")
    assert _hmp(control, "x_plan_plug device_add") == (
        "Error: x_plan_plug: expected object_add or device_add, each with its arguments\r\n")


def test_hmp_capacity(control: VmControl) -> None:
    assert _hmp(control, "object_add memory-backend-ram,id=h1,size=1G") == ""
    assert _hmp(control, "device_add pc-dimm,id=dimm1,memdev=h1,addr=0x140000000") == ""
    assert _hmp(control, "info x-memory-capacity") == (
        "device memory: 0x100000000, size 0x180000000\r\n"
        "slots left: 2, maxmem left: 0x80000000\r\n"
        "highest address: 0x17fffffff, phys-bits limit: 0xffffffffff\r\n"
        "free: 0x100000000-0x13fffffff (0x40000000)\r\n"
        "free: 0x180000000-0x27fffffff (0x100000000)\r\n"
        "fragmentation: 20%\r\n"
        "largest DIMM, align 0x1000: 0x80000000\r\n"
        "largest DIMM, align 0x200000: 0x80000000\r\n"
        "largest DIMM, align 0x40000000: 0x80000000\r\n")
