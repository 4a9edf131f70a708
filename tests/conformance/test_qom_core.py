"""The object model against real QEMU 7.2: the same QMP steps, the same answers.

Each step runs on a paused QEMU and on pyqom's QMP session with the same
machine, in order (state carries over between steps on both sides), and the
replies must be equal: the same return value, or the same error class and
message.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pyqom_side import PyqomQmp, normalise

from plugins.monitor import VmControl
from pyqom.vm import VM

MIB = 1 << 20
RAM = "memory-backend-ram"


def _add(**arguments: Any) -> tuple[str, dict[str, Any]]:
    return ("object-add", {"qom-type": RAM, **arguments})


STEPS: list[tuple[str, dict[str, Any]]] = [
    _add(id="x", size="1G"),
    _add(id="x", size=1.5),
    _add(id="x", size=MIB, dump="yes"),
    _add(id="x", size=MIB, dump=1),
    _add(id="x", size=MIB, share="on"),
    _add(id="x", size=MIB, **{"prealloc-threads": 0}),
    _add(id="x", size=MIB, **{"prealloc-threads": -1}),
    _add(id="x", size=MIB, **{"prealloc-threads": "2"}),
    _add(id="x", size=MIB, policy="nosuch"),
    _add(id="x", size=MIB, policy=1),
    _add(id="x", size=MIB, policy="bind"),
    _add(id="x", size=MIB, **{"host-nodes": 0}),
    _add(id="x", size=MIB, **{"host-nodes": [200]}),
    _add(id="x", size=MIB, **{"host-nodes": [0]}),
    _add(id="x", size=MIB, **{"host-nodes": []}, policy="bind"),
    _add(id="x", size=MIB, **{"host-nodes": ["a"]}),
    _add(id="x", size=MIB, **{"host-nodes": [-1]}, policy="bind"),
    _add(id="x", size=MIB, foo=1),
    _add(size=MIB),
    _add(id="", size=MIB),
    _add(id="1m", size=MIB),
    _add(id="a b", size=MIB),
    _add(id="m/1", size=MIB),
    _add(id=5, size=MIB),
    ("object-add", {"id": "x", "size": MIB}),
    ("object-add", {"qom-type": "nosuch", "id": "x", "size": MIB}),
    ("object-add", {"qom-type": "memory-backend", "id": "x", "size": MIB}),
    ("object-add", {"qom-type": "object", "id": "x"}),
    ("object-add", {"qom-type": "container", "id": "x"}),
    ("object-add", {"qom-type": "user-creatable", "id": "x"}),
    ("object-add", {"qom-type": "pc-dimm", "id": "x", "size": MIB}),
    ("object-add", {"qom-type": "memory-backend-file", "id": "x", "size": MIB, "mem-path": 5}),
    ("object-add", {"qom-type": "memory-backend-file", "id": "x", "size": MIB}),
    ("object-add", {"qom-type": "memory-backend-file", "id": "x", "size": MIB,
                    "mem-path": "/nonexistent/dir/f"}),
    _add(id="x", props={"size": MIB}),
    _add(id="x", props={}, size=MIB),
    _add(id="x"),
    _add(id="x", size=0),
    _add(id="m.1-_x", size=MIB),
    ("object-del", {"id": "m.1-_x"}),
    _add(id="m1", size=2 * MIB),
    _add(id="m1", size=MIB),
    ("object-add", {"qom-type": "memory-backend-file", "id": "m1", "size": MIB,
                    "mem-path": "/tmp"}),
    # error precedence
    _add(id="1m", size="1G"),
    _add(id="1m", foo=1, size=MIB),
    _add(id="m1", size=MIB, policy="bind"),
    _add(id="m1", size=0),
    _add(id="1m", size=0),
    _add(id="m1", size="1G"),
    _add(id="x", size=MIB, dump="yes", share="on"),
    _add(id="x", size=MIB, share="on", dump="yes"),
    _add(id="x", size="1G", foo=1),
    _add(id="x", foo=1),
    _add(id="x", size=0, policy="bind"),
    _add(id="x", size=MIB, policy="bind", **{"prealloc-threads": 0}),
    ("object-add", {"qom-type": "nosuch", "id": "1m"}),
    ("object-add", {"qom-type": "nosuch", "id": "m1"}),
    _add(size=MIB, foo=1),
    _add(id="x", size=1),
    ("qom-get", {"path": "/objects/x", "property": "size"}),
    ("object-del", {"id": "x"}),
    _add(id="x", size=4097),
    ("qom-get", {"path": "x", "property": "size"}),
    ("object-del", {"id": "x"}),
    # object-del
    ("object-del", {"id": "nosuch"}),
    ("object-del", {"id": "/objects/m1"}),
    ("object-del", {"id": ""}),
    # qom-get / qom-set on a live backend
    ("qom-get", {"path": "/objects/m1", "property": "size"}),
    ("qom-get", {"path": "/objects/m1", "property": "type"}),
    ("qom-get", {"path": "/objects/m1", "property": "nosuch"}),
    ("qom-get", {"path": "/nosuch", "property": "size"}),
    ("qom-get", {"path": "m1", "property": "policy"}),
    ("qom-get", {"path": "m1", "property": "host-nodes"}),
    ("qom-get", {"path": "m1", "property": "prealloc-threads"}),
    ("qom-get", {"path": "m1", "property": "prealloc-context"}),
    ("qom-get", {"path": "", "property": "type"}),
    ("qom-get", {"path": "/", "property": "type"}),
    ("qom-get", {"path": "/objects", "property": "m1"}),
    ("qom-set", {"path": "/objects/m1", "property": "merge", "value": False}),
    ("qom-get", {"path": "/objects/m1", "property": "merge"}),
    ("qom-set", {"path": "/objects/m1", "property": "merge", "value": "no"}),
    ("qom-set", {"path": "/objects/m1", "property": "size", "value": 2 * MIB}),
    ("qom-set", {"path": "/objects/m1", "property": "share", "value": True}),
    ("qom-set", {"path": "/objects/m1", "property": "reserve", "value": False}),
    ("qom-set", {"path": "/objects/m1", "property": "dump", "value": 1}),
    ("qom-set", {"path": "/objects/m1", "property": "prealloc-threads", "value": "2"}),
    ("qom-set", {"path": "/objects/m1", "property": "prealloc-threads", "value": 2}),
    ("qom-get", {"path": "/objects/m1", "property": "prealloc-threads"}),
    ("qom-set", {"path": "/objects/m1", "property": "prealloc-threads", "value": 0}),
    ("qom-set", {"path": "/objects/m1", "property": "policy", "value": "nosuch"}),
    ("qom-set", {"path": "/objects/m1", "property": "nosuch", "value": 1}),
    ("qom-set", {"path": "/nosuch", "property": "merge", "value": False}),
    ("qom-set", {"path": "/objects/m1", "property": "type", "value": "x"}),
    ("qom-set", {"path": "/objects", "property": "m1", "value": "x"}),
    # type introspection
    ("qom-list-types", {"implements": "memory-backend"}),
    ("qom-list-types", {"implements": "memory-backend", "abstract": True}),
    ("qom-list-types", {"implements": "memory-backend-ram"}),
    ("qom-list-types", {"implements": "nosuch"}),
    ("qom-list-properties", {"typename": "nosuch"}),
    ("qom-list-properties", {"typename": "user-creatable"}),
    ("qom-list-properties", {"typename": "container"}),
    ("qom-list-properties", {"typename": "object"}),
    ("qom-list-properties", {"typename": "device"}),
    ("qom-list-properties", {"typename": RAM}),
    ("qom-list-properties", {"typename": "memory-backend-file"}),
    ("device-list-properties", {"typename": "nosuch"}),
    ("device-list-properties", {"typename": "device"}),
    ("device-list-properties", {"typename": RAM}),
    ("device-list-properties", {"typename": "container"}),
    ("qom-list", {"path": "nosuch"}),
    ("qom-list", {"path": "/nosuch"}),
    ("qom-list", {"path": ""}),
    ("qom-list", {"path": "/objects/m1"}),
    ("qom-list", {"path": "m1"}),
    ("qom-list", {"path": "/machine/../machine"}),
    ("qom-list", {"path": "type"}),
]

#: Replies compared as sets: QEMU's list order follows GLib hashing.
UNORDERED = {"qom-list-types", "qom-list-properties", "device-list-properties", "qom-list"}


@pytest.fixture(scope="module")
def pyqom_qmp() -> Iterator[PyqomQmp]:
    """pyqom with QEMU's machine (``-m 1G,slots=3,maxmem=4G``), over its QMP session."""
    with VM("1G", slots=3, maxmem="4G", autoload=False) as vm:
        control = VmControl(vm)
        qmp = PyqomQmp(control)
        yield qmp
        qmp.close()
        control.close()


@pytest.mark.parametrize(("command", "args"), STEPS,
                         ids=[f"{i:03}-{c}" for i, (c, _) in enumerate(STEPS)])
def test_same_answer_as_qemu(qemu, pyqom_qmp, command: str, args: dict[str, Any]) -> None:
    expected = qemu.execute(command, args)
    actual = pyqom_qmp.execute(command, args)
    assert normalise(command, actual, UNORDERED) == normalise(command, expected, UNORDERED)
