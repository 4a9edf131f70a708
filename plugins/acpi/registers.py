"""The ACPI memory-hotplug register block and the GPE0 block, live (used by
:mod:`plugins.acpi.plugin`, which wires them to the machine).

What the guest's AML talks to, served on the guest's
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

from collections.abc import Callable
from typing import Any, Final

import attrs

from devices.machine import PcMachine
from plugins.services import GUEST_MEMORY, SLOT_ACPI_MEMORY_HOTPLUG, GuestShutdown, services_of
from qom import Device, QomError, as_memory_device, complete_unplug
from qom.reprs import FieldsRepr

#: PIIX4's PM I/O block, where SeaBIOS places it (PMBA 0x600): PM1a event
#: (status, enable), PM1a control, the PM timer
PM_BASE: Final = 0x600
PM_TIMER_FREQUENCY: Final = 3_579_545
SLEEP_ENABLE: Final = 1 << 13
POWER_BUTTON: Final = 1 << 8
#: the PM1 status bits that raise the SCI (QEMU's acpi_pm1_evt_get_sts mask)
PM1_SCI_BITS: Final = 0x0001 | 0x0020 | 0x0100 | 0x0400
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


@attrs.define(repr=False)
class SlotStatus(FieldsRepr):
    """One DIMM slot as the register block sees it (QEMU's ``MemStatus``)."""

    device: Device | None = None
    is_enabled: bool = False
    is_inserting: bool = False
    is_removing: bool = False
    ost_event: int = 0
    ost_status: int = 0


@attrs.define(repr=False)
class PmBlock(FieldsRepr):
    """PIIX4's PM1a event and control registers and the ACPI PM timer (QEMU's
    ``acpi_pm1_evt``, ``acpi_pm1_cnt``, ``acpi_pm_tmr``).

    The timer counts at 3.579545 MHz in 24 bits from machine start; PM1 status
    bits are write-1-to-clear; a PM1 control write with ``SLP_EN`` and sleep
    type 0 (the DSDT's ``\\_S5``) or 2 (PIIX4's S4) powers the machine off
    (:class:`~plugins.services.GuestShutdown`).  Timer overflow and the power
    button are not raised.
    """

    clock: Callable[[], int] = attrs.field(factory=lambda: _monotonic_ns)
    started: int = 0
    status: int = 0
    enable: int = 0
    control: int = 0
    #: told after every change that can move the SCI line
    on_change: Callable[[], None] | None = None

    def __attrs_post_init__(self) -> None:
        self.started = self.clock()

    @property
    def sci_level(self) -> bool:
        return bool(self.status & self.enable & PM1_SCI_BITS)

    def power_button(self) -> None:
        """QEMU's ``acpi_pm1_evt_power_down``: the status bit only if enabled."""
        if self.enable & POWER_BUTTON:
            self.status |= POWER_BUTTON
            self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def timer(self) -> int:
        return ((self.clock() - self.started) * PM_TIMER_FREQUENCY // 1_000_000_000) & 0xFFFFFF

    def read_event(self, offset: int, size: int) -> int:
        value = (self.status | (self.enable << 16)) >> (8 * offset)
        return value & ((1 << (8 * size)) - 1)

    def write_event(self, offset: int, size: int, value: int) -> None:
        for index in range(size):
            at, byte = offset + index, (value >> (8 * index)) & 0xFF
            if at < 2:
                self.status &= ~(byte << (8 * at)) & 0xFFFF
            elif at < 4:
                shift = 8 * (at - 2)
                self.enable = (self.enable & ~(0xFF << shift)) | (byte << shift)
        self._changed()

    def read_control(self, offset: int, size: int) -> int:
        return (self.control >> (8 * offset)) & ((1 << (8 * size)) - 1)

    def write_control(self, offset: int, size: int, value: int) -> None:
        shift = 8 * offset
        mask = ((1 << (8 * size)) - 1) << shift
        written = (self.control & ~mask) | ((value << shift) & mask)
        self.control = written & ~SLEEP_ENABLE & 0xFFFF
        if written & SLEEP_ENABLE and (written >> 10) & 7 in (0, 2):
            raise GuestShutdown("guest-shutdown")

    def read_timer(self, offset: int, size: int) -> int:
        return (self.timer() >> (8 * offset)) & ((1 << (8 * size)) - 1)


def _monotonic_ns() -> int:
    import time

    return time.monotonic_ns()


@attrs.define(repr=False)
class Gpe0Block(FieldsRepr):
    """PIIX4's GPE0: status word (write 1 to clear), then enable word; byte registers."""

    status: bytearray = attrs.field(factory=lambda: bytearray(GPE0_LENGTH // 2))
    enable: bytearray = attrs.field(factory=lambda: bytearray(GPE0_LENGTH // 2))
    #: told when the guest read a status with nothing pending (a polling guest
    #: that may be let wait: the CPU's ``idle_poll``)
    on_idle_read: Callable[[], None] | None = None
    #: told when an event is raised (wakes a waiting poller: the CPU's ``kick``)
    on_raise: Callable[[], None] | None = None
    #: told after every change that can move the SCI line (IRQ 9 of the 8259s)
    on_change: Callable[[], None] | None = None

    def raise_event(self, bit: int) -> None:
        self.status[bit // 8] |= 1 << (bit % 8)
        if self.on_raise is not None:
            self.on_raise()
        self._sci_changed()

    def _sci_changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

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
        if offset < GPE0_LENGTH // 2 and not any(self.status) and self.on_idle_read is not None:
            self.on_idle_read()
        return value

    def write(self, offset: int, size: int, value: int) -> None:
        half = GPE0_LENGTH // 2
        for index in range(size):
            byte_offset, byte = offset + index, (value >> (8 * index)) & 0xFF
            if byte_offset < half:
                self.status[byte_offset] &= ~byte & 0xFF
            elif byte_offset < GPE0_LENGTH:
                self.enable[byte_offset - half] = byte
        self._sci_changed()


@attrs.define(eq=False, repr=False)
class MemoryHotplugBlock(FieldsRepr):
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
        dimm = as_memory_device(slot.device)
        if offset == 0x0:
            value = dimm.get_addr() & _U32 if dimm else 0
        elif offset == 0x4:
            value = dimm.get_addr() >> 32 if dimm else 0
        elif offset == 0x8:
            value = dimm.get_region_size() & _U32 if dimm else 0
        elif offset == 0xC:
            value = dimm.get_region_size() >> 32 if dimm else 0
        elif offset == 0x10:
            value = dimm.get_node() if dimm else 0
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
                memory = services_of(self.machine).find(GUEST_MEMORY)
                if memory is not None:
                    # The unplug unmaps guest memory: not from inside the CPU loop.
                    memory.call_outside(lambda: self._eject(device))
                else:
                    self._eject(device)

    def _eject(self, device: Device) -> None:
        try:
            complete_unplug(device)
        except Exception as err:  # a plugin's failure must not escape into the guest's OUT
            path = device.canonical_path
            self._emit("MEM_UNPLUG_ERROR", {"device": device.id or "", "msg": str(err)})
            data: dict[str, Any] = {"path": path}
            if device.id is not None:
                data = {"device": device.id, "path": path}
            self._emit("DEVICE_UNPLUG_GUEST_ERROR", data)

    def _emit(self, name: str, data: dict[str, Any]) -> None:
        if self.machine.tree is not None:
            self.machine.tree.emit(name, data)

    def slot_of(self, device: Device) -> SlotStatus | None:
        """The slot of a memory device that has one, else ``None`` (also for a
        device type that tells the guest itself: ``SLOT_ACPI_MEMORY_HOTPLUG``)."""
        memory = as_memory_device(device)
        slot = memory.get_slot() if memory is not None else None
        if slot is None or not device.object_class.slots.get(SLOT_ACPI_MEMORY_HOTPLUG, True):
            return None
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
