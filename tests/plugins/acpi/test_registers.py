"""The memory-hotplug register block and GPE0, driven by real IN/OUT in Unicorn."""

from __future__ import annotations

import struct

import pytest

import qom
from plugins import hookimpl
from plugins.acpi.plugin import memory_hotplug_block
from pyqom.vm import VM

GiB = 1 << 30


class Events:
    """Records every event, as a monitor would receive it."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict]] = []

    @hookimpl
    def qom_event(self, tree, name, data) -> None:
        self.seen.append((name, data))


def io(*ops: tuple[str, int, int, int]) -> bytes:
    """x86-64 code doing port I/O, then HLT.

    ops: ("out", port, size, value) or ("in", port, size, 0); each IN result is
    stored at 0x8000 + 8*i (qword), so the test can read them back.
    """
    code = b""
    slot = 0
    for op, port, size, value in ops:
        code += b"\x66\xba" + struct.pack("<H", port)              # mov dx, port
        if op == "out":
            code += b"\xb8" + struct.pack("<I", value)             # mov eax, value
            code += {1: b"\xee", 2: b"\x66\xef", 4: b"\xef"}[size]  # out dx, al/ax/eax
        else:
            code += b"\x31\xc0"                                    # xor eax, eax
            code += {1: b"\xec", 2: b"\x66\xed", 4: b"\xed"}[size]  # in al/ax/eax, dx
            code += b"\x48\xa3" + struct.pack("<Q", 0x8000 + 8 * slot)  # mov [addr], rax
            slot += 1
    return code + b"\xf4"


def run_io(vm: VM, *ops: tuple[str, int, int, int]) -> list[int]:
    vm.run(io(*ops), load_at=0x1000)
    reads = sum(1 for op in ops if op[0] == "in")
    return [struct.unpack_from("<Q", vm.read(0x8000 + 8 * i, 8))[0] for i in range(reads)]


@pytest.fixture
def events():
    return Events()


@pytest.fixture
def vm(events):
    machine = VM("1G", slots=3, maxmem="4G", autoload=False, plugins=[events])
    yield machine
    machine.close()


def hotplug(vm: VM, n: int = 1, size: int = GiB) -> qom.Device:
    vm.object_add("memory-backend-ram", f"mem{n}", size=size)
    return vm.device_add("pc-dimm", f"dimm{n}", memdev=f"mem{n}")


def test_hot_add_sets_insert_and_gpe(vm):
    hotplug(vm)
    # row 57: status byte of slot 0 is 0x03, GPE0 status 0x0008
    assert run_io(vm, ("out", 0xA00, 4, 0), ("in", 0xA14, 1, 0), ("in", 0xAFE0, 2, 0)) == [3, 8]


def test_registers_of_the_selected_slot(vm):
    hotplug(vm)
    # row 58
    reads = run_io(vm, ("out", 0xA00, 4, 0), ("in", 0xA00, 4, 0), ("in", 0xA04, 4, 0),
                   ("in", 0xA08, 4, 0), ("in", 0xA0C, 4, 0), ("in", 0xA10, 4, 0))
    assert reads == [0, 1, 0x40000000, 0, 0]
    # row 59: a selector past the last slot reads 0 everywhere
    assert run_io(vm, ("out", 0xA00, 4, 3), ("in", 0xA04, 4, 0), ("in", 0xA14, 1, 0)) == [0, 0]
    # row 60 and the undecoded offsets
    assert run_io(vm, ("out", 0xA00, 4, 0), ("in", 0xA01, 1, 0), ("in", 0xA18, 4, 0),
                  ("in", 0xA02, 2, 0), ("in", 0xA14, 4, 0), ("in", 0xA15, 1, 0),
                  ("in", 0xA00, 2, 0)) == [0xFF, 0xFFFFFFFF, 0xFFFF, 3, 0xFF, 0]


def test_cold_plugged_dimm_is_only_enabled(events):
    args = ["-m", "1G,slots=3,maxmem=4G", "-object", "memory-backend-ram,id=m0,size=512M",
            "-device", "pc-dimm,id=cd0,memdev=m0"]
    with VM.from_args(args, autoload=False, plugins=[events]) as vm:
        assert run_io(vm, ("out", 0xA00, 4, 0), ("in", 0xA14, 1, 0),
                      ("in", 0xAFE0, 2, 0)) == [1, 0]


def test_ost_writes_emit_acpi_device_ost(vm, events):
    hotplug(vm)
    run_io(vm, ("out", 0xA00, 4, 0), ("out", 0xA04, 4, 1), ("out", 0xA08, 4, 128))
    info = {"device": "dimm1", "slot": "0", "slot-type": "DIMM", "source": 1, "status": 128}
    assert events.seen == [("ACPI_DEVICE_OST", {"info": info})]
    assert memory_hotplug_block(vm.machine).ospm_status()[0] == info


def test_clear_insert_then_gpe_write_one_to_clear(vm):
    hotplug(vm)
    assert run_io(vm, ("out", 0xA00, 4, 0), ("out", 0xA14, 1, 2), ("in", 0xA14, 1, 0),
                  ("out", 0xAFE2, 2, 8), ("in", 0xAFE0, 2, 0), ("out", 0xAFE0, 2, 8),
                  ("in", 0xAFE0, 2, 0), ("in", 0xAFE2, 2, 0)) == [1, 8, 0, 8]


def test_device_del_then_guest_eject_completes_the_unplug(vm, events):
    hotplug(vm)
    run_io(vm, ("out", 0xA00, 4, 0), ("out", 0xA14, 1, 2), ("out", 0xAFE0, 2, 8))
    qom.device_del(vm.tree, "dimm1")
    # row 62: remove event pending, GPE0.3 set, the DIMM still there, no event
    assert run_io(vm, ("out", 0xA00, 4, 0), ("in", 0xA14, 1, 0), ("in", 0xAFE0, 2, 0)) == [5, 8]
    assert len(vm.query_memory_devices()) == 1 and events.seen == []
    with pytest.raises(qom.QomError, match="object 'mem1' is in use, can not be deleted"):
        vm.object_del("mem1")
    qom.device_del(vm.tree, "dimm1")  # again: still accepted, as in 7.2
    # row 64: 0x0A clears the insert flag only, no eject
    run_io(vm, ("out", 0xA00, 4, 0), ("out", 0xA14, 1, 0x0A))
    assert len(vm.query_memory_devices()) == 1
    # the guest clears remove, then ejects (row 63)
    assert run_io(vm, ("out", 0xA00, 4, 0), ("out", 0xA14, 1, 4), ("out", 0xA14, 1, 8),
                  ("in", 0xA14, 1, 0), ("in", 0xA08, 4, 0)) == [0, 0]
    assert events.seen == [("DEVICE_DELETED", {"device": "dimm1",
                                               "path": "/machine/peripheral/dimm1"})]
    assert vm.query_memory_devices() == []
    vm.object_del("mem1")
    # the guest can no longer reach the range; the slot and range are free again
    with pytest.raises(Exception, match="0x100000000"):
        vm.read(0x100000000, 8)
    hotplug(vm, 2)
    assert vm.query_memory_devices()[0]["data"]["slot"] == 0


def test_eject_of_an_empty_slot_is_ignored(vm, events):
    run_io(vm, ("out", 0xA00, 4, 1), ("out", 0xA14, 1, 8))
    assert events.seen == []


def test_no_acpi_refuses_hotplug_and_unplug():
    with VM("1G", slots=3, maxmem="4G", autoload=False, acpi=False) as vm:
        vm.object_add("memory-backend-ram", "mem1", size=GiB)
        with pytest.raises(qom.QomError) as err:
            vm.device_add("pc-dimm", "dimm1", memdev="mem1")
        assert str(err.value) == ("memory hotplug is not enabled: missing acpi device or acpi "
                                  "disabled")
        assert memory_hotplug_block(vm.machine) is None


def test_failed_plug_restores_the_slot_and_gpe():
    class Refuse:
        @hookimpl(trylast=True)
        def qom_device_plug_announce(self, machine, device, undo):
            raise qom.QomError("refused")

    with VM("1G", slots=3, maxmem="4G", autoload=False, plugins=[Refuse()]) as vm:
        vm.object_add("memory-backend-ram", "mem1", size=GiB)
        with pytest.raises(qom.QomError):
            vm.device_add("pc-dimm", "dimm1", memdev="mem1")
        assert run_io(vm, ("out", 0xA00, 4, 0), ("in", 0xA14, 1, 0),
                      ("in", 0xAFE0, 2, 0)) == [0, 0]
