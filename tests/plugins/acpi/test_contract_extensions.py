"""The ACPI contract's generic parts a device plugin uses (plugins.nvdimm does):
board-placed tables, SRAT entries, firmware allocations and reservations,
``raise_gpe``, ``SLOT_ACPI_MEMORY_HOTPLUG``, and ``qom_memory_device_pre_plug``
with the ``plugins.dimm`` slots of a ``pc-dimm`` subtype."""

from __future__ import annotations

import struct
from typing import Any

import pytest

import qom
from devices.multiboot import SEABIOS_HIGH_ZONE, seabios_e820
from plugins import aml, hookimpl
from plugins.acpi.plugin import TABLES_AREA, memory_hotplug_block, tables_of
from plugins.dimm import SLOT_DIMM_REALIZE, SLOT_DIMM_REGION_SIZE, TYPE_PC_DIMM
from plugins.services import (
    ACPI,
    SLOT_ACPI_MEMORY_HOTPLUG,
    SRAT_MEMORY_ENABLED,
    SRAT_MEMORY_NON_VOLATILE,
    services_of,
)
from pyqom import VM

M, G = 1 << 20, 1 << 30


class Board:
    """Adds a board table, an SSDT after the WAET, an SRAT entry and an allocation;
    defines ``half-dimm``, a pc-dimm whose guest sees half its backend and tells
    the guest itself; refuses a ``half-dimm`` on request before placement."""

    def __init__(self) -> None:
        self.page = -1
        self.refuse = False
        self.seen: list[str] = []

    @hookimpl
    def qom_register_types(self, registry: Any) -> None:
        def class_init(klass: Any, data: Any) -> None:
            klass.slots[SLOT_DIMM_REGION_SIZE] = lambda dimm: dimm.memdev.size // 2
            klass.slots[SLOT_DIMM_REALIZE] = lambda dimm: self.seen.append("realize")
            klass.slots[SLOT_ACPI_MEMORY_HOTPLUG] = False

        registry.register(qom.TypeInfo(name="half-dimm", parent=TYPE_PC_DIMM,
                                       class_init=class_init))

    @hookimpl
    def qom_machine_init(self, machine: Any) -> None:
        acpi = services_of(machine).find(ACPI)
        if acpi is not None:                     # none with -no-acpi
            acpi.reserve("etc/test-page", 4096)

    @hookimpl
    def qom_memory_device_pre_plug(self, machine: Any, device: Any) -> None:
        self.seen.append(f"pre_place slot={device.slot}")
        if self.refuse and device.is_a("half-dimm"):
            raise qom.QomError("half-dimm refused")

    @hookimpl
    def qom_acpi_build(self, machine: Any, tables: Any) -> None:
        tables.add_table("TBRD", b"board", board=True)
        tables.add_ssdt("LATE", aml.definition_block(aml.scope("\\_SB")))
        tables.add_srat_memory(0x123400000, 2 * M, 0,
                               SRAT_MEMORY_ENABLED | SRAT_MEMORY_NON_VOLATILE)
        self.page = tables.allocate("etc/test-page", 4096)


@pytest.fixture
def vm():
    board = Board()
    with VM.from_args(["-m", "1G,slots=2,maxmem=4G"], plugins=[board], autoload=False) as vm:
        vm.board = board
        yield vm


def _order(vm: VM) -> list[str]:
    return [signature for signature, _ in services_of(vm.machine).get(ACPI).tables()]


def test_board_tables_go_before_the_waet_and_others_after(vm) -> None:
    assert _order(vm) == ["RSDP", "FACS", "DSDT", "FACP", "APIC", "HPET", "SRAT", "TBRD",
                          "WAET", "SSDT", "RSDT"]
    tables = dict(services_of(vm.machine).get(ACPI).tables())
    assert tables["SSDT"][16:24] == b"LATE\x00\x00\x00\x00"   # NUL-padded, as QEMU's


def test_srat_entries_follow_the_ram_before_the_padding(vm) -> None:
    srat = dict(services_of(vm.machine).get(ACPI).tables())["SRAT"]
    entries = [struct.unpack_from("<BBIHQQIIQ", srat, at)
               for at in range(48 + 16, len(srat), 40)]
    bases = [(entry[4], entry[5], entry[7]) for entry in entries]
    # RAM below 640K, RAM from 1M, the plugin's entry, then the hot-pluggable range
    assert bases[2] == (0x123400000, 2 * M, 5)
    assert bases[-1][2] == 3


def test_an_allocation_is_beside_the_tables_and_stable(vm) -> None:
    blob = tables_of(vm.machine)
    assert blob is not None
    assert blob.base + len(blob.data) <= vm.board.page == blob.base + TABLES_AREA - 4096
    first = vm.board.page
    vm.object_add("memory-backend-ram", "m1", size=128 * M)
    vm.device_add("pc-dimm", "d1", memdev="m1")          # a rebuild
    assert vm.board.page == first


def test_a_reservation_grows_the_firmware_high_zone(vm) -> None:
    assert services_of(vm.machine).get(ACPI).reserved_size() == 4096
    e820 = seabios_e820(vm.machine.e820, 4096)
    reserved = [entry for entry in e820 if entry.base == vm.machine.below_4g_mem_size
                - SEABIOS_HIGH_ZONE - 4096]
    assert reserved and reserved[0].length == SEABIOS_HIGH_ZONE + 4096
    with pytest.raises(ValueError):
        services_of(vm.machine).get(ACPI).reserve("etc/test-page", 4096)


def test_raise_gpe_sets_the_bit_and_its_step_withdraws_it(vm) -> None:
    block = memory_hotplug_block(vm.machine)
    assert block is not None
    withdraw = services_of(vm.machine).get(ACPI).raise_gpe(4)
    assert block.gpe.status[0] == 0x10
    withdraw()
    assert block.gpe.status[0] == 0


def test_a_subtype_sizes_its_region_and_keeps_out_of_the_hotplug_block(vm) -> None:
    vm.object_add("memory-backend-ram", "m1", size=256 * M)
    vm.device_add("half-dimm", "h1", memdev="m1")
    (entry,) = vm.query_memory_devices()
    assert entry["data"]["size"] == 128 * M and entry["type"] == "dimm"
    assert vm.board.seen == ["pre_place slot=-1", "realize"]   # before the slot is chosen
    block = memory_hotplug_block(vm.machine)
    assert block is not None and not any(slot.is_enabled for slot in block.slots)
    assert block.gpe.status[0] == 0                             # no insert event either


def test_the_pre_place_check_comes_after_acpi_and_before_the_slot(vm) -> None:
    vm.board.refuse = True
    vm.object_add("memory-backend-ram", "m1", size=256 * M)
    with pytest.raises(qom.QomError, match=r"^half-dimm refused$"):
        vm.device_add("half-dimm", "h1", memdev="m1", slot=9)    # a bad slot comes later
    with VM.from_args(["-no-acpi", "-m", "1G,slots=2,maxmem=4G"], plugins=[Board()],
                      autoload=False) as no_acpi:
        no_acpi.object_add("memory-backend-ram", "m1", size=256 * M)
        with pytest.raises(qom.QomError, match=r"^memory hotplug is not enabled: missing acpi"):
            no_acpi.device_add("half-dimm", "h1", memdev="m1")
