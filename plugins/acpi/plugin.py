"""Built-in plugin: the machine's ACPI tables, placed in guest memory and kept current.

As a firmware would: when the machine is ready the tables are built
(:func:`plugins.acpi.tables.build_blob`), copied near the top of RAM below
4 GiB, and the RSDP is written in the BIOS area (``0xF0000``), where an OS
looks for it.  Whenever a DIMM is plugged or unplugged they are brought up to
date and copied again (rebuilt only if what they describe changed).  QMP
``x-query-acpi-tables`` returns the current tables, and :func:`dump_tables`
writes them as ``DIR/SIG.dat`` (the command line's ``-dump-acpi DIR``).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any, Final

from devices.interfaces import TYPE_MEMORY_DEVICE
from devices.machine import PcMachine
from plugins import hookimpl
from plugins.acpi.tables import TableBlob, build_blob
from qom import Device, Object, QomError, StashKey, UndoStack

#: guest-physical address of the RSDP (16-byte aligned, inside 0xE0000-0xFFFFF)
RSDP_ADDRESS: Final = 0xF0000
#: space kept for the tables at the top of RAM below 4 GiB
TABLES_AREA: Final = 0x20000

ACPI_TABLES: StashKey[TableBlob] = StashKey("acpi-tables")
ACPI_LAYOUT: StashKey[tuple[object, ...]] = StashKey("acpi-tables-layout")


def tables_of(machine: Object) -> TableBlob | None:
    """The tables currently in the guest's memory, or ``None`` (no ACPI)."""
    return machine.stash.get(ACPI_TABLES)


def _place(machine: PcMachine) -> TableBlob | None:
    """Build the tables and copy them and the RSDP into guest RAM.

    A machine with too little RAM below 4 GiB to hold them (``-m 100k``)
    still gets its tables built, as QEMU builds them for fw_cfg, but with
    nowhere to put them they stay out of guest memory.
    """
    if not machine.acpi or machine.ram_backend is None:
        return None
    memory = machine.ram_backend.host_memory
    assert memory is not None
    base = (machine.below_4g_mem_size - TABLES_AREA) & ~0xFFFF
    if base < 0x100000:
        blob = _built(machine, 0)
    else:
        blob = _built(machine, base)
        if len(blob.data) > TABLES_AREA:
            raise QomError("the ACPI tables do not fit the space kept for them")
        memory.view[base:base + len(blob.data)] = blob.data
        memory.view[RSDP_ADDRESS:RSDP_ADDRESS + len(blob.rsdp)] = blob.rsdp
    machine.stash[ACPI_TABLES] = blob
    return blob


def _layout(machine: PcMachine, base: int) -> tuple[object, ...]:
    """Everything the tables are built from.  Plugged DIMMs are not part of it:
    the SRAT and DSDT describe slots and the hot-pluggable range, not DIMMs."""
    return (base, machine.type_name, machine.ram_size, machine.maxram_size, machine.ram_slots,
            machine.below_4g_mem_size, machine.above_4g_mem_size, machine.above_4g_mem_start,
            machine.device_memory_base, machine.device_memory_size, machine.numa_node_count)


def _built(machine: PcMachine, base: int) -> TableBlob:
    """The tables for the machine as it is, rebuilt only when their inputs changed
    (building the AML of 256 slots takes longer than the rest of a hotplug)."""
    previous = tables_of(machine)
    key = _layout(machine, base)
    if previous is not None and machine.stash.get(ACPI_LAYOUT) == key:
        return previous
    machine.stash[ACPI_LAYOUT] = key
    return build_blob(machine, base=base) if base else build_blob(machine)


def _restore(machine: PcMachine, previous: TableBlob | None) -> None:
    if previous is None:
        machine.stash.pop(ACPI_TABLES)
        return
    memory = machine.ram_backend.host_memory if machine.ram_backend else None
    if memory is not None and previous.base:
        memory.view[previous.base:previous.base + len(previous.data)] = previous.data
        memory.view[RSDP_ADDRESS:RSDP_ADDRESS + len(previous.rsdp)] = previous.rsdp
    machine.stash[ACPI_TABLES] = previous


@hookimpl
def qom_machine_ready(machine: Object) -> None:
    """Cold plug is over: build and place the tables, as the firmware would at boot."""
    if isinstance(machine, PcMachine):
        _place(machine)


@hookimpl(trylast=True)
def qom_device_plug(machine: Object, device: Device, undo: UndoStack) -> None:
    """A DIMM arrived after boot: rebuild the tables (undone with the plug)."""
    if (isinstance(machine, PcMachine) and device.is_a(TYPE_MEMORY_DEVICE)
            and tables_of(machine) is not None):
        previous = tables_of(machine)
        _place(machine)
        undo.push(lambda: _restore(machine, previous), "acpi: previous tables")


@hookimpl
def qom_device_unplug(machine: Object, device: Device) -> None:
    """A DIMM left: rebuild the tables."""
    if (isinstance(machine, PcMachine) and device.is_a(TYPE_MEMORY_DEVICE)
            and tables_of(machine) is not None):
        _place(machine)


def table_list(blob: TableBlob) -> list[tuple[str, bytes]]:
    """(signature, bytes) of every table, the RSDP first, then the blob's order."""
    tables = [("RSDP", blob.rsdp)]
    tables += sorted(((sig, blob.table(sig)) for sig in blob.offsets),
                     key=lambda item: blob.offsets[item[0]][0])
    return tables


def dump_tables(machine: Object, directory: str | Path) -> list[Path]:
    """Write each current table as ``directory/SIG.dat``; returns the files written."""
    blob = tables_of(machine)
    if blob is None:
        return []
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for signature, data in table_list(blob):
        path = target / f"{signature}.dat"
        path.write_bytes(data)
        written.append(path)
    return written


def _x_query_acpi_tables(control: Any) -> list[dict[str, str]]:
    blob = tables_of(control.vm.machine)
    if blob is None:
        return []
    return [{"signature": signature, "data": base64.b64encode(data).decode("ascii")}
            for signature, data in table_list(blob)]


@hookimpl
def qom_register_monitor_commands(commands: Any) -> None:
    """QMP ``x-query-acpi-tables``: the current tables, base64-encoded (a pyqom addition)."""
    from plugins.monitor import Command

    commands.register(Command("x-query-acpi-tables", _x_query_acpi_tables))
