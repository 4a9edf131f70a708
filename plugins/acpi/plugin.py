"""Built-in plugin: ACPI for the pc machine, as the guest sees it.

* the tables (:mod:`devices.acpi.tables`), due once the machine is ready and
  built just before guest memory is first used (or when first asked for),
  with what every plugin adds through ``qom_acpi_build``, copied near the top
  of RAM below 4 GiB with the RSDP in the BIOS area (``0xF0000``), as a
  firmware would, and rebuilt after every plug and unplug (only if what they
  describe changed);
* the memory-hotplug register block (0x0A00) and GPE0 (0xAFE0) of
  :mod:`plugins.acpi.registers`, on the ``port-io`` service: slot state in the
  ``describe`` phases, the insert event and GPE in ``announce``, the remove
  event on ``device_del``; the guest's eject completes the unplug;
* the ``acpi`` service (:class:`plugins.services.AcpiState`): the current
  tables and the OSPM status, for the monitors and the command line;
* QMP ``x-query-acpi-tables`` (a pyqom addition).
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import attrs

from devices.acpi import MEMORY_HOTPLUG_IO_BASE, MEMORY_HOTPLUG_IO_LEN
from devices.machine import PcMachine
from plugins import hookimpl
from plugins.acpi.registers import (
    GPE0_BASE,
    GPE0_LENGTH,
    MEMORY_HOTPLUG_GPE_BIT,
    PM_BASE,
    Gpe0Block,
    MemoryHotplugBlock,
    PmBlock,
    SlotStatus,
)
from plugins.commands import Command, CommandTable, MonitorControl
from plugins.services import (
    ACPI,
    GUEST_CPU,
    GUEST_MEMORY,
    INTERRUPTS,
    PORT_IO,
    Services,
    services_of,
)
from qom import Device, Object, QomError, StashKey, UndoStack

if TYPE_CHECKING:
    from devices.acpi.tables import Contributions, TableBlob
from qom.reprs import FieldsRepr

PM_BLOCK: StashKey[PmBlock] = StashKey("acpi-pm-block")
#: the ISA interrupt of the SCI (the FADT's SCI_INT, PIIX4's)
SCI_IRQ: Final = 9
#: guest-physical address of the RSDP (16-byte aligned, inside 0xE0000-0xFFFFF)
RSDP_ADDRESS: Final = 0xF0000
#: space kept for the tables at the top of RAM below 4 GiB
TABLES_AREA: Final = 0x20000

PLUGIN_NAME = "plugins.acpi.plugin"
ACPI_TABLES: StashKey[TableBlob] = StashKey("acpi-tables")
ACPI_LAYOUT: StashKey[tuple[object, ...]] = StashKey("acpi-tables-layout")
MEMORY_HOTPLUG: StashKey[MemoryHotplugBlock] = StashKey("acpi-memory-hotplug")
#: set while the tables are due: built and placed when first needed
ACPI_DUE: StashKey[bool] = StashKey("acpi-tables-due")


def tables_of(machine: Object) -> TableBlob | None:
    """The tables in the guest's memory (placed now if they were due), or ``None``
    (no ACPI)."""
    _ensure(machine)
    return machine.stash.get(ACPI_TABLES)


def _due(machine: Object) -> bool:
    due = machine.stash.get(ACPI_DUE)
    return due is True


def _ensure(machine: Object) -> None:
    """Build and place the tables if they are due (see ``qom_machine_ready``)."""
    if machine.stash.pop(ACPI_DUE) and isinstance(machine, PcMachine):
        _place(machine)


def _place(machine: PcMachine) -> TableBlob | None:
    """Build the tables and copy them and the RSDP into guest RAM.

    A machine with too little RAM below 4 GiB to hold them (``-m 100k``)
    still gets its tables built, as QEMU builds them for fw_cfg, but with
    nowhere to put them they stay out of guest memory.
    """
    if not machine.acpi or machine.main_ram is None:
        return None
    ram = machine.main_ram
    base = (machine.below_4g_mem_size - TABLES_AREA) & ~0xFFFF
    if base < 0x100000:
        blob = _built(machine, 0)
    else:
        blob = _built(machine, base)
        if len(blob.data) > TABLES_AREA:
            raise QomError("the ACPI tables do not fit the space kept for them")
        ram.write(base, blob.data)
        ram.write(RSDP_ADDRESS, blob.rsdp)
    machine.stash[ACPI_TABLES] = blob
    return blob


def _layout(machine: PcMachine, base: int, extra: Contributions) -> tuple[object, ...]:
    """Everything the tables are built from.  Plugged DIMMs are not part of it
    (the SRAT and DSDT describe slots and the hot-pluggable range, not DIMMs),
    but what plugins contribute for their devices is."""
    return (base, extra.key(), machine.type_name, machine.ram_size, machine.maxram_size,
            machine.ram_slots,
            machine.below_4g_mem_size, machine.above_4g_mem_size, machine.above_4g_mem_start,
            machine.device_memory_base, machine.device_memory_size, machine.numa_node_count,
            tuple((slot.apic_id, slot.node_id) for slot in machine.cpu_slots),
            tuple((node.mem, tuple(sorted(node.distance.items())))
                  for node in machine.numa.ordered()))


def _built(machine: PcMachine, base: int) -> TableBlob:
    """The tables for the machine as it is, rebuilt only when their inputs changed
    (building the AML of 256 slots takes longer than the rest of a hotplug)."""
    from devices.acpi.tables import Contributions, build_blob  # only once tables are wanted

    previous = machine.stash.get(ACPI_TABLES)
    # What plugins allocate (AcpiTableBuilder.allocate) comes from the top of
    # the tables' area down; the tables grow up from its base.
    extra = Contributions(allocation_area=(base, base + TABLES_AREA) if base else None)
    machine.relay.qom_acpi_build(machine=machine, tables=extra)
    key = _layout(machine, base, extra)
    if previous is not None and machine.stash.get(ACPI_LAYOUT) == key:
        return previous
    blob = build_blob(machine, base=base, extra=extra)
    limit = extra.allocated_below()
    if limit is not None and base + len(blob.data) > limit:
        raise QomError("the ACPI tables do not fit the space kept for them")
    machine.stash[ACPI_LAYOUT] = key
    return blob


def _restore(machine: PcMachine, previous: TableBlob | None,
             layout: tuple[object, ...] | None) -> None:
    """Put back the tables (and the key they were built from) of before a plug."""
    if layout is None:
        machine.stash.pop(ACPI_LAYOUT)
    else:
        machine.stash[ACPI_LAYOUT] = layout
    if previous is None:
        machine.stash.pop(ACPI_TABLES)
        return
    if machine.main_ram is not None and previous.base:
        machine.main_ram.write(previous.base, previous.data)
        machine.main_ram.write(RSDP_ADDRESS, previous.rsdp)
    machine.stash[ACPI_TABLES] = previous


def memory_hotplug_block(machine: Object) -> MemoryHotplugBlock | None:
    """The machine's register block, or ``None`` (no slots, no ACPI, or not a pc)."""
    return machine.stash.get(MEMORY_HOTPLUG)


def table_list(blob: TableBlob) -> list[tuple[str, bytes]]:
    """(signature, bytes) of every table, the RSDP first, then the blob's order."""
    tables = [("RSDP", blob.rsdp)]
    keys = sorted(blob.offsets, key=lambda key: blob.offsets[key][0])
    tables += [(key.split(".")[0], blob.table(key)) for key in keys]
    return tables


@attrs.define(eq=False, repr=False)
class _AcpiState(FieldsRepr):
    """The ``acpi`` service of one machine."""

    machine: PcMachine
    #: name -> size of what the firmware allocates beside the tables
    reserved: dict[str, int] = attrs.field(factory=dict)

    def tables(self) -> list[tuple[str, bytes]]:
        blob = tables_of(self.machine)
        return [] if blob is None else table_list(blob)

    def ospm_status(self) -> list[dict[str, Any]]:
        block = memory_hotplug_block(self.machine)
        return [] if block is None else block.ospm_status()

    def press_power_button(self) -> None:
        pm = self.machine.stash.get(PM_BLOCK)
        if pm is not None:
            pm.power_button()

    def reserve(self, name: str, size: int) -> None:
        if size <= 0 or size % 4096 or name in self.reserved:
            raise ValueError(f"cannot reserve {size} bytes of firmware RAM as {name!r}")
        self.reserved[name] = size

    def reserved_size(self) -> int:
        return sum(self.reserved.values())

    def raise_gpe(self, bit: int) -> Callable[[], None]:
        block = memory_hotplug_block(self.machine)
        if block is None:
            return lambda: None
        before = bytes(block.gpe.status)
        block.gpe.raise_event(bit)

        def withdraw() -> None:
            block.gpe.status[:] = before
            _update_sci(self.machine)

        return withdraw


# ---------------------------------------------------------------------------
# Hooks
# ---------------------------------------------------------------------------


@hookimpl
def qom_machine_services(machine: Object, services: Services) -> None:
    """Offer the ``acpi`` service (not on a machine with ``-no-acpi``)."""
    if isinstance(machine, PcMachine) and machine.acpi:
        services.provide(ACPI, _AcpiState(machine), provider=PLUGIN_NAME)


def _update_sci(machine: PcMachine) -> None:
    """IRQ 9 follows GPE0's and PM1's enabled status bits (QEMU's acpi_update_sci)."""
    interrupts = services_of(machine).find(INTERRUPTS)
    block, pm = machine.stash.get(MEMORY_HOTPLUG), machine.stash.get(PM_BLOCK)
    if interrupts is not None:
        level = (block is not None and block.gpe.sci_level) or (pm is not None and pm.sci_level)
        interrupts.set_irq(SCI_IRQ, level)


def _place_pm_block(machine: PcMachine) -> None:
    ports = services_of(machine).find(PORT_IO)
    if ports is None:
        return
    pm = PmBlock(on_change=functools.partial(_update_sci, machine))
    machine.stash[PM_BLOCK] = pm
    ports.register_ports(PM_BASE, 4, pm.read_event, pm.write_event, "acpi-evt")
    ports.register_ports(PM_BASE + 4, 2, pm.read_control, pm.write_control, "acpi-cnt")
    ports.register_ports(PM_BASE + 8, 4, pm.read_timer, lambda offset, size, value: None,
                         "acpi-tmr")


@hookimpl
def qom_machine_init(machine: Object) -> None:
    """Create the register blocks and claim their ports."""
    if not isinstance(machine, PcMachine) or not machine.acpi:
        return
    gpe = Gpe0Block()
    slots = [SlotStatus() for _ in range(machine.ram_slots)
             ] if machine.memory_hotplug_support else []
    block = MemoryHotplugBlock(machine=machine, gpe=gpe, slots=slots)
    machine.stash[MEMORY_HOTPLUG] = block
    services = services_of(machine)
    cpu = services.find(GUEST_CPU)
    if cpu is not None:
        # A guest polling GPE0 with nothing pending waits a little (it does not
        # burn a host core), and a raised event wakes it at once.
        gpe.on_idle_read, gpe.on_raise = cpu.idle_poll, cpu.kick
        # SeaBIOS places PIIX4's PM block (PMBA 0x600) before the guest runs;
        # until then it is not in the I/O space, as in QEMU.
        cpu.before_first_run(functools.partial(_place_pm_block, machine))
    gpe.on_change = functools.partial(_update_sci, machine)
    ports = services.find(PORT_IO)
    if ports is not None:
        ports.register_ports(GPE0_BASE, GPE0_LENGTH, gpe.read, gpe.write, "acpi-gpe0")
        if slots:
            ports.register_ports(MEMORY_HOTPLUG_IO_BASE, MEMORY_HOTPLUG_IO_LEN, block.read,
                                 block.write, "acpi-mem-hotplug")


@hookimpl
def qom_machine_ready(machine: Object) -> None:
    """Cold plug is over: the tables are due.

    As in QEMU, where the firmware copies them from fw_cfg into RAM once the
    guest runs, they go into guest memory just before it is first used (a
    read, a write, guest code), or when asked for (``x-query-acpi-tables``,
    ``-dump-acpi``, a plug after boot), built from the machine as it is then.
    Without a ``guest-memory`` service nothing can observe RAM, so they are
    placed at once.
    """
    if not isinstance(machine, PcMachine) or not machine.acpi:
        return
    memory = services_of(machine).find(GUEST_MEMORY)
    if memory is None:
        _place(machine)
        return
    machine.stash[ACPI_DUE] = True
    memory.before_first_access(lambda: _ensure(machine))


@hookimpl
def qom_device_plug_describe(machine: Object, device: Device, undo: UndoStack) -> None:
    """Enable the DIMM's slot, and rebuild the tables after boot (both undone with the plug)."""
    block = memory_hotplug_block(machine)
    slot = block.slot_of(device) if block is not None and block.slots else None
    if slot is not None:
        before = attrs.evolve(slot)
        slot.device, slot.is_enabled = device, True

        def restore() -> None:
            slot.device, slot.is_enabled = before.device, before.is_enabled

        undo.push(restore, "acpi: restore the slot")
    if (isinstance(machine, PcMachine) and not _due(machine)
            and machine.stash.get(ACPI_TABLES) is not None):
        previous, layout = machine.stash.get(ACPI_TABLES), machine.stash.get(ACPI_LAYOUT)
        _place(machine)
        undo.push(lambda: _restore(machine, previous, layout), "acpi: previous tables")


def _slot_event(machine: Object, device: Device, flag: str, undo: UndoStack) -> None:
    """Set the slot's ``is_inserting`` or ``is_removing`` and raise GPE0.3, with the
    undo step that withdraws both; nothing for a device without an ACPI slot."""
    block = memory_hotplug_block(machine)
    slot = block.slot_of(device) if block is not None and block.slots else None
    if block is None or slot is None:
        return
    flag_before, gpe_before = getattr(slot, flag), bytes(block.gpe.status)
    setattr(slot, flag, True)
    block.gpe.raise_event(MEMORY_HOTPLUG_GPE_BIT)

    def restore() -> None:
        setattr(slot, flag, flag_before)
        block.gpe.status[:] = gpe_before

    undo.push(restore, f"acpi: withdraw {flag}")


@hookimpl
def qom_device_plug_announce(machine: Object, device: Device, undo: UndoStack) -> None:
    """A hot-plugged DIMM: its slot's insert event, and GPE0.3 for the guest."""
    if device.hotplugged:
        _slot_event(machine, device, "is_inserting", undo)


@hookimpl
def qom_device_unplug_request(machine: Object, device: Device, undo: UndoStack) -> None:
    """``device_del``: the remove event for the guest, and GPE0.3."""
    _slot_event(machine, device, "is_removing", undo)


@hookimpl
def qom_device_unplug_describe(machine: Object, device: Device) -> None:
    """The guest ejected the device: its slot is empty again (OST values stay)."""
    block = memory_hotplug_block(machine)
    slot = block.slot_of(device) if block is not None and block.slots else None
    if slot is not None:
        slot.device, slot.is_enabled = None, False


@hookimpl(trylast=True)
def qom_device_unplug_claim(machine: Object, device: Device) -> None:
    """The tables are rebuilt once the device is gone: last of the last unplug phase,
    so what other plugins freed there is no longer described (as a plug's rebuild,
    in ``describe``, sees what they claimed)."""
    if (isinstance(machine, PcMachine) and not _due(machine)
            and machine.stash.get(ACPI_TABLES) is not None):
        _place(machine)


@hookimpl
def qom_machine_shutdown(machine: Object, reason: str) -> None:
    """Withdraw the ``acpi`` service."""
    services = services_of(machine)
    if services.provider(ACPI) == PLUGIN_NAME:
        services.withdraw(ACPI)


def _x_query_acpi_tables(control: MonitorControl) -> list[dict[str, str]]:
    machine = control.vm.machine
    state = services_of(machine).find(ACPI) if machine is not None else None
    if state is None:
        return []
    return [{"signature": signature, "data": base64.b64encode(data).decode("ascii")}
            for signature, data in state.tables()]


@hookimpl
def qom_register_monitor_commands(commands: CommandTable) -> None:
    """QMP ``x-query-acpi-tables``: the current tables, base64-encoded (a pyqom addition)."""
    commands.register(Command("x-query-acpi-tables", _x_query_acpi_tables))
