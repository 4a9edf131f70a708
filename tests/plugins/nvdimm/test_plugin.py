"""The nvdimm plugin on pyqom: the DSM port protocol driven by real guest ``OUT``s,
the FIT, hotplug, rollback and blocking.

The answers QEMU 7.2 gives for the same command lines and QMP steps are
compared in ``tests/conformance/test_nvdimm_vs_qemu.py``; the guest-side
transcript in ``tests/conformance/test_guest.py``.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

import qom
from plugins.acpi.plugin import memory_hotplug_block
from plugins.nvdimm.acpi import (
    MAX_LABEL_TRANSFER,
    STATUS_FIT_CHANGED,
    STATUS_INVALID,
    STATUS_NO_MEMORY_DEVICE,
    STATUS_SUCCESS,
    STATUS_UNSUPPORTED,
)
from plugins.nvdimm.plugin import label_bytes, state_of
from plugins.services import ACPI, services_of
from pyqom.vm import VM

M, K = 1 << 20, 1 << 10
NV = ["-M", "pc,nvdimm=on", "-m", "1G,slots=2,maxmem=4G"]


def _tables(vm: VM) -> dict[str, bytes]:
    return dict(services_of(vm.machine).get(ACPI).tables())


def _device(vm: VM, name: str) -> qom.Object | None:
    return vm.tree.resolve(f"/machine/peripheral/{name}")[0]


def dsm_page(vm: VM) -> int:
    """``MEMA`` of the NVDIMM SSDT: where the guest puts its DSM requests."""
    ssdt = _tables(vm)["SSDT"]
    at = ssdt.rfind(b"\x08MEMA\x0c")
    assert at > 0
    return int(struct.unpack_from("<I", ssdt, at + 6)[0])


def call_dsm(vm: VM, handle: int, function: int, arguments: bytes = b"",
             revision: int = 1) -> tuple[int, bytes]:
    """Write a request into the DSM page, then let guest code write the page's
    address to port 0x0A18 (``mov eax, page; mov dx, 0x0a18; out dx, eax; hlt``);
    returns the answer's length field and the data after it."""
    page = dsm_page(vm)
    vm.write(page, struct.pack("<III", handle, revision, function) + arguments)
    code = b"\xb8" + struct.pack("<I", page) + b"\x66\xba\x18\x0a\xef\xf4"
    vm.run(code, load_at=0x1000)
    length = struct.unpack("<I", vm.read(page, 4))[0]
    return length, vm.read(page + 4, max(length - 4, 0))


def status(data: bytes) -> int:
    return int(struct.unpack_from("<I", data)[0])


@pytest.fixture
def backing(tmp_path: Path) -> Path:
    path = tmp_path / "pmem"
    path.write_bytes(bytes(128 * M))
    return path


def file_vm(backing: Path, *extra: str) -> VM:
    return VM.from_args([*NV, "-object", f"memory-backend-file,id=f1,size=128M,share=on,"
                         f"mem-path={backing}",
                         "-device", "nvdimm,id=nv1,memdev=f1,label-size=128K", *extra],
                        autoload=False)


def test_label_protocol_through_the_port(backing: Path) -> None:
    with file_vm(backing) as vm:
        length, data = call_dsm(vm, 1, 0)
        assert (length, status(data)) == (8, 0x1 | 1 << 4 | 1 << 5 | 1 << 6)
        length, data = call_dsm(vm, 1, 4)
        assert length == 16
        assert struct.unpack("<III", data) == (STATUS_SUCCESS, 128 * K, MAX_LABEL_TRANSFER)
        record = bytes(range(1, 65))
        length, data = call_dsm(vm, 1, 6, struct.pack("<II", 256, len(record)) + record)
        assert (length, status(data)) == (8, STATUS_SUCCESS)
        length, data = call_dsm(vm, 1, 5, struct.pack("<II", 256, len(record)))
        assert length == 8 + len(record) and status(data) == STATUS_SUCCESS
        assert data[4:] == record
        assert label_bytes(_device(vm, "nv1"), 256, 64) == record
    # The label area is the end of the backend: the write is in the file there.
    with backing.open("rb") as file:
        file.seek(128 * M - 128 * K + 256)
        assert file.read(64) == record


def test_label_protocol_refusals(backing: Path) -> None:
    with file_vm(backing) as vm:
        assert status(call_dsm(vm, 1, 5, struct.pack("<II", 128 * K - 4, 8))[1]) \
            == STATUS_INVALID
        assert status(call_dsm(vm, 1, 5, struct.pack("<II", 0, MAX_LABEL_TRANSFER + 4))[1]) \
            == STATUS_INVALID
        assert status(call_dsm(vm, 1, 5, struct.pack("<II", 0xFFFFFFFF, 2))[1]) \
            == STATUS_INVALID
        assert status(call_dsm(vm, 1, 7)[1]) == STATUS_UNSUPPORTED
        assert status(call_dsm(vm, 1, 4, revision=2)[1]) == STATUS_UNSUPPORTED
        assert status(call_dsm(vm, 2, 4)[1]) == STATUS_NO_MEMORY_DEVICE
        assert call_dsm(vm, 2, 0) == (8, bytes(4))          # no such NVDIMM: no functions
        assert call_dsm(vm, 0, 0) == (8, bytes(4))          # the root: function 0 only
        assert status(call_dsm(vm, 0, 1)[1]) == STATUS_UNSUPPORTED


def test_without_a_label_only_function_0(tmp_path: Path) -> None:
    with VM.from_args([*NV, "-object", "memory-backend-ram,id=m1,size=128M",
                       "-device", "nvdimm,id=nv1,memdev=m1"], autoload=False) as vm:
        assert call_dsm(vm, 1, 0) == (8, bytes(4))
        assert status(call_dsm(vm, 1, 4)[1]) == STATUS_UNSUPPORTED
        (entry,) = vm.query_memory_devices()
        assert entry["type"] == "nvdimm" and entry["data"]["size"] == 128 * M


def test_read_fit_is_the_nfit_and_restarts_after_a_plug(backing: Path) -> None:
    with file_vm(backing) as vm:
        assert call_dsm(vm, 0x10000, 0) == (8, struct.pack("<I", 0x3))
        length, data = call_dsm(vm, 0x10000, 1, struct.pack("<I", 0))
        assert status(data) == STATUS_SUCCESS and length == 8 + 56 + 48 + 80
        assert data[4:] == _tables(vm)["NFIT"][40:]
        vm.object_add("memory-backend-ram", "m2", size=128 * M)
        vm.device_add("nvdimm", "nv2", memdev="m2")
        # A read that goes on after the FIT changed is told so, and starts again.
        assert status(call_dsm(vm, 0x10000, 1, struct.pack("<I", 8))[1]) == STATUS_FIT_CHANGED
        _, data = call_dsm(vm, 0x10000, 1, struct.pack("<I", 0))
        assert status(data) == STATUS_SUCCESS and len(data[4:]) == 2 * (56 + 48 + 80)
        assert status(call_dsm(vm, 0x10000, 1, struct.pack("<I", 8))[1]) == STATUS_SUCCESS
        assert status(call_dsm(vm, 0x10000, 1, struct.pack("<I", 9999))[1]) == STATUS_INVALID


def test_hotplug_raises_gpe_bit_4_and_leaves_the_memory_hotplug_block_alone() -> None:
    with VM.from_args(NV, autoload=False) as vm:
        vm.object_add("memory-backend-ram", "m1", size=128 * M)
        vm.device_add("nvdimm", "nv1", memdev="m1")
        block = memory_hotplug_block(vm.machine)
        assert block is not None
        assert block.gpe.status[0] == 1 << 4
        assert not any(slot.is_enabled or slot.is_inserting for slot in block.slots)
        with pytest.raises(qom.QomError, match=r"^nvdimm device hot unplug is not supported"
                                               r" yet\.$"):
            vm.device_del("nv1")
        assert block.gpe.status[0] == 1 << 4


def test_a_failed_plug_leaves_the_fit_and_tables_as_they_were() -> None:
    with VM.from_args([*NV, "-object", "memory-backend-ram,id=m1,size=128M",
                       "-device", "nvdimm,id=nv1,memdev=m1"], autoload=False) as vm:
        before = _tables(vm)
        vm.object_add("memory-backend-ram", "m2", size=128 * M)
        with pytest.raises(qom.QomError, match=r"^slot 0 is busy$"):
            vm.device_add("nvdimm", "nv2", memdev="m2", slot=0)
        with pytest.raises(qom.QomError, match=r"is required at least 0x20000"):
            vm.device_add("nvdimm", "nv2", memdev="m2", label_size=4096)
        assert _tables(vm) == before
        assert _device(vm, "nv2") is None
        vm.device_add("nvdimm", "nv2", memdev="m2")
        assert _tables(vm)["NFIT"] != before["NFIT"]


def test_label_size_is_fixed_once_the_region_is_prepared() -> None:
    with VM.from_args([*NV, "-object", "memory-backend-ram,id=m1,size=128M",
                       "-device", "nvdimm,id=nv1,memdev=m1,label-size=256K"],
                      autoload=False) as vm:
        nv1 = _device(vm, "nv1")
        assert state_of(nv1).pmem_size == 128 * M - 2 * M   # aligned down to 2 MiB
        with pytest.raises(qom.QomError, match=r"^cannot change property value$"):
            vm.qom_set("/machine/peripheral/nv1", "label-size", 512 * K)


def test_blocked_nvdimm_is_an_unknown_type(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYQOM_DISABLED_PLUGINS", "plugins.nvdimm.plugin")
    with VM.from_args(NV, autoload=False) as vm:
        assert "nvdimm" not in vm.tree.registry
        vm.object_add("memory-backend-ram", "m1", size=128 * M)
        with pytest.raises(qom.QomError, match=r"^'nvdimm' is not a valid device model name$"):
            vm.device_add("nvdimm", "nv1", memdev="m1")
        # The machine keeps its nvdimm switch; nothing describes NVDIMMs.
        assert vm.qom_get("/machine", "nvdimm") is True
        assert "SSDT" not in _tables(vm) and "NFIT" not in _tables(vm)
    with pytest.raises(qom.QomError, match=r"^'nvdimm' is not a valid device model name$"):
        VM.from_args([*NV, "-object", "memory-backend-ram,id=m1,size=128M",
                      "-device", "nvdimm,memdev=m1"], autoload=False)


def test_a_label_write_to_a_read_only_backend_is_refused(backing: Path) -> None:
    """QEMU 7.2 stores into the read-only mapping (and crashes); pyqom answers
    "invalid input" and the file stays as it was."""
    with VM.from_args([*NV, "-object", f"memory-backend-file,id=f1,size=128M,readonly=on,"
                       f"mem-path={backing}",
                       "-device", "nvdimm,id=nv1,memdev=f1,label-size=128K,unarmed=on"],
                      autoload=False) as vm:
        length, data = call_dsm(vm, 1, 6, struct.pack("<II", 0, 4) + b"nope")
        assert (length, status(data)) == (8, STATUS_INVALID)
        assert status(call_dsm(vm, 1, 5, struct.pack("<II", 0, 4))[1]) == STATUS_SUCCESS
    assert backing.read_bytes()[-128 * K:-128 * K + 4] == bytes(4)


def test_without_pc_dimm_there_is_no_nvdimm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYQOM_DISABLED_PLUGINS", "devices.pc_dimm")
    with VM.from_args(NV, autoload=False) as vm:
        assert "pc-dimm" not in vm.tree.registry and "nvdimm" not in vm.tree.registry


def test_a_page_outside_ram_is_ignored() -> None:
    """The guest names a page where there is no RAM: QEMU reads unassigned memory
    and its answer goes nowhere; nothing happens here either, and the guest goes on."""
    with VM.from_args([*NV, "-object", "memory-backend-ram,id=m1,size=128M",
                       "-device", "nvdimm,id=nv1,memdev=m1"], autoload=False) as vm:
        code = b"\xb8" + struct.pack("<I", 0xFEB00000) + b"\x66\xba\x18\x0a\xef\xf4"
        vm.run(code, load_at=0x1000)
        assert call_dsm(vm, 1, 0) == (8, bytes(4))       # still answers a good page
