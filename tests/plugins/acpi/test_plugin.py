"""The ACPI tables in guest memory: placed like a firmware would, kept current,
dumped with -dump-acpi, returned by x-query-acpi-tables, and found by guest code."""

from __future__ import annotations

import base64
import io
import shutil
import struct
import subprocess

import pytest
from guest_asm import assemble

from devices.acpi.tables import build_blob
from plugins.acpi.plugin import RSDP_ADDRESS, table_list, tables_of
from plugins.monitor import VmControl
from pyqom.cli import main
from pyqom.vm import VM
from qom import complete_unplug

GiB = 1 << 30

#: x86-64 (GNU as, Intel syntax): find the RSDP in 0xE0000-0xFFFFF, follow the
#: RSDT to the SRAT, and return the first hot-pluggable memory range in rax/rbx.
FIND_HOTPLUG_RANGE = r"""
    .intel_syntax noprefix
    .code64
    mov rsi, 0xE0000
    mov rdx, 0x2052545020445352          # "RSD PTR " as a little-endian qword
find_rsdp:
    cmp qword ptr [rsi], rdx
    je found_rsdp
    add rsi, 16
    cmp rsi, 0x100000
    jb find_rsdp
    jmp fail
found_rsdp:
    mov edi, dword ptr [rsi + 16]        # RsdtAddress
    mov ecx, dword ptr [rdi + 4]         # RSDT length
    lea r8, [rdi + rcx]                  # end of the RSDT
    lea r9, [rdi + 36]                   # first entry
next_table:
    cmp r9, r8
    jae fail
    mov r10d, dword ptr [r9]
    add r9, 4
    cmp dword ptr [r10], 0x54415253      # "SRAT"
    jne next_table
    mov ecx, dword ptr [r10 + 4]
    lea r11, [r10 + rcx]                 # end of the SRAT
    lea r12, [r10 + 48]                  # first subtable
next_entry:
    cmp r12, r11
    jae fail
    movzx eax, byte ptr [r12 + 1]        # subtable length
    cmp byte ptr [r12], 1                # memory affinity?
    jne skip
    test dword ptr [r12 + 28], 2         # hot-pluggable?
    jz skip
    mov rax, qword ptr [r12 + 8]
    mov rbx, qword ptr [r12 + 16]
    hlt
skip:
    add r12, rax
    jmp next_entry
fail:
    mov rax, -1
    hlt
"""


@pytest.fixture
def vm():
    machine = VM("1G", slots=3, maxmem="4G", autoload=False)
    yield machine
    machine.close()


def test_tables_are_in_guest_memory_as_built(vm):
    blob = tables_of(vm.machine)
    assert blob is not None
    assert vm.read(RSDP_ADDRESS, 8) == b"RSD PTR "
    assert vm.read(blob.base, len(blob.data)) == blob.data
    assert blob == build_blob(vm.machine, base=blob.base)


def test_guest_code_walks_rsdp_rsdt_srat_to_the_hotplug_range(vm, tmp_path):
    code = assemble(FIND_HOTPLUG_RANGE, tmp_path)
    result = vm.run(code, load_at=0x1000)
    assert (result.rax, result.rbx) == (0x100000000, 0x180000000)


def test_tables_follow_plug_and_unplug(vm):
    blob = tables_of(vm.machine)
    vm.write(blob.base, bytes(64))          # a guest scribbles over its tables
    vm.write(RSDP_ADDRESS, bytes(8))
    vm.object_add("memory-backend-ram", "mem1", size=GiB)
    dimm = vm.device_add("pc-dimm", "dimm1", memdev="mem1")
    after_plug = tables_of(vm.machine)
    assert after_plug == build_blob(vm.machine, base=blob.base)
    assert vm.read(after_plug.base, len(after_plug.data)) == after_plug.data
    assert vm.read(RSDP_ADDRESS, 8) == b"RSD PTR "
    vm.write(blob.base, bytes(64))
    complete_unplug(dimm)
    assert vm.read(blob.base, len(blob.data)) == blob.data


def test_no_acpi_no_tables():
    with VM("1G", slots=3, maxmem="4G", autoload=False, acpi=False) as machine:
        assert tables_of(machine.machine) is None
        assert machine.read(RSDP_ADDRESS, 8) == bytes(8)


def test_x_query_acpi_tables(vm):
    control = VmControl(vm)
    try:
        tables = control.execute("x-query-acpi-tables")
    finally:
        control.close()
    blob = tables_of(vm.machine)
    assert [(t["signature"], base64.b64decode(t["data"])) for t in tables] == table_list(blob)
    assert [t["signature"] for t in tables][:3] == ["RSDP", "FACS", "DSDT"]
    assert "SRAT" in [t["signature"] for t in tables]


def test_dump_acpi_writes_sig_dat_files(tmp_path, monkeypatch):
    monkeypatch.setenv("PYQOM_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setattr("pyqom.cli.serve", lambda vm, line, servers, err, **options: 0)
    out, err = io.StringIO(), io.StringIO()
    status = main(["-m", "1G,slots=3,maxmem=4G", "-dump-acpi", str(tmp_path / "acpi")],
                  stdout=out, stderr=err)
    assert (status, err.getvalue()) == (0, "")
    names = sorted(p.name for p in (tmp_path / "acpi").iterdir())
    assert names == sorted(["RSDP.dat", "FACS.dat", "DSDT.dat", "FACP.dat", "APIC.dat",
                            "HPET.dat", "SRAT.dat", "WAET.dat", "RSDT.dat"])
    dsdt = (tmp_path / "acpi" / "DSDT.dat").read_bytes()
    assert dsdt[:4] == b"DSDT" and sum(dsdt) % 256 == 0
    if shutil.which("iasl"):
        done = subprocess.run(["iasl", "-d", "DSDT.dat"], cwd=tmp_path / "acpi",
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "MHPC" in (tmp_path / "acpi" / "DSDT.dsl").read_text()


def test_rsdp_points_at_the_rsdt(vm):
    blob = tables_of(vm.machine)
    rsdt_address = struct.unpack_from("<I", vm.read(RSDP_ADDRESS + 16, 4))[0]
    assert rsdt_address == blob.address("RSDT")
    assert vm.read(rsdt_address, 4) == b"RSDT"


def test_tiny_ram_gets_tables_but_not_in_guest_memory():
    with VM("100k", autoload=False) as machine:
        blob = tables_of(machine.machine)
        assert blob is not None and blob.base == 0
        assert machine.read(0, 8) == bytes(8)
