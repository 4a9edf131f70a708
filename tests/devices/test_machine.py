"""The pc machine: board-init checks and memory layout.

Every value here was observed on QEMU 7.2 (the worked examples of 5.3); the
conformance suite re-checks the region sizes and DIMM addresses live.
"""

from __future__ import annotations

from collections.abc import Iterator

import pluggy
import pytest

import qom
from devices.machine import (
    AMD_ABOVE_1TB_START,
    E820Entry,
    PcMachine,
    create_pc_machine,
    machine_type_for,
)
from devices.memory_options import memory_config
from pyqom.vm import VM
from qom import ObjectTree, QomError

M, G = 1 << 20, 1 << 30
HT = E820Entry(0xFD00000000, 0x300000000, 2)


def _vm(*args: str) -> VM:
    return VM.from_args(list(args))


@pytest.fixture
def base() -> Iterator[VM]:
    with _vm("-m", "1G,slots=3,maxmem=4G") as vm:
        yield vm


def _layout(machine: PcMachine) -> tuple[int, int, int, int]:
    return (machine.below_4g_mem_size, machine.above_4g_mem_size,
            machine.device_memory_base, machine.device_memory_size)


# -- 5.3 worked examples ---------------------------------------------------------


@pytest.mark.parametrize(("args", "layout", "reserved_end"), [
    # A
    (("-m", "1G,slots=3,maxmem=4G"), (G, 0, 0x100000000, 0x180000000), 0x280000000),
    # B (pc)
    (("-m", "5G,slots=2,maxmem=8G"), (3 * G, 2 * G, 0x180000000, 0x140000000), 0x2C0000000),
    # C
    (("-m", "3584M,slots=2,maxmem=8G"), (3 * G, 512 * M, 0x140000000, 0x1A0000000),
     0x300000000),
    # D
    (("-m", "3583M,slots=2,maxmem=8G"), (3583 * M, 0, 0x100000000, 0x1A0100000),
     0x2C0000000),
    # E
    (("-m", "1G,slots=4,maxmem=3G"), (G, 0, 0x100000000, 6 * G), 0x280000000),
    # F: legacy, no per-slot reserve, reserved end from the base only
    (("-machine", "pc-i440fx-2.1", "-m", "1G,slots=2,maxmem=3G"),
     (G, 0, 0x100000000, 2 * G), 0x100000000),
    # G
    (("-m", "1G,slots=256,maxmem=2G"), (G, 0, 0x100000000, 0x4040000000), 0x4140000000),
    # H
    (("-machine", "pc,max-ram-below-4g=512M", "-m", "1G,slots=3,maxmem=4G"),
     (512 * M, 512 * M, 0x140000000, 0x180000000), 0x2C0000000),
    # I
    (("-m", "4G,slots=2,maxmem=8G"), (3 * G, G, 0x140000000, 6 * G), 0x2C0000000),
    # J
    (("-m", "6G,slots=4,maxmem=10G"), (3 * G, 3 * G, 0x1C0000000, 8 * G), 0x3C0000000),
    # K
    (("-m", "1G,slots=2,maxmem=4097M"), (G, 0, 0x100000000, 5369757696), 0x280000000),
    # L
    (("-m", "1024,slots=2,maxmem=4G"), (G, 0, 0x100000000, 5 * G), 0x240000000),
    (("-m", "size=2G,slots=3,maxmem=5G"), (2 * G, 0, 0x100000000, 6 * G), 0x280000000),
    # row 75: just below the relocation threshold
    (("-m", "1G,slots=256,maxmem=751G"), (G, 0, 0x100000000, 1080184274944), 1010 * G),
])
def test_worked_examples(args: tuple[str, ...], layout: tuple[int, int, int, int],
                         reserved_end: int) -> None:
    with _vm(*args) as vm:
        assert _layout(vm.machine) == layout
        assert vm.qom_get("/machine", "device-memory-region-size") == layout[3]
        assert vm.machine.reserved_memory_end == reserved_end
        assert vm.machine.above_4g_mem_start == 0x100000000


def test_row_15_region_size(base: VM) -> None:
    assert base.qom_get("/machine", "device-memory-region-size") == 6442450944
    assert base.qom_get("/machine", "memory") == {"size": G, "slots": 3, "max-size": 4 * G}


@pytest.mark.parametrize("memory", ["1G", "1G,maxmem=1G", "1G,slots=0,maxmem=1G"])
def test_no_device_memory_without_maxmem(memory: str) -> None:
    with _vm("-m", memory) as vm:
        assert vm.qom_get("/machine", "device-memory-region-size") == 0
        assert not vm.machine.has_device_memory
        assert vm.machine.reserved_memory_end is None
        assert vm.query_memory_size_summary() == {"base-memory": G, "plugged-memory": 0}


def test_maxmem_without_slots_has_a_region() -> None:
    with _vm("-m", "1G,maxmem=2G") as vm:
        assert vm.qom_get("/machine", "device-memory-region-size") == G
        assert vm.qom_get("/machine", "memory") == {"size": G}


# -- 5.1 RAM split and the e820 map ---------------------------------------------------


@pytest.mark.parametrize(("ram", "below", "above"), [
    ("1G", G, 0),
    ("3583M", 3583 * M, 0),
    ("3584M", 3 * G, 512 * M),  # ram >= 3.5G: lowmem capped at 3G
    ("4G", 3 * G, G),
    ("6G", 3 * G, 3 * G),
])
def test_ram_split(ram: str, below: int, above: int) -> None:
    with _vm("-m", ram) as vm:
        assert (vm.machine.below_4g_mem_size, vm.machine.above_4g_mem_size) == (below, above)
        expected = [HT, E820Entry(0, below, 1)]
        if above:
            expected.append(E820Entry(0x100000000, above, 1))
        assert vm.machine.e820 == expected


@pytest.mark.parametrize("memory", ["1G", "1G,slots=3,maxmem=4G"])
def test_e820_ignores_device_memory_and_dimms(memory: str) -> None:
    with _vm("-m", memory) as vm:
        if vm.machine.ram_slots:
            vm.object_add("memory-backend-ram", "m1", size=G)
            vm.device_add("pc-dimm", "d1", memdev="m1")
        assert vm.machine.e820 == [HT, E820Entry(0, G, 1)]


def test_max_ram_below_4g_small() -> None:
    with _vm("-machine", "pc,max-ram-below-4g=512M", "-m", "1G") as vm:
        assert vm.machine.e820 == [HT, E820Entry(0, 512 * M, 1),
                                   E820Entry(0x100000000, 512 * M, 1)]
        assert vm.qom_get("/machine", "max-ram-below-4g") == 512 * M


def test_phys_bits_32_has_no_hypertransport_entry() -> None:
    with _vm("-cpu", "qemu64,phys-bits=32", "-m", "1G,slots=3,maxmem=4G") as vm:
        assert vm.machine.e820 == [E820Entry(0, G, 1)]


# -- 1.4 the AMD 1 TiB relocation and phys-bits --------------------------------------


def test_row_76_relocation_with_48_phys_bits() -> None:
    with _vm("-cpu", "qemu64,phys-bits=48", "-m", "1G,slots=256,maxmem=1T") as vm:
        assert vm.machine.above_4g_mem_start == AMD_ABOVE_1TB_START
        assert vm.qom_get("/machine", "device-memory-region-size") == 1373315792896
        assert vm.machine.device_memory_base == 1099511627776
        for name in ("m1", "m2"):
            vm.object_add("memory-backend-ram", name, size=G)
        vm.device_add("pc-dimm", "d1", memdev="m1")
        vm.device_add("pc-dimm", "d2", memdev="m2", slot=255)
        assert [(d["data"]["addr"], d["data"]["slot"]) for d in vm.query_memory_devices()] \
            == [(1099511627776, 0), (1100585369600, 255)]


@pytest.mark.parametrize(("args", "message"), [
    (("-m", "1G,slots=256,maxmem=752G"),
     "Address space limit 0xffffffffff < 0x1fc3fffffff phys-bits too low (40)"),
    (("-m", "1G,slots=256,maxmem=1T"),
     "Address space limit 0xffffffffff < 0x2403fffffff phys-bits too low (40)"),
    (("-m", "1G,slots=3,maxmem=1T"),
     "Address space limit 0xffffffffff < 0x200ffffffff phys-bits too low (40)"),
    (("-cpu", "qemu64,phys-bits=33", "-m", "1G,slots=3,maxmem=4G"),
     "Address space limit 0x1ffffffff < 0x2ffffffff phys-bits too low (33)"),
    # the phys-bits check comes before the slot-count check
    (("-m", "1G,slots=4294967297,maxmem=2G"),
     "Address space limit 0xffffffffff < 0x40000100ffffffff phys-bits too low (40)"),
    (("-cpu", "qemu64,phys-bits=31"), "phys-bits should be between 32 and 52  (but is 31)"),
    (("-cpu", "qemu64,phys-bits=53"), "phys-bits should be between 32 and 52  (but is 53)"),
    # 1.4 table
    (("-m", "1G,slots=257,maxmem=2G"), "unsupported amount of memory slots: 257"),     # row 8
    (("-m", "1G,slots=-1,maxmem=2G"),
     "unsupported amount of memory slots: 18446744073709551615"),
    (("-m", "1G,slots=3,maxmem=4294967297"),
     "maximum memory size must by aligned to multiple of 4096 bytes"),                 # row 9
    (("-machine", "pc-i440fx-2.0", "-m", "1G,slots=3,maxmem=4G"),
     "\"-memory 'slots|maxmem'\" is not supported by: pc-i440fx-2.0"),                 # row 14
    (("-machine", "pc-i440fx-2.0", "-m", "1G,maxmem=2G"),
     "\"-memory 'slots|maxmem'\" is not supported by: pc-i440fx-2.0"),
])
def test_board_init_errors(args: tuple[str, ...], message: str) -> None:
    with pytest.raises(QomError) as info:
        _vm(*args)
    assert str(info.value) == message


def test_checks_are_skipped_when_maxmem_equals_ram() -> None:
    with _vm("-m", "1G,slots=0,maxmem=1G") as vm:
        assert vm.machine.ram_slots == 0
    with _vm("-machine", "pc-i440fx-2.0", "-m", "1G") as vm:
        assert vm.machine.reserved_memory_end is None


def test_machine_names() -> None:
    assert machine_type_for("pc") == "pc-i440fx-7.2-machine"
    assert machine_type_for("pc-i440fx-2.1") == "pc-i440fx-2.1-machine"
    with pytest.raises(QomError, match="unsupported machine type"):
        machine_type_for("nosuch")


# -- pc.ram and failed creation ------------------------------------------------------


def test_main_ram_is_an_always_busy_backend(base: VM) -> None:
    assert base.qom_get("/machine", "memory-backend") == "/objects/pc.ram"
    assert base.qom_get("/objects/pc.ram", "size") == G
    with pytest.raises(QomError) as info:
        base.object_del("pc.ram")
    assert str(info.value) == "object 'pc.ram' is in use, can not be deleted"


@pytest.mark.parametrize("memory", ["1G,slots=257,maxmem=2G", "1G,slots=3,maxmem=1T",
                                    "1G,slots=3,maxmem=4294967297"])
def test_failed_creation_leaves_nothing(tree: ObjectTree, plugin_manager: pluggy.PluginManager,
                                        memory: str) -> None:
    with pytest.raises(QomError):
        create_pc_machine(tree, memory_config(memory), hook=plugin_manager.hook)
    assert tree.resolve("/objects/pc.ram")[0] is None
    assert tree.resolve("/machine")[0] is None
    assert qom.qom_list(tree, "/objects") == [{"name": "type", "type": "string"}]
    # and the same tree can then hold a good machine
    machine = create_pc_machine(tree, memory_config("1G,slots=3,maxmem=4G"),
                                hook=plugin_manager.hook)
    assert machine.device_memory_size == 6 * G
    assert tree.resolve("/objects/pc.ram")[0] is not None


def test_failed_phys_bits_check_leaves_nothing(tree: ObjectTree,
                                               plugin_manager: pluggy.PluginManager) -> None:
    with pytest.raises(QomError, match="phys-bits should be"):
        create_pc_machine(tree, memory_config("1G"), hook=plugin_manager.hook, phys_bits=60)
    assert tree.resolve("/objects/pc.ram")[0] is None
    assert tree.resolve("/machine")[0] is None


def test_a_failed_vm_keeps_its_objects_out_of_reach() -> None:
    with pytest.raises(QomError, match="unsupported amount of memory slots"):
        VM.from_args(["-m", "1G,slots=257,maxmem=2G",
                      "-object", "memory-backend-ram,id=m1,size=1M"])
