"""Built-in plugin: the ACPI memory-hotplug register block and the GPE0 block, live.

What the guest's AML talks to (QEMU-SPEC 6.2, 6.3, 8), served on the guest's
port-I/O registry with QEMU 7.2's exact semantics:

* the memory-hotplug block at 0x0A00, 24 bytes: a slot selector, the
  selected DIMM's address, size and node, its status bits (enabled, insert,
  remove), the ``_OST`` event and status registers (each status write emits
  ``ACPI_DEVICE_OST``), and the control register (clear insert, else clear
  remove, else eject);
* PIIX4's GPE0 block at 0xAFE0: a 16-bit status word (write 1 to clear) and a
  16-bit enable word; memory hotplug raises status bit 3.

A hot-plugged DIMM sets its slot's insert flag and raises GPE0.3; a
cold-plugged one is only enabled.  ``device_del`` sets the remove flag and
raises GPE0.3, and nothing more: QEMU 7.2's behaviour while no guest acts.
When the guest writes the eject bit, the unplug completes (unmapped, slot and
range freed, backend released, ``DEVICE_DELETED``), which QEMU 7.2 also does.
"""

from __future__ import annotations

from typing import Any, Final

import attrs

from devices.interfaces import TYPE_MEMORY_DEVICE
from devices.machine import PcMachine
from plugins import hookimpl
from plugins.acpi.tables import MEMORY_HOTPLUG_IO_BASE, MEMORY_HOTPLUG_IO_LEN
from plugins.guest_memory import ADDRESS_SPACE, address_space_of
from qom import Device, Object, QomError, StashKey, UndoStack, complete_unplug

GPE0_BASE: Final = 0xAFE0
GPE0_LENGTH: Final = 4
#: GPE0 status bit of memory hotplug (QEMU's ACPI_MEMORY_HOTPLUG_STATUS)
MEMORY_HOTPLUG_GPE_BIT: Final = 3

STATUS_ENABLED: Final = 1
STATUS_INSERT: Final = 2
STATUS_REMOVE: Final = 4
CONTROL_CLEAR_INSERT: Final = 2
CONTROL_CLEAR_REMOVE: Final = 4
CONTROL_EJECT: Final = 8

_U32: Final = 0xFFFFFFFF


@attrs.define
class SlotStatus:
    """One DIMM slot as the register block sees it (QEMU's ``MemStatus``)."""

    device: Device | None = None
    is_enabled: bool = False
    is_inserting: bool = False
    is_removing: bool = False
    ost_event: int = 0
    ost_status: int = 0


@attrs.define
class Gpe0Block:
    """PIIX4's GPE0: status word (write 1 to clear), then enable word; byte registers."""

    status: bytearray = attrs.field(factory=lambda: bytearray(GPE0_LENGTH // 2))
    enable: bytearray = attrs.field(factory=lambda: bytearray(GPE0_LENGTH // 2))

    def raise_event(self, bit: int) -> None:
        self.status[bit // 8] |= 1 << (bit % 8)

    @property
    def sci_level(self) -> bool:
        """True while an enabled GPE is pending: the SCI (IRQ 9) line is up."""
        return any(s & e for s, e in zip(self.status, self.enable, strict=True))

    def read(self, offset: int, size: int) -> int:
        # QEMU implements the block with byte accesses; wider ones are split.
        value = 0
        for index in range(size):
            byte_offset = offset + index
            half = GPE0_LENGTH // 2
            if byte_offset < half:
                byte = self.status[byte_offset]
            elif byte_offset < GPE0_LENGTH:
                byte = self.enable[byte_offset - half]
            else:
                byte = 0
            value |= byte << (8 * index)
        return value

    def write(self, offset: int, size: int, value: int) -> None:
        half = GPE0_LENGTH // 2
        for index in range(size):
            byte_offset, byte = offset + index, (value >> (8 * index)) & 0xFF
            if byte_offset < half:
                self.status[byte_offset] &= ~byte & 0xFF
            elif byte_offset < GPE0_LENGTH:
                self.enable[byte_offset - half] = byte


@attrs.define(eq=False)
class MemoryHotplugBlock:
    """The 0x0A00 register block of one machine and its slots."""

    machine: PcMachine
    gpe: Gpe0Block
    slots: list[SlotStatus]
    selector: int = 0

    def _selected(self) -> SlotStatus | None:
        return self.slots[self.selector] if self.selector < len(self.slots) else None

    def read(self, offset: int, size: int) -> int:
        """QEMU's ``acpi_memory_hotplug_read``, cut to the access width."""
        slot = self._selected()
        if slot is None:
            return 0
        dimm: Any = slot.device
        if offset == 0x0:
            value = dimm.addr & _U32 if dimm else 0
        elif offset == 0x4:
            value = dimm.addr >> 32 if dimm else 0
        elif offset == 0x8:
            value = dimm.region_size() & _U32 if dimm else 0
        elif offset == 0xC:
            value = dimm.region_size() >> 32 if dimm else 0
        elif offset == 0x10:
            value = dimm.node if dimm else 0
        elif offset == 0x14:
            value = ((STATUS_ENABLED if slot.is_enabled else 0)
                     | (STATUS_INSERT if slot.is_inserting else 0)
                     | (STATUS_REMOVE if slot.is_removing else 0))
        else:
            value = _U32
        return value & ((1 << (8 * size)) - 1)

    def write(self, offset: int, size: int, value: int) -> None:
        """QEMU's ``acpi_memory_hotplug_write``."""
        if not self.slots:
            return
        if offset and self._selected() is None:
            return
        if offset == 0x0:
            self.selector = value & _U32
            return
        slot = self._selected()
        assert slot is not None
        if offset == 0x4:
            slot.ost_event = value
        elif offset == 0x8:
            slot.ost_status = value
            self._emit("ACPI_DEVICE_OST", {"info": ost_info(self.selector, slot)})
        elif offset == 0x14:
            if value & CONTROL_CLEAR_INSERT:
                slot.is_inserting = False
            elif value & CONTROL_CLEAR_REMOVE:
                slot.is_removing = False
            elif value & CONTROL_EJECT and slot.is_enabled and slot.device is not None:
                device = slot.device
                if ADDRESS_SPACE in self.machine.stash:
                    # The unplug unmaps guest memory: not from inside the CPU loop.
                    address_space_of(self.machine).call_outside(lambda: self._eject(device))
                else:
                    self._eject(device)

    def _eject(self, device: Device) -> None:
        try:
            complete_unplug(device)
        except QomError as err:
            path = device.canonical_path
            self._emit("MEM_UNPLUG_ERROR", {"device": device.id or "", "msg": str(err)})
            data: dict[str, Any] = {"path": path}
            if device.id is not None:
                data = {"device": device.id, "path": path}
            self._emit("DEVICE_UNPLUG_GUEST_ERROR", data)

    def _emit(self, name: str, data: dict[str, Any]) -> None:
        if self.machine.tree is not None:
            self.machine.tree.emit(name, data)

    def slot_of(self, device: Device) -> SlotStatus:
        slot = getattr(device, "slot", -1)
        if not 0 <= slot < len(self.slots):
            raise QomError(f"acpi: invalid slot {slot}")
        return self.slots[slot]

    def ospm_status(self) -> list[dict[str, Any]]:
        """``query-acpi-ospm-status`` entries, one per slot."""
        return [ost_info(index, slot) for index, slot in enumerate(self.slots)]


def ost_info(index: int, slot: SlotStatus) -> dict[str, Any]:
    """QEMU's ``ACPIOSTInfo`` for a DIMM slot."""
    info: dict[str, Any] = {}
    if slot.device is not None and slot.device.id is not None:
        info["device"] = slot.device.id
    info.update({"slot": str(index), "slot-type": "DIMM", "source": slot.ost_event,
                 "status": slot.ost_status})
    return info


MEMORY_HOTPLUG: StashKey[MemoryHotplugBlock] = StashKey("acpi-memory-hotplug")


def memory_hotplug_block(machine: Object) -> MemoryHotplugBlock | None:
    """The machine's register block, or ``None`` (no slots, no ACPI, or not a pc)."""
    return machine.stash.get(MEMORY_HOTPLUG)


# ---------------------------------------------------------------------------
# Hooks
# ---------------------------------------------------------------------------


@hookimpl(trylast=True)
def qom_machine_init(machine: Object) -> None:
    """Create the blocks and claim their ports (after the address space exists)."""
    if not isinstance(machine, PcMachine) or not machine.acpi:
        return
    gpe = Gpe0Block()
    slots = [SlotStatus() for _ in range(machine.ram_slots)
             ] if machine.memory_hotplug_support else []
    block = MemoryHotplugBlock(machine=machine, gpe=gpe, slots=slots)
    machine.stash[MEMORY_HOTPLUG] = block
    if ADDRESS_SPACE in machine.stash:
        space = address_space_of(machine)
        space.register_ports(GPE0_BASE, GPE0_LENGTH, gpe.read, gpe.write, "acpi-gpe0")
        if slots:
            space.register_ports(MEMORY_HOTPLUG_IO_BASE, MEMORY_HOTPLUG_IO_LEN, block.read,
                                 block.write, "acpi-mem-hotplug")


@hookimpl
def qom_device_plug(machine: Object, device: Device, undo: UndoStack) -> None:
    """Enable the DIMM's slot; a hot-plugged DIMM also gets its insert event and GPE0.3."""
    block = memory_hotplug_block(machine)
    if block is None or not device.is_a(TYPE_MEMORY_DEVICE) or not block.slots:
        return
    slot = block.slot_of(device)
    before = attrs.evolve(slot)
    gpe_before = bytes(block.gpe.status)
    slot.device, slot.is_enabled = device, True
    if device.hotplugged:
        slot.is_inserting = True
        block.gpe.raise_event(MEMORY_HOTPLUG_GPE_BIT)

    def restore() -> None:
        slot.device, slot.is_enabled = before.device, before.is_enabled
        slot.is_inserting = before.is_inserting
        block.gpe.status[:] = gpe_before

    undo.push(restore, "acpi: restore the slot")


@hookimpl
def qom_device_unplug_request(machine: Object, device: Device, undo: UndoStack) -> None:
    """``device_del``: the remove event for the guest, and GPE0.3."""
    block = memory_hotplug_block(machine)
    if block is None or not device.is_a(TYPE_MEMORY_DEVICE) or not block.slots:
        return
    slot = block.slot_of(device)
    removing_before, gpe_before = slot.is_removing, bytes(block.gpe.status)
    slot.is_removing = True
    block.gpe.raise_event(MEMORY_HOTPLUG_GPE_BIT)

    def restore() -> None:
        slot.is_removing = removing_before
        block.gpe.status[:] = gpe_before

    undo.push(restore, "acpi: withdraw the remove event")


@hookimpl
def qom_device_unplug(machine: Object, device: Device) -> None:
    """The guest ejected the DIMM: its slot is empty again (OST values stay)."""
    block = memory_hotplug_block(machine)
    if block is None or not device.is_a(TYPE_MEMORY_DEVICE) or not block.slots:
        return
    slot = block.slot_of(device)
    slot.device, slot.is_enabled = None, False
