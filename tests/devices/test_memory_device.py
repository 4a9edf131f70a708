"""The memory hotplug handler: device_add errors in 7.2's order, the
placements of 4.3, and that a failed device_add changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pluggy
import pytest

import qom
from backends.base import MemoryBackend
from devices.machine import create_pc_machine, machine_ready
from devices.memory_options import memory_config
from pyqom.testing import HookRecorder
from pyqom.vm import VM

K, M, G = 1 << 10, 1 << 20, 1 << 30


def _vm(memory: str = "1G,slots=3,maxmem=4G", **kwargs: Any) -> VM:
    return VM(memory, **kwargs)


@pytest.fixture
def vm() -> Iterator[VM]:
    with _vm() as machine:
        for name in ("mem1", "mem2", "mem3", "mem4"):
            machine.object_add("memory-backend-ram", name, size=G)
        yield machine


def placed(vm: VM) -> list[tuple[str | None, int, int]]:
    """(id, slot, addr) of every plugged DIMM, in query-memory-devices order."""
    return [(d["data"].get("id"), d["data"]["slot"], d["data"]["addr"])
            for d in vm.query_memory_devices()]


def snapshot(vm: VM) -> dict[str, Any]:
    """Everything a failed device_add must leave as it was."""
    backends = [obj for _, obj in vm.tree.objects.children() if isinstance(obj, MemoryBackend)]
    return {
        "devices": vm.query_memory_devices(),
        "records": list(vm.machine.memory_devices()),
        "busy": {b.name_in_parent: b.is_mapped() for b in backends},
        "peripheral": qom.qom_list(vm.tree, "/machine/peripheral"),
        "anon": qom.qom_list(vm.tree, "/machine/peripheral-anon"),
        "summary": vm.query_memory_size_summary(),
    }


def add_error(vm: VM, *, name: str | None = "dimmX", **props: Any) -> qom.QomError:
    """device_add that must fail; the machine must be unchanged afterwards."""
    before = snapshot(vm)
    with pytest.raises(qom.QomError) as info:
        vm.device_add("pc-dimm", name, **props)
    assert snapshot(vm) == before
    return info.value


# -- rows 16-18: auto placement -----------------------------------------------------


def test_rows_16_to_18(vm: VM) -> None:
    dimm1 = vm.device_add("pc-dimm", "dimm1", memdev="mem1")
    assert (dimm1.addr, dimm1.slot, dimm1.hotplugged) == (4294967296, 0, True)  # type: ignore[attr-defined]
    assert vm.qom_get("dimm1", "memdev") == "/objects/mem1"
    vm.device_add("pc-dimm", "dimm2", memdev="mem2")
    assert vm.query_memory_size_summary()["plugged-memory"] == 2 * G
    vm.device_add("pc-dimm", "dimm3", memdev="mem3")
    assert str(add_error(vm, name="dimm4", memdev="mem4")) == "no free slots available"
    assert placed(vm) == [("dimm1", 0, 4294967296), ("dimm2", 1, 5368709120),
                          ("dimm3", 2, 6442450944)]
    assert vm.query_memory_devices()[0] == {"type": "dimm", "data": {
        "id": "dimm1", "addr": 4294967296, "size": G, "slot": 0, "node": 0,
        "memdev": "/objects/mem1", "hotplugged": True, "hotpluggable": True}}


# -- 4.2 errors, each leaving nothing behind ------------------------------------------


@pytest.mark.parametrize(("props", "error_class", "message"), [
    ({}, "GenericError", "'memdev' property must be set"),                            # 25
    ({"memdev": ""}, "GenericError", "'memdev' property must be set"),
    ({"memdev": "nosuch"}, "DeviceNotFound", "Device 'nosuch' not found"),             # 26
    ({"memdev": "/machine"}, "GenericError",
     "Invalid parameter type for 'memdev', expected: memory-backend"),                # 27
    ({"memdev": "pc.ram"}, "GenericError", "can't use already busy memdev: pc.ram"),  # 28
    ({"memdev": "mem1", "slot": 3}, "GenericError",
     "invalid slot number 3, valid range is [0-2]"),                                  # 30
    ({"memdev": "mem1", "slot": -2}, "GenericError",
     "invalid slot number -2, valid range is [0-2]"),
    ({"memdev": "mem1", "node": 1}, "GenericError",
     "'DIMM property node has value 1' which exceeds the number of numa nodes: 1"),   # 34
    ({"memdev": "mem1", "addr": 4294967297}, "GenericError",
     "address must be aligned to 0x200000 bytes"),                                    # 35
    ({"memdev": "mem1", "addr": 2147483648}, "GenericError",
     "can't add memory device [0x80000000:0x40000000], usable range for memory devices"
     " [0x100000000:0x180000000]"),                                                   # 36
    ({"memdev": "mem1", "addr": 0x240200000}, "GenericError",
     "can't add memory device [0x240200000:0x40000000], usable range for memory devices"
     " [0x100000000:0x180000000]"),
    ({"memdev": "mem1", "size": 5}, "GenericError", "Property 'pc-dimm.size' is not writable"),
    ({"memdev": "mem1", "foo": 1}, "GenericError", "Property 'pc-dimm.foo' not found"),
    ({"memdev": "mem1", "slot": "abc"}, "GenericError", "Parameter 'slot' expects integer"),
    ({"memdev": "mem1", "node": -1}, "GenericError", "Parameter 'node' expects uint32_t"),
    ({"memdev": "mem1", "addr": "5G"}, "GenericError", "Parameter 'addr' expects integer"),
    ({"memdev": "mem1", "addr": 256, "slot": 7}, "GenericError",
     "invalid slot number 7, valid range is [0-2]"),
    ({"memdev": "nosuch", "slot": "abc"}, "DeviceNotFound", "Device 'nosuch' not found"),
    ({"memdev": "mem1", "zzz": 1, "aaa": 1}, "GenericError",
     "Property 'pc-dimm.aaa' not found"),
    ({"memdev": "mem1", "bus": "nosuch"}, "GenericError", "Bus 'nosuch' not found"),
])
def test_errors_change_nothing(vm: VM, props: dict[str, Any], error_class: str,
                               message: str) -> None:
    error = add_error(vm, **props)
    assert (error.error_class, str(error)) == (error_class, message)


def test_errors_with_plugged_dimms(vm: VM) -> None:
    vm.device_add("pc-dimm", "dimm1", memdev="mem1", slot=0)
    assert str(add_error(vm, memdev="mem1")) == "can't use already busy memdev: mem1"  # 29
    assert str(add_error(vm, memdev="mem2", slot=0)) == "slot 0 is busy"             # 31
    assert str(add_error(vm, memdev="mem1", slot=0)) == "slot 0 is busy"  # slot before busy
    assert str(add_error(vm, memdev="mem2", slot=0, node=5)) == "slot 0 is busy"
    assert str(add_error(vm, name="dimm1", memdev="mem1")) == "Duplicate device ID 'dimm1'"  # 42
    assert str(add_error(vm, name="dimm1", memdev="mem2", foo=1)) == \
        "Duplicate device ID 'dimm1'"
    assert str(add_error(vm, memdev="mem2", addr=0x100200000)) == \
        "address range conflicts with memory device id='dimm1'"                      # 38
    vm.device_add("pc-dimm", None, memdev="mem2")
    assert str(add_error(vm, memdev="mem3", addr=0x140000000)) == \
        "address range conflicts with memory device id='(unnamed)'"


def test_id_and_driver_errors_come_first(vm: VM) -> None:
    vm.device_add("pc-dimm", "dimm1", memdev="mem1")
    before = snapshot(vm)
    for options, message in [
        ({"driver": "pc-dimm", "id": "1d", "memdev": "nosuch"},
         "Parameter 'id' expects an identifier"),
        ({"driver": "nosuch", "id": "1d"}, "Parameter 'id' expects an identifier"),
        ({"driver": "nosuch", "id": "dimm1"}, "'nosuch' is not a valid device model name"),
        ({"id": "x"}, "Parameter 'driver' is missing"),
        ({"driver": "device"}, "Parameter 'driver' expects a non-abstract device type"),
    ]:
        with pytest.raises(qom.QomError) as info:
            qom.device_add(vm.tree, qom.qemu_opts_from_qdict(options))
        assert str(info.value) == message
    assert snapshot(vm) == before


@pytest.mark.parametrize(("memory", "props", "message"), [
    ("1G", {"memdev": "m1"}, "no slots where allocated, please specify the 'slots' option"),
    ("1G,maxmem=2G", {"memdev": "m1"},
     "no slots where allocated, please specify the 'slots' option"),
    ("1G", {"memdev": "m1", "slot": 0},
     "invalid slot number 0, valid range is [0-18446744073709551615]"),               # 33
    ("1G,slots=2,maxmem=2G", {"memdev": "big"},
     "not enough space, currently 0x0 in use of total space for memory devices 0x40000000"),
    ("1G,slots=3,maxmem=4G", {"memdev": "m3"}, "backend memory size must be multiple of 0x200000"),
    ("1G,slots=3,maxmem=4G", {"memdev": "m64"}, "backend memory size must be multiple of 0x200000"),
])
def test_machine_dependent_errors(memory: str, props: dict[str, Any], message: str) -> None:
    with _vm(memory) as vm:
        vm.object_add("memory-backend-ram", "m1", size=G)
        vm.object_add("memory-backend-ram", "big", size=2 * G)
        vm.object_add("memory-backend-ram", "m3", size=3 * M)
        vm.object_add("memory-backend-ram", "m64", size=64)
        assert str(add_error(vm, **props)) == message


def test_row_39_capacity() -> None:
    with _vm("1G,slots=2,maxmem=2G") as vm:
        vm.object_add("memory-backend-ram", "m1", size=G)
        vm.object_add("memory-backend-ram", "m2", size=M)
        vm.device_add("pc-dimm", "d1", memdev="m1")
        assert str(add_error(vm, memdev="m2")) == (
            "not enough space, currently 0x40000000 in use of total space for memory"
            " devices 0x40000000")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"acpi": False}, "memory hotplug is not enabled: missing acpi device or acpi disabled"),
    ({"memory_hotplug_support": False},
     "memory hotplug is not enabled: PIIX4_PM.memory-hotplug-support is not set"),
])
def test_rows_43_44_hotplug_disabled(kwargs: dict[str, Any], message: str) -> None:
    with _vm(**kwargs) as vm:
        vm.object_add("memory-backend-ram", "m1", size=G)
        # comes before the slot checks
        assert str(add_error(vm, memdev="m1", slot=9)) == message


# -- 4.3 placements -------------------------------------------------------------------


def test_row_37_explicit_address_leaves_a_hole(vm: VM) -> None:
    vm.device_add("pc-dimm", "dimm1", memdev="mem1", addr=9 * G)
    vm.device_add("pc-dimm", "dimm2", memdev="mem2")
    vm.device_add("pc-dimm", "dimm3", memdev="mem3", addr=5 * G)
    assert placed(vm) == [("dimm2", 1, 4 * G), ("dimm3", 2, 5 * G), ("dimm1", 0, 9 * G)]


def test_explicit_slot_then_auto(vm: VM) -> None:
    with _vm() as small:
        for name in ("m1", "m2", "m3"):
            small.object_add("memory-backend-ram", name, size=256 * M)
        small.device_add("pc-dimm", "d1", memdev="m1", slot=2)
        small.device_add("pc-dimm", "d2", memdev="m2")
        small.device_add("pc-dimm", "d3", memdev="m3")
        assert placed(small) == [("d1", 2, 0x100000000), ("d2", 0, 0x110000000),
                                 ("d3", 1, 0x120000000)]


def test_failed_capacity_consumes_nothing() -> None:
    with _vm("1G,slots=3,maxmem=2G") as vm:
        for name, size in (("m1", 768 * M), ("m2", 512 * M), ("m3", 256 * M)):
            vm.object_add("memory-backend-ram", name, size=size)
        vm.device_add("pc-dimm", "d1", memdev="m1")
        assert str(add_error(vm, name="d2", memdev="m2")) == (
            "not enough space, currently 0x30000000 in use of total space for memory"
            " devices 0x40000000")
        vm.device_add("pc-dimm", "d3", memdev="m3")
        assert placed(vm) == [("d1", 0, 0x100000000), ("d3", 1, 0x130000000)]


def test_example_e_and_row_41_mixed_alignment(tmp_path: Path) -> None:
    with _vm("1G,slots=4,maxmem=3G") as vm:
        vm.object_add("memory-backend-ram", "m1", size=512 * M)
        vm.object_add("memory-backend-file", "f1", size=4 * M + 4 * K, mem_path=str(tmp_path))
        vm.object_add("memory-backend-ram", "m2", size=G)
        vm.object_add("memory-backend-ram", "m3", size=G)
        for name, memdev in (("d1", "m1"), ("d2", "f1"), ("d3", "m2")):
            vm.device_add("pc-dimm", name, memdev=memdev)
        assert placed(vm) == [("d1", 0, 0x100000000), ("d2", 1, 0x120000000),
                              ("d3", 2, 0x120600000)]
        assert str(add_error(vm, name="d4", memdev="m3")) == (
            "not enough space, currently 0x60401000 in use of total space for memory"
            " devices 0x80000000")


def test_row_78_file_backends_fill_gaps(tmp_path: Path) -> None:
    with _vm() as vm:
        for name, size in (("f1", 12 * K), ("f2", 4 * K), ("f3", M)):
            vm.object_add("memory-backend-file", name, size=size, mem_path=str(tmp_path))
        vm.device_add("pc-dimm", "d1", memdev="f1", addr=0x100001000)
        vm.device_add("pc-dimm", "d2", memdev="f2")
        vm.device_add("pc-dimm", "d3", memdev="f3")
        assert placed(vm) == [("d2", 1, 0x100000000), ("d1", 0, 0x100001000),
                              ("d3", 2, 0x100004000)]
        assert vm.query_memory_size_summary()["plugged-memory"] == 1064960


def test_example_f_legacy_alignment() -> None:
    with VM("1G,slots=2,maxmem=3G", machine="pc-i440fx-2.1") as vm:
        vm.object_add("memory-backend-ram", "m1", size=3 * M)
        vm.object_add("memory-backend-ram", "m2", size=G)
        vm.device_add("pc-dimm", "d1", memdev="m1")
        vm.device_add("pc-dimm", "d2", memdev="m2")
        assert placed(vm) == [("d1", 0, 0x100000000), ("d2", 1, 0x100300000)]


def test_example_k_row_77() -> None:
    with _vm("1G,slots=2,maxmem=4097M") as vm:
        for name, size in (("m1", 2 * G), ("m2", 1026 * M), ("m3", G)):
            vm.object_add("memory-backend-ram", name, size=size)
        vm.device_add("pc-dimm", "d1", memdev="m1")
        assert str(add_error(vm, name="d2", memdev="m2")) == (
            "not enough space, currently 0x80000000 in use of total space for memory"
            " devices 0xc0100000")
        vm.device_add("pc-dimm", "d3", memdev="m3")
        assert placed(vm) == [("d1", 0, 4 * G), ("d3", 1, 6442450944)]


def test_cold_plug_mix_then_hot_plug() -> None:
    objects = [{"qom-type": "memory-backend-ram", "id": name, "size": size}
               for name, size in (("c1m", "512M"), ("c2m", "1G"), ("c3m", "128M"))]
    devices = [{"driver": "pc-dimm", "id": "c1", "memdev": "c1m", "slot": "3"},
               {"driver": "pc-dimm", "id": "c2", "memdev": "c2m", "addr": "0x1c0000000"},
               {"driver": "pc-dimm", "id": "c3", "memdev": "c3m"}]
    with VM("2G,slots=4,maxmem=8G", objects=objects, devices=devices,
            object_source=qom.OPTS) as vm:
        vm.object_add("memory-backend-ram", "h1m", size=G)
        vm.device_add("pc-dimm", "h1", memdev="h1m")
        assert [(d["data"]["id"], d["data"]["slot"], d["data"]["addr"], d["data"]["hotplugged"])
                for d in vm.query_memory_devices()] == [
            ("c1", 3, 0x100000000, False), ("c3", 1, 0x120000000, False),
            ("h1", 2, 0x128000000, True), ("c2", 0, 0x1C0000000, False)]


# -- unplug ---------------------------------------------------------------------------


def test_unplug_frees_slot_range_and_backend(vm: VM) -> None:
    for index in (1, 2, 3):
        vm.device_add("pc-dimm", f"dimm{index}", memdev=f"mem{index}")
    vm.device_del("dimm1")
    vm.device_del("dimm1")            # repeatable while the guest has not ejected
    assert len(placed(vm)) == 3
    with pytest.raises(qom.QomError, match="object 'mem1' is in use, can not be deleted"):
        vm.object_del("mem1")
    qom.complete_unplug(qom.find_device(vm.tree, "dimm1"))
    assert placed(vm) == [("dimm2", 1, 5 * G), ("dimm3", 2, 6 * G)]
    assert qom.qom_list(vm.tree, "/machine/peripheral") == [
        {"name": "type", "type": "string"},
        {"name": "dimm2", "type": "child<pc-dimm>"},
        {"name": "dimm3", "type": "child<pc-dimm>"}]
    vm.device_add("pc-dimm", "dimm4", memdev="mem4")         # slot 0 and 4G again
    vm.object_del("mem1")
    vm.object_add("memory-backend-ram", "mem1", size=G)
    assert placed(vm)[0] == ("dimm4", 0, 4 * G)
    with pytest.raises(qom.QomError, match="no free slots available"):
        vm.device_add("pc-dimm", "dimm1", memdev="mem1")


def test_unplug_then_the_backend_is_free_for_another_dimm(vm: VM) -> None:
    vm.device_add("pc-dimm", "dimm1", memdev="mem1")
    qom.complete_unplug(qom.find_device(vm.tree, "dimm1"))
    vm.device_add("pc-dimm", "dimm1", memdev="mem1", slot=2)
    assert placed(vm) == [("dimm1", 2, 4 * G)]


# -- hooks ----------------------------------------------------------------------------


def test_a_refused_plug_never_reaches_plug_hooks(hook_recorder: HookRecorder,
                                                 plugin_manager: pluggy.PluginManager,
                                                 tree: qom.ObjectTree) -> None:
    machine = create_pc_machine(tree, memory_config("1G,slots=1,maxmem=2G"),
                                hook=plugin_manager.hook)
    machine_ready(tree, machine)
    qom.object_add(tree, {"qom-type": "memory-backend-ram", "id": "m1", "size": G})
    qom.object_add(tree, {"qom-type": "memory-backend-ram", "id": "m2", "size": G})
    hook_recorder.clear()
    qom.device_add(tree, {"driver": "pc-dimm", "id": "d1", "memdev": "m1"})
    names = hook_recorder.names()
    assert names.index("qom_device_pre_plug") < names.index("qom_device_plug_claim")
    hook_recorder.clear()
    with pytest.raises(qom.QomError, match="no free slots available"):
        qom.device_add(tree, {"driver": "pc-dimm", "id": "d2", "memdev": "m2"})
    # The machine places a memory device before asking the plugins, so its own
    # refusal reaches no hook at all.
    assert hook_recorder.get_calls("qom_device_pre_plug") == []
    assert hook_recorder.get_calls("qom_device_plug_claim") == []

