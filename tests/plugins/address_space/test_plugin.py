"""The machine's guest address space follows plug and unplug: real Unicorn, real backends."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

import qom
from plugins import hookimpl
from plugins.address_space.engine import GuestFault
from plugins.address_space.plugin import address_space_of
from pyqom.vm import VM

GiB = 1 << 30


def store_loop(base: int, qwords: int, pattern: int) -> bytes:
    """x86-64: for (i = 0; i < qwords; i++) ((u64 *)base)[i] = pattern + i; hlt."""
    return b"".join([
        b"\x48\xbf" + struct.pack("<Q", base),      # mov rdi, base
        b"\x48\xb8" + struct.pack("<Q", pattern),   # mov rax, pattern
        b"\x48\xb9" + struct.pack("<Q", qwords),    # mov rcx, qwords
        b"\x48\x89\x07",                            # loop: mov [rdi], rax
        b"\x48\x83\xc7\x08",                        #       add rdi, 8
        b"\x48\xff\xc0",                            #       inc rax
        b"\x48\xff\xc9",                            #       dec rcx
        b"\x75\xf1",                                #       jnz loop
        b"\xf4",                                    # hlt
    ])


def expected(qwords: int, pattern: int) -> bytes:
    return b"".join(struct.pack("<Q", pattern + i) for i in range(qwords))


@pytest.fixture
def vm():
    machine = VM("1G", slots=3, maxmem="4G", autoload=False)
    yield machine
    machine.close()


def test_main_ram_is_mapped_below_4g(vm):
    names = [(m.name, m.gpa, m.size) for m in address_space_of(vm.machine).mappings()]
    assert names == [("ram-below-4g", 0, GiB)]
    vm.write(0x2000, b"low ram")
    assert vm.machine.ram_backend.host_memory.view[0x2000:0x2007].tobytes() == b"low ram"


def test_ram_above_4g_after_the_split():
    with VM("4G", slots=2, maxmem="8G", autoload=False) as big:
        layout = [(m.name, m.gpa, m.size) for m in big.address_space.mappings()]
        assert layout == [("ram-below-4g", 0, 3 * GiB), ("ram-above-4g", 4 * GiB, GiB)]
        big.write(4 * GiB, b"above")
        view = big.machine.ram_backend.host_memory.view
        assert view[3 * GiB: 3 * GiB + 5].tobytes() == b"above"


def test_guest_code_writes_into_a_hotplugged_dimm(vm):
    vm.object_add("memory-backend-ram", "mem1", size=GiB)
    vm.device_add("pc-dimm", "dimm1", memdev="mem1")
    result = vm.run(store_loop(0x100000000, 512, 0xA5A5_0000_0000_0000), load_at=0x1000)
    assert result.reason == "hlt"
    backend = vm.tree.objects.child("mem1")
    assert backend.host_memory.view[:4096].tobytes() == expected(512, 0xA5A5_0000_0000_0000)


def test_after_unplug_a_guest_access_faults(vm):
    vm.object_add("memory-backend-ram", "mem1", size=GiB)
    dimm = vm.device_add("pc-dimm", "dimm1", memdev="mem1")
    vm.run(store_loop(0x100000000, 1, 7), load_at=0x1000)
    qom.complete_unplug(dimm)
    assert [m.name for m in vm.address_space.mappings()] == ["ram-below-4g"]
    with pytest.raises(GuestFault) as fault:
        vm.run(store_loop(0x100000000, 1, 7), load_at=0x1000)
    assert fault.value.address == 0x100000000
    vm.object_del("mem1")  # the backend is free again


def test_shared_file_backend_receives_guest_writes(vm, tmp_path: Path):
    path = tmp_path / "dimm.img"
    vm.object_add("memory-backend-file", "f1", size=256 << 20, mem_path=str(path), share=True)
    vm.device_add("pc-dimm", "dimm1", memdev="f1")
    vm.run(store_loop(0x100000000, 64, 0x1234), load_at=0x1000)
    qom.complete_unplug(vm.tree.container("/machine/peripheral").child("dimm1"))
    vm.object_del("f1")
    assert path.read_bytes()[:512] == expected(64, 0x1234)


class FailingPlug:
    """A plugin whose plug step fails after the address space mapped the DIMM."""

    @hookimpl(trylast=True)
    def qom_device_plug_announce(self, machine, device, undo):
        raise qom.QomError("plug refused by a test plugin")


def test_failed_plug_leaves_no_mapping_slot_or_busy_flag():
    with VM("1G", slots=3, maxmem="4G", autoload=False, plugins=[FailingPlug()]) as vm:
        vm.object_add("memory-backend-ram", "mem1", size=GiB)
        with pytest.raises(qom.QomError, match="plug refused by a test plugin"):
            vm.device_add("pc-dimm", "dimm1", memdev="mem1")
        assert [m.name for m in vm.address_space.mappings()] == ["ram-below-4g"]
        assert vm.query_memory_devices() == []
        assert not vm.tree.objects.child("mem1").is_mapped()
        assert vm.tree.container("/machine/peripheral").child("dimm1") is None
        vm.object_del("mem1")


def test_seed_scenario_cold_plugged_file_dimms(tmp_path: Path):
    """-m 6G,slots=4,maxmem=10G with a 1 GiB and a 256 MiB file-backed DIMM on the command line."""
    args = ["-m", "6G,slots=4,maxmem=10G",
            "-object", f"memory-backend-file,id=mem1,size=1G,mem-path={tmp_path / 'a'},share=on",
            "-object", f"memory-backend-file,id=mem2,size=256M,mem-path={tmp_path / 'b'},share=on",
            "-device", "pc-dimm,id=dimm1,memdev=mem1",
            "-device", "pc-dimm,id=dimm2,memdev=mem2"]
    with VM.from_args(args, autoload=False) as vm:
        devices = [(d["data"]["id"], d["data"]["addr"], d["data"]["slot"], d["data"]["hotplugged"])
                   for d in vm.query_memory_devices()]
        assert devices == [("dimm1", 7516192768, 0, False), ("dimm2", 0x200000000, 1, False)]
        assert vm.qom_get("/machine", "device-memory-region-size") == 8589934592
        vm.run(store_loop(0x200000000, 8, 99), load_at=0x1000)
        assert (tmp_path / "b").read_bytes()[:64] == expected(8, 99)
