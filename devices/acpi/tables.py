"""The ACPI tables of QEMU 7.2's ``pc`` machine, built as bytes by pure functions.

:func:`build_tables` is the entry point: ``build_tables(machine)`` returns
``{signature: bytes}`` for RSDP, RSDT, FACP, FACS, DSDT, APIC, HPET, SRAT
(only with a NUMA node) and WAET, each with its checksum
filled and its pointers set, as a firmware leaves them.  :func:`build_blob`
gives the same tables as one contiguous image (QEMU's fw_cfg
``etc/acpi/tables`` order) plus the RSDP, which is what a placement step
copies into guest memory.

What is reproduced from 7.2 (checked against real QEMU in
``tests/plugins/acpi``):

* the table order and layout of the ``etc/acpi/tables`` blob: FACS, DSDT,
  FACP, APIC, HPET, [SRAT,] [plugins' board tables: the NVDIMM SSDT and
  NFIT,] WAET, [other plugin tables,] RSDT back to back; the RSDT lists them
  all but FACS and DSDT; RSDP revision 0 points at the RSDT;
* FACP (revision 1, PIIX4 PM blocks), FACS, APIC (one CPU), HPET, WAET byte
  for byte;
* SRAT byte for byte;
* in the DSDT, the memory-hotplug AML (``\\_SB.PCI0.MHPD``, ``\\_SB.MHPC`` and
  its methods and ``MPxx`` devices, ``\\_GPE._E03``) byte
  for byte, and ``\\_SB.PCI0._CRS`` with the 32- and 64-bit PCI holes.

What the DSDT leaves out: everything else QEMU's pc DSDT holds (ISA devices,
PCI slots and their hotplug, CPU devices and their hotplug AML, S-states...).
It is a valid table with the scopes the memory-hotplug AML needs.

The functions only read the machine (:class:`devices.machine.PcMachine`):
RAM split, slots, device-memory region.  Nothing here changes state.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final

import attrs

from devices.acpi import MEMORY_HOTPLUG_IO_BASE, MEMORY_HOTPLUG_IO_LEN
from devices.machine import PcMachine, pci_hole64_start
from devices.numa import MAX_NODES
from plugins import aml
from qom.reprs import FieldsRepr, FieldsValue

# -- constants of QEMU 7.2's pc (hw/i386/acpi-build.c, hw/acpi/*) ----------------

OEM_ID: Final = b"BOCHS "
OEM_TABLE_ID: Final = b"BXPC    "
OEM_REVISION: Final = 1
CREATOR_ID: Final = b"BXPC"
CREATOR_REVISION: Final = 1
HEADER_SIZE: Final = 36

#: AML path of the memory-hotplug resource device and its I/O region
MEMORY_HOTPLUG_DEVICE: Final = "\\_SB.PCI0.MHPD"
MEMORY_HOTPLUG_REGION: Final = "\\_SB.PCI0.MHPD.HPMR"
#: AML path of the DIMM container
MEMORY_DEVICES_CONTAINER: Final = "\\_SB.MHPC"
MEMORY_HOTPLUG_HANDLER: Final = "\\_GPE._E03"

# PIIX4 power management, as the pc FADT reports it
SCI_INT: Final = 9
SMI_CMD: Final = 0xB2
ACPI_ENABLE: Final = 0xF1
ACPI_DISABLE: Final = 0xF0
PM_IO_BASE: Final = 0x600
GPE0_BLK: Final = 0xAFE0
GPE0_BLK_LEN: Final = 4
RTC_CENTURY: Final = 0x32
#: FADT flags: WBINVD, PROC_C1, SLP_BUTTON, RTC_S4, RESET_REG_SUP-less pc (0x80a5)
FADT_FLAGS: Final = 0x80A5
P_LVL_LAT_DISABLED: Final = 0x0FFF

APIC_DEFAULT_ADDRESS: Final = 0xFEE00000
IO_APIC_ADDRESS: Final = 0xFEC00000
HPET_ADDRESS: Final = 0xFED00000
#: the HPET's event-timer block id (vendor 0x8086, 3 comparators, legacy capable)
HPET_BLOCK_ID: Final = 0x8086A201
#: ISA IRQs the pc MADT overrides: IRQ0 -> GSI2 (edge), PCI IRQs 5, 9, 10, 11 level/high
_PCI_ISA_IRQS: Final = (5, 9, 10, 11)
_ISO_LEVEL_ACTIVE_HIGH: Final = 0x0D

HOLE_640K_START: Final = 640 * 1024
HOLE_640K_END: Final = 1024 * 1024
FOUR_GIB: Final = 1 << 32
GIB: Final = 1 << 30
PCI_HOLE32_END: Final = IO_APIC_ADDRESS  # the 32-bit window ends below the IO-APIC
PCI_HOLE64_SIZE: Final = 1 << 31

MEM_AFFINITY_NOFLAGS: Final = 0
MEM_AFFINITY_ENABLED: Final = 1
MEM_AFFINITY_HOTPLUGGABLE: Final = 2

#: the FACS must be 64-byte aligned; QEMU puts it first in the blob for that reason
FACS_ALIGN: Final = 64

#: ``etc/acpi/tables`` order; SRAT only when there is a NUMA node
BLOB_ORDER: Final = ("FACS", "DSDT", "FACP", "APIC", "HPET", "SRAT", "SLIT", "HMAT", "WAET",
                     "RSDT")


# -- framing -----------------------------------------------------------------------


def checksum(data: bytes | bytearray) -> int:
    """The byte that makes ``data`` (with a 0 in its checksum slot) sum to 0 mod 256."""
    return -sum(data) & 0xFF


def table(signature: bytes, revision: int, body: bytes,
          oem_table_id: bytes = OEM_TABLE_ID) -> bytes:
    """A system description table: QEMU's 36-byte header, ``body``, checksum filled."""
    length = HEADER_SIZE + len(body)
    header = struct.pack("<4sIBB6s8sI4sI", signature, length, revision, 0, OEM_ID,
                         oem_table_id, OEM_REVISION, CREATOR_ID, CREATOR_REVISION)
    data = bytearray(header + body)
    data[9] = checksum(data)
    return bytes(data)


def rsdp(rsdt_address: int) -> bytes:
    """The ACPI 1.0 RSDP (revision 0, 20 bytes) pointing at the RSDT."""
    data = bytearray(struct.pack("<8sB6sBI", b"RSD PTR ", 0, OEM_ID, 0, rsdt_address))
    data[8] = checksum(data)
    return bytes(data)


def rsdt(addresses: list[int]) -> bytes:
    """The RSDT: 32-bit table addresses."""
    return table(b"RSDT", 1, b"".join(struct.pack("<I", a) for a in addresses))


def facs() -> bytes:
    """The FACS: 64 bytes, signature and length, the rest 0 (it has no checksum)."""
    return struct.pack("<4sI", b"FACS", 64).ljust(64, b"\x00")


def fadt(facs_address: int, dsdt_address: int) -> bytes:
    """The FADT (``FACP``, revision 1, 116 bytes) of PIIX4 as QEMU 7.2's pc fills it."""
    body = struct.pack(
        "<IIBBHIBBBBIIIIIIIIBBBBBBBBHHHHBBBBBHBI",
        facs_address, dsdt_address,
        1,  # INT_MODEL (ACPI 1.0: dual PIC / APIC model)
        0,  # reserved in revision 1 (preferred PM profile)
        SCI_INT, SMI_CMD, ACPI_ENABLE, ACPI_DISABLE,
        0, 0,  # S4BIOS_REQ, PSTATE_CNT
        PM_IO_BASE, 0,  # PM1a_EVT_BLK, PM1b_EVT_BLK
        PM_IO_BASE + 4, 0,  # PM1a_CNT_BLK, PM1b_CNT_BLK
        0,  # PM2_CNT_BLK
        PM_IO_BASE + 8,  # PM_TMR_BLK
        GPE0_BLK, 0,  # GPE0_BLK, GPE1_BLK
        4, 2, 0, 4,  # PM1_EVT_LEN, PM1_CNT_LEN, PM2_CNT_LEN, PM_TMR_LEN
        GPE0_BLK_LEN, 0, 0,  # GPE0_BLK_LEN, GPE1_BLK_LEN, GPE1_BASE
        0,  # CST_CNT
        P_LVL_LAT_DISABLED, P_LVL_LAT_DISABLED,  # P_LVL2_LAT, P_LVL3_LAT
        0, 0, 0, 0, 0, 0,  # FLUSH_SIZE, FLUSH_STRIDE, DUTY_OFFSET, DUTY_WIDTH, DAY, MON
        RTC_CENTURY,
        0,  # IAPC_BOOT_ARCH (reserved in revision 1)
        0,  # reserved
        FADT_FLAGS)
    return table(b"FACP", 1, body)


def madt(cpus: Sequence[tuple[int, bool]] = ((0, True),)) -> bytes:
    """The MADT (``APIC``): local APICs, the IO-APIC, ISA overrides, LINT1 NMI.

    :param cpus: ``(APIC id, present)`` of every possible CPU in index order;
        an absent (hot-pluggable) CPU is listed disabled, as QEMU lists it.
    """
    body = bytearray(struct.pack("<II", APIC_DEFAULT_ADDRESS, 1))  # flags: PCAT_COMPAT
    for uid, (apic_id, present) in enumerate(cpus):
        body += struct.pack("<BBBBI", 0, 8, uid, apic_id, 1 if present else 0)
    body += struct.pack("<BBBBII", 1, 12, 0, 0, IO_APIC_ADDRESS, 0)
    body += struct.pack("<BBBBIH", 2, 10, 0, 0, 2, 0)  # IRQ0 -> GSI 2
    for irq in _PCI_ISA_IRQS:
        body += struct.pack("<BBBBIH", 2, 10, 0, irq, irq, _ISO_LEVEL_ACTIVE_HIGH)
    body += struct.pack("<BBBHB", 4, 6, 0xFF, 0, 1)  # NMI on LINT1 of every CPU
    return table(b"APIC", 1, bytes(body))


def machine_cpus(machine: PcMachine) -> list[tuple[int, bool]]:
    """``(APIC id, present)`` of the machine's possible CPUs (one CPU if it has none)."""
    if not machine.cpu_slots:
        return [(0, True)]
    return [(slot.apic_id, slot.index < machine.smp.cpus) for slot in machine.cpu_slots]


def hpet() -> bytes:
    """The HPET table: one timer block at 0xFED00000."""
    gas = struct.pack("<BBBBQ", 0, 0, 0, 0, HPET_ADDRESS)  # system memory
    return table(b"HPET", 1, struct.pack("<I", HPET_BLOCK_ID) + gas + struct.pack("<BHB", 0, 0, 0))


def waet() -> bytes:
    """The WAET: "ACPI PM timer good" (bit 1), so Windows reads it once."""
    return table(b"WAET", 1, struct.pack("<I", 2))


# -- SRAT ------------------------------------------------------------


@attrs.frozen(repr=False, eq=False)
class MemoryAffinity(FieldsValue):
    """One SRAT Memory Affinity entry."""

    base: int
    length: int
    proximity: int
    flags: int

    def encode(self) -> bytes:
        return struct.pack("<BBIHQQIIQ", 1, 40, self.proximity, 0, self.base, self.length,
                           0, self.flags, 0)


def numa_nodes(machine: PcMachine) -> int:
    """The machine's NUMA nodes (``-numa``, or the one pc makes for hotplug)."""
    return machine.numa_node_count


def srat_memory_entries(machine: PcMachine,
                        devices: Sequence[MemoryAffinity] = ()) -> list[MemoryAffinity]:
    """The Memory Affinity entries in QEMU's order: each node's RAM in node order
    (cut at the 640 KiB hole and the PCI hole), ``devices`` (what plugins
    added: NVDIMM ranges), padding, the hotplug window."""
    entries: list[MemoryAffinity] = []
    below = machine.below_4g_mem_size
    node_mem = [node.mem for node in machine.numa.ordered()]
    nodes = len(node_mem)
    next_base = 0
    for node, size in enumerate(node_mem):
        mem_base, mem_len = next_base, size
        next_base = mem_base + mem_len
        if mem_base <= HOLE_640K_START < next_base:
            mem_len -= next_base - HOLE_640K_START
            if mem_len > 0:
                entries.append(MemoryAffinity(mem_base, mem_len, node, MEM_AFFINITY_ENABLED))
            if next_base <= HOLE_640K_END:  # 640K < RAM < 1M
                next_base = HOLE_640K_END
                continue
            mem_base, mem_len = HOLE_640K_END, next_base - HOLE_640K_END
        if mem_base <= below < next_base:
            mem_len -= next_base - below
            if mem_len > 0:
                entries.append(MemoryAffinity(mem_base, mem_len, node, MEM_AFFINITY_ENABLED))
            # 7.2 puts the part above the PCI hole at 4 GiB.
            mem_base, mem_len = FOUR_GIB, next_base - below
            next_base = mem_base + mem_len
        if mem_len > 0:
            entries.append(MemoryAffinity(mem_base, mem_len, node, MEM_AFFINITY_ENABLED))
    entries.extend(devices)
    # Linux needs at least nodes + 2 memory entries: pad with empty ones.
    while len(entries) < nodes + 2:
        entries.append(MemoryAffinity(0, 0, 0, MEM_AFFINITY_NOFLAGS))
    if machine.has_device_memory:
        entries.append(MemoryAffinity(machine.device_memory_base, machine.device_memory_size,
                                      nodes - 1,
                                      MEM_AFFINITY_HOTPLUGGABLE | MEM_AFFINITY_ENABLED))
    return entries


def srat(machine: PcMachine, devices: Sequence[MemoryAffinity] = ()) -> bytes | None:
    """The SRAT, or None when the machine has no NUMA node (plain ``-m 1G``)."""
    if not numa_nodes(machine):
        return None
    body = bytearray(struct.pack("<IQ", 1, 0))  # table revision 1, reserved
    for slot in machine.cpu_slots:
        # Processor Local APIC affinity, enabled (APIC ids stay below 255 on TCG).
        body += struct.pack("<BBBBIB3sI", 0, 16, slot.node_id or 0, slot.apic_id, 1, 0,
                            b"\x00\x00\x00", 0)
    for entry in srat_memory_entries(machine, devices):
        body += entry.encode()
    return table(b"SRAT", 1, bytes(body))


def slit(machine: PcMachine) -> bytes | None:
    """The SLIT from ``-numa dist`` (None without it): the full distance matrix."""
    state = machine.numa
    if not state.num_nodes or not state.have_distance:
        return None
    count = state.num_nodes
    body = bytearray(struct.pack("<Q", count))
    for src in range(count):
        body += bytes(state.distance(src, dst) for dst in range(count))
    return table(b"SLIT", 1, bytes(body))


def hmat(machine: PcMachine) -> bytes | None:
    """The HMAT (revision 2) with ``-machine hmat=on``: a proximity-domain
    structure per node, the latency/bandwidth structures, the side caches."""
    state = machine.numa
    if not state.num_nodes or not state.hmat_enabled:
        return None
    body = bytearray(struct.pack("<I", 0))
    for node in state.ordered():
        flags = 1 if node.initiator < MAX_NODES else 0  # initiator field valid
        body += struct.pack("<HHIHHIIIQQ", 0, 0, 40, flags, 0, node.initiator,
                            node.node_id, 0, 0, 0)
    initiators = [node.node_id for node in state.ordered() if node.has_cpu]
    targets = state.num_nodes
    for key in sorted(state.hmat_lb):
        lb = state.hmat_lb[key]
        if not lb.entries:
            continue
        length = 32 + 4 * len(initiators) + 4 * targets + 2 * len(initiators) * targets
        latency = lb.data_type <= 2
        base = lb.base * 1000 if latency else lb.base // (1 << 20)  # ps, MB/s
        body += struct.pack("<HHIBBHIIIQ", 1, 0, length, lb.hierarchy, lb.data_type, 0,
                            len(initiators), targets, 0, base & ((1 << 64) - 1))
        body += b"".join(struct.pack("<I", node) for node in initiators)
        body += b"".join(struct.pack("<I", node) for node in range(targets))
        values = [0] * (len(initiators) * targets)
        for initiator, target, value in lb.entries:
            values[initiators.index(initiator) * targets + target] = (
                value // lb.base) & 0xFFFF
        body += b"".join(struct.pack("<H", value) for value in values)
    for node in state.ordered():
        levels = state.hmat_cache.get(node.node_id, {})
        for level in sorted(levels):
            cache = levels[level]
            attributes = (len(levels) | cache.level << 4 | cache.associativity << 8
                          | cache.policy << 12 | cache.line << 16)
            body += struct.pack("<HHIIIQIHH", 2, 0, 32, cache.node_id, 0, cache.size,
                                attributes, 0, 0)
    return table(b"HMAT", 2, bytes(body))


# -- DSDT ---------------------------------------------------------------------------


def _select(slot: bytes) -> bytes:
    return aml.store(aml.to_integer(slot), "MSEL")


def _locked(*body: bytes) -> tuple[bytes, ...]:
    """Acquire MLCK, select the slot of Arg0, ``body``, release (QEMU's slot methods)."""
    return (aml.acquire("MLCK", 0xFFFF), _select(aml.arg(0)), *body, aml.release("MLCK"))


def _mcrs() -> bytes:
    """``MCRS(slot)``: the DIMM's range as a QWordMemory, or DWordMemory below 4G.

    The DSDT is revision 1 (32-bit integers), so the 64-bit end address is
    computed on dword halves with explicit carry and borrow.
    """
    mr64 = aml.resource_template(aml.qword_memory(
        minimum=0, maximum=0xFFFFFFFFFFFFFFFE, length=0xFFFFFFFFFFFFFFFF))
    mr32 = aml.resource_template(aml.dword_memory(
        minimum=0, maximum=0xFFFFFFFE, length=0xFFFFFFFF))
    # byte offsets of min/max/length in the templates (aml.qword_memory/dword_memory)
    return aml.method(
        "MCRS", 1,
        aml.acquire("MLCK", 0xFFFF),
        _select(aml.arg(0)),
        aml.name("MR64", mr64),
        aml.create_dword_field("MR64", 0x0E, "MINL"),
        aml.create_dword_field("MR64", 0x12, "MINH"),
        aml.create_dword_field("MR64", 0x26, "LENL"),
        aml.create_dword_field("MR64", 0x2A, "LENH"),
        aml.create_dword_field("MR64", 0x16, "MAXL"),
        aml.create_dword_field("MR64", 0x1A, "MAXH"),
        aml.store("MRBH", "MINH"),
        aml.store("MRBL", "MINL"),
        aml.store("MRLH", "LENH"),
        aml.store("MRLL", "LENL"),
        aml.add("MINL", "LENL", "MAXL"),
        aml.add("MINH", "LENH", "MAXH"),
        aml.if_(aml.lless("MAXL", "MINL"), aml.add("MAXH", 1, "MAXH")),
        aml.if_(aml.lless("MAXL", 1), aml.subtract("MAXH", 1, "MAXH")),
        aml.subtract("MAXL", 1, "MAXL"),
        aml.if_(aml.lequal("MAXH", 0),
                aml.name("MR32", mr32),
                aml.create_dword_field("MR32", 0x0A, "MIN"),
                aml.create_dword_field("MR32", 0x0E, "MAX"),
                aml.create_dword_field("MR32", 0x16, "LEN"),
                aml.store("MINL", "MIN"),
                aml.store("MAXL", "MAX"),
                aml.store("LENL", "LEN"),
                aml.release("MLCK"),
                aml.return_("MR32")),
        aml.release("MLCK"),
        aml.return_("MR64"),
        serialized=True)


def _mscn() -> bytes:
    """``MSCN()``: notify every slot with a pending insert or remove event."""
    return aml.method(
        "MSCN", 0,
        aml.if_(aml.lequal("MDNR", 0), aml.return_(0)),
        aml.store(0, aml.local(0)),
        aml.acquire("MLCK", 0xFFFF),
        aml.while_(aml.lless(aml.local(0), "MDNR"),
                   aml.store(aml.local(0), "MSEL"),
                   aml.if_(aml.lequal("MINS", 1),
                           aml.call("MTFY", aml.local(0), aml.NOTIFY_DEVICE_CHECK),
                           aml.store(1, "MINS")),
                   # an insert and a remove are never reported in one pass
                   aml.else_(aml.if_(aml.lequal("MRMV", 1),
                                     aml.call("MTFY", aml.local(0), aml.NOTIFY_EJECT_REQUEST),
                                     aml.store(1, "MRMV"))),
                   aml.add(aml.local(0), 1, aml.local(0))),
        aml.release("MLCK"),
        aml.return_(1))


def _slot_device(slot: int) -> bytes:
    """``MPxx``: one PNP0C80 memory device whose methods call the container's helpers."""
    return aml.device(
        f"MP{slot:02X}",
        aml.name("_UID", aml.string(f"0x{slot:02X}")),
        aml.name("_HID", aml.eisaid("PNP0C80")),
        aml.method("_CRS", 0, aml.return_(aml.call("MCRS", "_UID"))),
        aml.method("_STA", 0, aml.return_(aml.call("MRST", "_UID"))),
        aml.method("_PXM", 0, aml.return_(aml.call("MPXM", "_UID"))),
        aml.method("_OST", 3, aml.call("MOST", "_UID", aml.arg(0), aml.arg(1), aml.arg(2))),
        aml.method("_EJ0", 1, aml.call("MEJ0", "_UID", aml.arg(0))))


def memory_hotplug_aml(slots: int) -> bytes:
    """QEMU 7.2's ``build_memory_hotplug_aml`` for the pc machine.

    ``\\_SB.PCI0.MHPD`` (the 0x0A00 I/O block), ``\\_SB.MHPC`` (registers,
    lock, scan and slot helpers, one ``MPxx`` per slot, ``MTFY``) and
    ``\\_GPE._E03``.  Empty with no slots: 7.2 emits none of it then.
    """
    if slots <= 0:
        return b""
    resources = aml.device(
        MEMORY_HOTPLUG_DEVICE,
        aml.name("_HID", aml.string("PNP0A06")),
        aml.name("_UID", aml.string("Memory hotplug resources")),
        aml.name("_CRS", aml.resource_template(aml.io(
            aml.DECODE16, MEMORY_HOTPLUG_IO_BASE, MEMORY_HOTPLUG_IO_BASE, 0,
            MEMORY_HOTPLUG_IO_LEN))),
        aml.operation_region("HPMR", aml.SYSTEM_IO, MEMORY_HOTPLUG_IO_BASE,
                             MEMORY_HOTPLUG_IO_LEN))
    region = MEMORY_HOTPLUG_REGION
    container = aml.device(
        MEMORY_DEVICES_CONTAINER,
        aml.name("_HID", aml.string("PNP0A06")),
        aml.name("_UID", aml.string("DIMM devices")),
        aml.name("MDNR", slots),
        # read side: address, length, proximity of the selected slot
        aml.field(region, aml.DWORD_ACC, aml.NO_LOCK, aml.PRESERVE,
                  aml.named_field("MRBL", 32), aml.named_field("MRBH", 32),
                  aml.named_field("MRLL", 32), aml.named_field("MRLH", 32),
                  aml.named_field("MPX", 32)),
        # status/control byte at 0x14; writing zeros elsewhere keeps other events
        aml.field(region, aml.BYTE_ACC, aml.NO_LOCK, aml.WRITE_AS_ZEROS,
                  aml.reserved_field(0x14 * 8),
                  aml.named_field("MES", 1), aml.named_field("MINS", 1),
                  aml.named_field("MRMV", 1), aml.named_field("MEJ", 1)),
        # write side: selector, _OST event, _OST status
        aml.field(region, aml.DWORD_ACC, aml.NO_LOCK, aml.PRESERVE,
                  aml.named_field("MSEL", 32), aml.named_field("MOEV", 32),
                  aml.named_field("MOSC", 32)),
        aml.method("_STA", 0, aml.if_(aml.lequal("MDNR", 0), aml.return_(0)),
                   aml.return_(0x0B)),
        aml.mutex("MLCK", 0),
        _mscn(),
        aml.method("MRST", 1, aml.store(0, aml.local(0)),
                   *_locked(aml.if_(aml.lequal("MES", 1), aml.store(0x0F, aml.local(0)))),
                   aml.return_(aml.local(0))),
        _mcrs(),
        aml.method("MPXM", 1, *_locked(aml.store("MPX", aml.local(0))),
                   aml.return_(aml.local(0))),
        aml.method("MOST", 4, *_locked(aml.store(aml.arg(1), "MOEV"),
                                       aml.store(aml.arg(2), "MOSC"))),
        aml.method("MEJ0", 2, *_locked(aml.store(1, "MEJ"))),
        *(_slot_device(slot) for slot in range(slots)),
        aml.method("MTFY", 2, *(
            aml.if_(aml.lequal(aml.arg(0), slot), aml.notify(f"MP{slot:02X}", aml.arg(1)))
            for slot in range(slots))))
    handler = aml.method(MEMORY_HOTPLUG_HANDLER, 0,
                         aml.call(f"{MEMORY_DEVICES_CONTAINER}.MSCN"))
    return resources + container + handler


def pci0_crs(machine: PcMachine) -> bytes:
    """``\\_SB.PCI0._CRS``: bus numbers, config ports, I/O and the PCI memory windows."""
    hole32 = machine.below_4g_mem_size
    hole64 = pci_hole64_start(machine)
    return aml.name("_CRS", aml.resource_template(
        aml.word_bus_number(minimum=0, maximum=0xFF, length=0x100),
        aml.io(aml.DECODE16, 0x0CF8, 0x0CF8, 1, 8),
        aml.word_io(minimum=0, maximum=0x0CF7, length=0x0CF8),
        aml.word_io(minimum=0x0D00, maximum=0xFFFF, length=0xF300),
        aml.dword_memory(minimum=0xA0000, maximum=0xBFFFF, length=0x20000),
        aml.dword_memory(cacheable=aml.NON_CACHEABLE, minimum=hole32,
                         maximum=PCI_HOLE32_END - 1, length=PCI_HOLE32_END - hole32),
        aml.qword_memory(minimum=hole64, maximum=hole64 + PCI_HOLE64_SIZE - 1,
                         length=PCI_HOLE64_SIZE)))


def dsdt(machine: PcMachine, extra: tuple[bytes, ...] = ()) -> bytes:
    """The DSDT (revision 1): PCI0, the GPE block device, memory hotplug, PCI0's _CRS,
    then the AML plugins added (``extra``).

    The order of the parts is 7.2's: the memory-hotplug AML comes before the
    ``\\_SB.PCI0`` scope holding ``_CRS``.
    """
    body = aml.definition_block(
        aml.scope("\\_SB", aml.device(
            "PCI0",
            aml.name("_HID", aml.eisaid("PNP0A03")),
            aml.name("_ADR", 0),
            aml.name("_UID", 0))),
        aml.scope("_GPE", aml.name("_HID", aml.string("ACPI0006"))),
        memory_hotplug_aml(machine.ram_slots),
        aml.scope("\\_SB.PCI0", pci0_crs(machine)),
        *extra)
    return table(b"DSDT", 1, body)


# -- what plugins contribute (the qom_acpi_build hook) ------------------------------


def _oem_table_id(text: str) -> bytes:
    encoded = text.encode("ascii")
    if not encoded or len(encoded) > 8:
        raise ValueError(f"an OEM table id has 1 to 8 ASCII characters, not {text!r}")
    return encoded.ljust(8, b"\x00")  # acpi_table_begin pads with NULs


@attrs.define(repr=False)
class Contributions(FieldsRepr):
    """What ``qom_acpi_build`` implementations added: implements
    :class:`plugins.services.AcpiTableBuilder`."""

    dsdt_aml: list[bytes] = attrs.field(factory=list)
    #: (signature, complete table bytes), in the order they were added: after the WAET
    tables: list[tuple[str, bytes]] = attrs.field(factory=list)
    #: the same, for tables placed before the WAET (``board=True``)
    board_tables: list[tuple[str, bytes]] = attrs.field(factory=list)
    #: SRAT entries plugins added
    srat_memory: list[MemoryAffinity] = attrs.field(factory=list)
    #: where :meth:`allocate` hands out guest RAM: (first address, end), or None
    #: when the tables are not in guest memory
    allocation_area: tuple[int, int] | None = None
    #: name -> (guest-physical address, size) of what :meth:`allocate` handed out
    allocations: dict[str, tuple[int, int]] = attrs.field(factory=dict)

    def add_dsdt_aml(self, aml_bytes: bytes) -> None:
        self.dsdt_aml.append(bytes(aml_bytes))

    def add_ssdt(self, oem_table_id: str, aml_bytes: bytes, *, board: bool = False) -> None:
        (self.board_tables if board else self.tables).append(
            ("SSDT", table(b"SSDT", 1, bytes(aml_bytes), _oem_table_id(oem_table_id))))

    def add_table(self, signature: str, body: bytes, *, revision: int = 1,
                  oem_table_id: str | None = None, board: bool = False) -> None:
        name = signature.encode("ascii")
        if len(name) != 4 or signature in BUILTIN_SIGNATURES:
            raise ValueError(f"cannot add an ACPI table with signature {signature!r}")
        (self.board_tables if board else self.tables).append((signature, table(
            name, revision, bytes(body),
            OEM_TABLE_ID if oem_table_id is None else _oem_table_id(oem_table_id))))

    def add_srat_memory(self, base: int, length: int, node: int, flags: int) -> None:
        self.srat_memory.append(MemoryAffinity(base, length, node, flags))

    def allocate(self, name: str, size: int) -> int:
        """Hand out ``size`` bytes from the top of the allocation area down, in the
        order of the calls (so the same calls get the same addresses)."""
        if size <= 0 or size % 4096:
            raise ValueError(f"an ACPI allocation is a multiple of 4 KiB, not {size}")
        if name in self.allocations:
            raise ValueError(f"ACPI allocation {name!r} is made twice")
        if self.allocation_area is None:
            self.allocations[name] = (0, size)
            return 0
        start, end = self.allocation_area
        low = min([end, *(address for address, _ in self.allocations.values() if address)])
        address = low - size
        if address < start:
            raise ValueError(f"no room beside the ACPI tables for {name!r} ({size} bytes)")
        self.allocations[name] = (address, size)
        return address

    def allocated_below(self) -> int | None:
        """The lowest allocated address (the tables must end below it), or None."""
        used = [address for address, _ in self.allocations.values() if address]
        return min(used) if used else None

    def key(self) -> tuple[object, ...]:
        """Everything contributed, comparable: the tables are rebuilt when it changes."""
        return (tuple(self.dsdt_aml), tuple(self.tables), tuple(self.board_tables),
                tuple((e.base, e.length, e.proximity, e.flags) for e in self.srat_memory),
                tuple(sorted(self.allocations.items())))


#: the tables the pc machine builds itself; a plugin cannot add another of these
BUILTIN_SIGNATURES: Final = frozenset(
    {"RSDP", "RSDT", "XSDT", "FACP", "FACS", "DSDT", "APIC", "HPET", "SRAT", "SLIT", "HMAT",
     "WAET"})


# -- the set ------------------------------------------------------------------------


@attrs.frozen(repr=False, eq=False)
class TableBlob(FieldsValue):
    """The tables laid out as QEMU's ``etc/acpi/tables`` and linked for ``base``.

    :ivar base: guest-physical address of the blob (64-byte aligned: FACS first).
    :ivar data: the tables back to back, pointers and checksums filled.
    :ivar offsets: signature -> (offset in ``data``, length).
    :ivar rsdp: the RSDP, to be placed where the firmware would (BIOS area).
    """

    base: int
    data: bytes
    offsets: dict[str, tuple[int, int]]
    rsdp: bytes

    def table(self, signature: str) -> bytes:
        """One table's bytes."""
        offset, length = self.offsets[signature]
        return self.data[offset:offset + length]

    def address(self, signature: str) -> int:
        """One table's guest-physical address."""
        return self.base + self.offsets[signature][0]


def build_blob(machine: PcMachine, *, base: int = 0,
               extra: Contributions | None = None) -> TableBlob:
    """All tables of the pc machine, laid out from ``base`` in QEMU's blob order.

    :param machine: a :class:`devices.machine.PcMachine` after board init.
    :param base: guest-physical address where the blob will be copied; with
        0 the pointers are blob offsets, as in QEMU's fw_cfg blob.
    :param extra: what plugins contributed: AML appended to the DSDT, SRAT
        entries, and SSDTs and tables placed before the WAET (``board``) or
        after it, listed in the RSDT.
    :raises ValueError: ``base`` not 64-byte aligned or the blob beyond 4 GiB
        (the RSDT and FACP hold 32-bit pointers).
    """
    if base % FACS_ALIGN:
        raise ValueError(f"ACPI tables base {base:#x} is not {FACS_ALIGN}-byte aligned")
    extra = extra if extra is not None else Contributions()
    offsets: dict[str, tuple[int, int]] = {}
    parts: list[bytes] = []
    cursor = 0

    def put(signature: str, data: bytes) -> int:
        nonlocal cursor
        # A second table of one signature (SSDT) is keyed "SSDT.1", "SSDT.2", ...
        count = sum(1 for key in offsets if key.split(".")[0] == signature)
        signature = f"{signature}.{count}" if count else signature
        offsets[signature] = (cursor, len(data))
        parts.append(data)
        cursor += len(data)
        return base + offsets[signature][0]

    facs_address = put("FACS", facs())
    dsdt_address = put("DSDT", dsdt(machine, tuple(extra.dsdt_aml)))
    listed = [put("FACP", fadt(facs_address, dsdt_address)),
              put("APIC", madt(machine_cpus(machine))), put("HPET", hpet())]
    srat_table = srat(machine, extra.srat_memory)
    if srat_table is not None:
        listed.append(put("SRAT", srat_table))
    slit_table = slit(machine)
    if slit_table is not None:
        listed.append(put("SLIT", slit_table))
    hmat_table = hmat(machine)
    if hmat_table is not None:
        listed.append(put("HMAT", hmat_table))
    for signature, data in extra.board_tables:
        listed.append(put(signature, data))
    listed.append(put("WAET", waet()))
    for signature, data in extra.tables:
        listed.append(put(signature, data))
    rsdt_address = put("RSDT", rsdt(listed))
    if base + cursor > FOUR_GIB:
        raise ValueError("ACPI tables must lie below 4 GiB")
    return TableBlob(base=base, data=b"".join(parts), offsets=offsets,
                     rsdp=rsdp(rsdt_address))


def build_tables(machine: PcMachine, *, base: int = 0) -> dict[str, bytes]:
    """The ACPI tables of ``machine`` as ``{signature: bytes}``.

    Signatures: ``RSDP``, ``FACS``, ``DSDT``, ``FACP``, ``APIC``, ``HPET``,
    ``SRAT`` (when the machine has a NUMA node), ``WAET``, ``RSDT``.  Each
    table is complete: checksum filled, pointers to where the blob lands when
    copied to ``base`` (see :func:`build_blob`).  Pure: the machine is only read.
    """
    blob = build_blob(machine, base=base)
    tables = {"RSDP": blob.rsdp}
    tables.update({signature: blob.table(signature) for signature in blob.offsets})
    return tables
