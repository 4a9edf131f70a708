"""pc-dimm: properties, read-only size, changes after realize, busy
memdev, and the peripheral-anon counter (probe notes 6-9)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import qom
from pyqom.vm import VM

G = 1 << 30


@pytest.fixture
def vm() -> Iterator[VM]:
    with VM("1G,slots=3,maxmem=4G") as machine:
        for name in ("m1", "m2", "m3", "m4"):
            machine.object_add("memory-backend-ram", name, size=128 << 20)
        yield machine


def test_device_list_properties() -> None:
    with VM("1G") as vm:
        assert qom.device_list_properties(vm.tree, "pc-dimm") == [
            {"name": "memdev", "type": "link<memory-backend>"},
            {"default-value": 0, "name": "node", "type": "uint32"},
            {"default-value": 0, "name": "addr", "type": "uint64"},
            {"default-value": -1, "name": "slot", "type": "int32"},
            {"name": "size", "type": "uint64"}]


def test_qom_list_and_values(vm: VM) -> None:
    vm.device_add("pc-dimm", "dimm1", memdev="m1")
    names = {entry["name"]: entry["type"] for entry in qom.qom_list(vm.tree, "dimm1")}
    assert names == {"type": "string", "parent_bus": "link<bus>", "realized": "bool",
                     "hotplugged": "bool", "hotpluggable": "bool",
                     "memdev": "link<memory-backend>", "node": "uint32", "addr": "uint64",
                     "slot": "int32", "size": "uint64", "legacy-memdev": "str"}
    expected = {"memdev": "/objects/m1", "addr": 4294967296, "slot": 0, "size": 128 << 20,
                "node": 0, "realized": True, "parent_bus": "", "hotplugged": True,
                "hotpluggable": True, "type": "pc-dimm"}
    for prop, value in expected.items():
        assert vm.qom_get("/machine/peripheral/dimm1", prop) == value
    with pytest.raises(qom.QomError, match=r"Property 'pc-dimm.legacy-memdev' is not readable"):
        vm.qom_get("dimm1", "legacy-memdev")


def test_size_needs_a_memdev_and_is_read_only(vm: VM) -> None:
    dimm = vm.tree.new("pc-dimm")
    try:
        with pytest.raises(qom.QomError, match=r"^'memdev' property must be set$"):
            dimm.get("size")
    finally:
        dimm.finalize()
    vm.device_add("pc-dimm", "dimm1", memdev="m1")
    with pytest.raises(qom.QomError) as info:
        vm.qom_set("dimm1", "size", 5)
    assert str(info.value) == "Property 'pc-dimm.size' is not writable"


@pytest.mark.parametrize(("prop", "value", "message"), [
    ("addr", 0, "Attempt to set property 'addr' on device 'dimm1' (type 'pc-dimm')"
                " after it was realized"),
    ("slot", 1, "Attempt to set property 'slot' on device 'dimm1' (type 'pc-dimm')"
                " after it was realized"),
    ("node", 0, "Attempt to set property 'node' on device 'dimm1' (type 'pc-dimm')"
                " after it was realized"),
    ("memdev", "m2", "Attempt to set link property 'memdev' on device 'dimm1'"
                     " (type 'pc-dimm') after it was realized"),
    ("hotplugged", False, "Property 'pc-dimm.hotplugged' is not writable"),
])
def test_qom_set_after_realize(vm: VM, prop: str, value: object, message: str) -> None:
    vm.device_add("pc-dimm", "dimm1", memdev="m1")
    with pytest.raises(qom.QomError) as info:
        vm.qom_set("/machine/peripheral/dimm1", prop, value)
    assert str(info.value) == message
    assert vm.query_memory_devices()[0]["data"]["addr"] == 4294967296
    assert vm.qom_get("dimm1", "memdev") == "/objects/m1"


def test_busy_memdev(vm: VM) -> None:
    backend = vm.tree.resolve("/objects/m1")[0]
    assert backend is not None and not backend.is_mapped()  # type: ignore[attr-defined]
    vm.device_add("pc-dimm", "dimm1", memdev="m1")
    assert backend.is_mapped()  # type: ignore[attr-defined]
    with pytest.raises(qom.QomError, match=r"^object 'm1' is in use, can not be deleted$"):
        vm.object_del("m1")
    with pytest.raises(qom.QomError, match=r"^can't use already busy memdev: m1$"):
        vm.device_add("pc-dimm", "dimm2", memdev="/objects/m1")
    qom.complete_unplug(qom.find_device(vm.tree, "dimm1"))
    assert not backend.is_mapped()  # type: ignore[attr-defined]
    vm.object_del("m1")


def test_qmp_values_are_read_as_strings(vm: VM) -> None:
    vm.device_add("pc-dimm", "d2", memdev="m2", slot="2", addr=str(0x110000000))
    assert (vm.qom_get("d2", "slot"), vm.qom_get("d2", "addr")) == (2, 0x110000000)
    # null, lists and objects are dropped, as is a non-string id
    qom.device_add(vm.tree, qom.qemu_opts_from_qdict(
        {"driver": "pc-dimm", "id": 5, "memdev": "m3", "slot": [1]}))
    assert vm.qom_get("/machine/peripheral-anon/device[0]", "slot") == 0


def _anon(vm: VM) -> list[str]:
    return [entry["name"] for entry in qom.qom_list(vm.tree, "/machine/peripheral-anon")]


@pytest.mark.parametrize(("options", "consumes"), [
    ({"memdev": "m2", "foo": "1"}, True),
    ({"memdev": "nosuch"}, True),
    ({"memdev": "m2", "slot": "abc"}, True),
    ({}, True),                                      # 'memdev' property must be set
    ({"memdev": "m2", "node": "5"}, True),
    ({"memdev": "m2", "hotplugged": "on"}, True),
    ({"memdev": "m2", "slot": "9"}, True),
    ({"memdev": "m2", "bus": "nosuch"}, False),
])
def test_failed_anonymous_add_and_the_counter(vm: VM, options: dict[str, str],
                                              consumes: bool) -> None:
    with pytest.raises(qom.QomError):
        qom.device_add(vm.tree, {"driver": "pc-dimm", **options})
    vm.device_add("pc-dimm", None, memdev="m3")
    assert _anon(vm) == ["type", "device[1]" if consumes else "device[0]"]


@pytest.mark.parametrize("driver", ["nosuch", "device", "memory-backend-ram"])
def test_bad_driver_consumes_no_index(vm: VM, driver: str) -> None:
    with pytest.raises(qom.QomError):
        qom.device_add(vm.tree, {"driver": driver})
    vm.device_add("pc-dimm", None, memdev="m3")
    assert _anon(vm) == ["type", "device[0]"]


def test_named_failures_do_not_touch_the_counter(vm: VM) -> None:
    with pytest.raises(qom.QomError):
        vm.device_add("pc-dimm", "named", memdev="m1", foo=1)
    vm.device_add("pc-dimm", None, memdev="m1")
    assert _anon(vm) == ["type", "device[0]"]
    assert vm.tree.anon_device_count == 1
