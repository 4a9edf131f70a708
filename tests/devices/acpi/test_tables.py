"""The pc tables against real QEMU 7.2's (cached in data/, see data/dump_qemu_tables.py).

QEMU's tables were installed by SeaBIOS, so they carry absolute pointers: ours
are built for the same base (the FACS address QEMU's FACP names) and then
compared.  Our DSDT holds only the memory-hotplug AML and PCI0's ``_CRS`` of
QEMU's, so its size (and with it the addresses after it) differs; everything
else is compared byte for byte or through ``iasl -d``.
"""

from __future__ import annotations

import struct

import pytest
from acpi_testdata import CONFIGS, memory_hotplug_part, qemu_tables

from devices.acpi.tables import (
    BLOB_ORDER,
    build_blob,
    build_tables,
    memory_hotplug_aml,
    pci0_crs,
    srat_memory_entries,
)
from plugins import aml

GiB = 1 << 30


def ours_for(vm_for, config: str) -> tuple[dict[str, bytes], dict[str, bytes]]:
    qemu = qemu_tables(config)
    base = struct.unpack_from("<I", qemu["FACP"], 36)[0]
    return build_tables(vm_for(CONFIGS[config]).machine, base=base), qemu


def test_same_table_set_as_qemu(vm_for, config):
    ours, qemu = ours_for(vm_for, config)
    assert sorted(ours) == sorted(qemu)


@pytest.mark.parametrize("signature", ["FACS", "FACP", "APIC", "HPET", "SRAT", "WAET"])
def test_tables_equal_qemu_byte_for_byte(vm_for, config, signature):
    ours, qemu = ours_for(vm_for, config)
    assert ours.get(signature) == qemu.get(signature)


def test_qemu_lays_out_the_blob_in_our_order(vm_for, config):
    """QEMU's tables sit back to back from the FACS in BLOB_ORDER, and its RSDT
    (and RSDP, FACP) point where that layout puts them; ours are linked alike."""
    ours, qemu = ours_for(vm_for, config)
    for tables in (qemu, ours):
        address, at = struct.unpack_from("<I", tables["FACP"], 36)[0], {}
        for signature in BLOB_ORDER:
            if signature in tables:
                at[signature] = address
                address += len(tables[signature])
        listed = [s for s in BLOB_ORDER if s in at and s not in ("FACS", "DSDT", "RSDT")]
        assert [a for (a,) in struct.iter_unpack("<I", tables["RSDT"][36:])] == [
            at[s] for s in listed]
        assert struct.unpack_from("<I", tables["FACP"], 40)[0] == at["DSDT"]
        assert struct.unpack_from("<I", tables["RSDP"], 16)[0] == at["RSDT"]
    # headers and RSDP agree but for checksums and addresses
    assert ours["RSDT"][:9] == qemu["RSDT"][:9] and ours["RSDT"][10:36] == qemu["RSDT"][10:36]
    assert ours["RSDP"][:8] + ours["RSDP"][9:16] == qemu["RSDP"][:8] + qemu["RSDP"][9:16]


def test_checksums_and_links(vm_for, config):
    machine = vm_for(CONFIGS[config]).machine
    blob = build_blob(machine, base=0x7FFE0000)
    for signature in blob.offsets:
        data = blob.table(signature)
        assert data[:4].decode() == signature
        assert struct.unpack_from("<I", data, 4)[0] == len(data)
        if signature != "FACS":
            assert sum(data) % 256 == 0, signature
    assert sum(blob.rsdp) % 256 == 0 and blob.rsdp[:8] == b"RSD PTR "
    assert struct.unpack_from("<I", blob.rsdp, 16)[0] == blob.address("RSDT")
    facp = blob.table("FACP")
    assert struct.unpack_from("<II", facp, 36) == (blob.address("FACS"), blob.address("DSDT"))
    entries = [a for (a,) in struct.iter_unpack("<I", blob.table("RSDT")[36:])]
    expected = [s for s in BLOB_ORDER if s in blob.offsets and s not in ("FACS", "DSDT", "RSDT")]
    assert entries == [blob.address(s) for s in expected]
    assert list(blob.offsets) == [s for s in BLOB_ORDER if s in blob.offsets]
    assert blob.address("FACS") % 64 == 0


def test_base_must_keep_the_facs_aligned(vm_for):
    with pytest.raises(ValueError, match="aligned"):
        build_blob(vm_for("1G").machine, base=0x1010)


def test_memory_hotplug_aml_is_qemus_byte_for_byte(vm_for, config):
    machine = vm_for(CONFIGS[config]).machine
    dsdt = qemu_tables(config)["DSDT"]
    ours = memory_hotplug_aml(machine.ram_slots)
    if machine.ram_slots:
        assert ours and ours in dsdt
    else:
        assert ours == b"" and aml.name_string("\\_SB.MHPC") not in dsdt
    assert pci0_crs(machine) in dsdt


@pytest.mark.parametrize(("memory", "expected"), [
    ("1G,slots=3,maxmem=4G", [(0, 0xA0000, 1), (0x100000, 0x3FF00000, 1), (0, 0, 0),
                              (0x100000000, 0x180000000, 3)]),
    ("1G,maxmem=2G", [(0, 0xA0000, 1), (0x100000, 0x3FF00000, 1), (0, 0, 0),
                      (0x100000000, 0x40000000, 3)]),
    ("4G,slots=2,maxmem=8G", [(0, 0xA0000, 1), (0x100000, 0xBFF00000, 1),
                              (0x100000000, 0x40000000, 1), (0x140000000, 0x180000000, 3)]),
])
def test_srat_memory_entries_of_the_spec(vm_for, memory, expected):
    """The SRAT memory entries QEMU 7.2 builds, including the slot-less maxmem case."""
    entries = srat_memory_entries(vm_for(memory).machine)
    assert [(e.base, e.length, e.flags) for e in entries] == expected
    assert {e.proximity for e in entries} == {0}


def test_slotless_maxmem_has_srat_but_no_memory_hotplug_aml(vm_for):
    tables = build_tables(vm_for("1G,maxmem=2G").machine)
    assert "SRAT" in tables and len(tables["SRAT"]) == 224
    assert aml.name_string("\\_SB.MHPC") not in tables["DSDT"]
    assert b"_E03" not in tables["DSDT"]


def test_no_srat_without_numa_node(vm_for):
    assert "SRAT" not in build_tables(vm_for("1G").machine)


def test_building_does_not_change_the_machine(vm_for):
    vm = vm_for("1G,slots=3,maxmem=4G")
    first = build_tables(vm.machine)
    assert build_tables(vm.machine) == first
    vm.object_add("memory-backend-ram", "m1", size=GiB)
    vm.device_add("pc-dimm", "d1", memdev="m1")
    # DIMM state lives in the I/O registers only: the tables do not change
    assert build_tables(vm.machine) == first


# -- iasl ---------------------------------------------------------------------------


def test_iasl_disassembles_our_dsdt_and_srat_cleanly(vm_for, config, disassemble):
    tables = build_tables(vm_for(CONFIGS[config]).machine)
    dsl = disassemble(tables["DSDT"], "DSDT")
    assert dsl.startswith('DefinitionBlock ("", "DSDT", 1, "BOCHS ", "BXPC    ", 0x00000001)')
    if "SRAT" in tables:
        disassemble(tables["SRAT"], "SRAT")


def test_memory_hotplug_disassembly_equals_qemus(vm_for, config, disassemble):
    ours = disassemble(build_tables(vm_for(CONFIGS[config]).machine)["DSDT"])
    qemu = disassemble(qemu_tables(config)["DSDT"])
    if CONFIGS[config] == "1G":
        for text in (ours, qemu):
            assert "MHPD" not in text and "MHPC" not in text and "_E03" not in text
        return
    assert memory_hotplug_part(ours) == memory_hotplug_part(qemu)
    assert "Name (MDNR, 0x03)" in ours or "Name (MDNR, 0x02)" in ours


def test_pci0_crs_disassembly_equals_qemus(vm_for, config, disassemble):
    def crs(dsl: str) -> str:
        start = dsl.index("    Scope (\\_SB.PCI0)\n    {\n        Name (_CRS,")
        return dsl[start:dsl.index("        })\n", start)]

    ours = disassemble(build_tables(vm_for(CONFIGS[config]).machine)["DSDT"])
    assert crs(ours) == crs(disassemble(qemu_tables(config)["DSDT"]))


def test_srat_disassembly_equals_qemus(vm_for, config, disassemble):
    ours, qemu = ours_for(vm_for, config)
    if "SRAT" not in qemu:
        assert "SRAT" not in ours
        return
    assert disassemble(ours["SRAT"], "SRAT") == disassemble(qemu["SRAT"], "SRAT")


def test_256_slots(vm_for, disassemble):
    """The largest slot count: MP00..MPFF, a container needing a 3-byte PkgLength."""
    tables = build_tables(vm_for("1G,slots=256,maxmem=2G").machine)
    dsl = disassemble(tables["DSDT"])
    assert "Device (MPFF)" in dsl and "Name (_UID, \"0xFF\")" in dsl
    assert "Name (MDNR, 0x0100)" in dsl
    assert dsl.count("Notify (MP") == 256
